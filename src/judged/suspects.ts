import type { Socket } from 'node:net';
import { eofRead, isReading } from '../common/node-internals';
import type { SocketRecord } from '../remembered/socket-record';

/**
 * Whether a tracked socket can be leaking now, from what JavaScript knows
 * without asking the kernel. The periodic scan measures these at every scan;
 * the others only in the slow sweep (measured/sweep.ts).
 *
 * A socket Node is reading, that has not reached EOF and has nothing queued to
 * send, cannot sit in CLOSE_WAIT or CLOSE for long: the peer's FIN or reset is
 * read at the next turn of the event loop and the socket ends or is destroyed.
 * Every leak kind needs one of:
 * - not reading: paused, stopped by backpressure, a body nobody consumes, or
 *   a socket no code ever read (the FIN waits unread, bytes pile up);
 * - EOF read but the socket still open: an allowHalfOpen socket, or an
 *   'upgrade' / 'connect' socket whose listener dropped it, never ended;
 * - bytes queued in Node to send: a peer that stopped reading;
 * - a clock the detector started (CLOSE_WAIT seen, a stall, a reader still
 *   draining) or a report already made (the safety valve needs it).
 */
export function canBeLeaking(socket: Socket, record: SocketRecord): boolean {
  if (record.closeWaitSince !== 0 || record.stallSince !== 0 || record.consumption !== undefined || record.reported) return true;
  // A TLS server's accepted socket: the TLS socket reads its stream; before the handshake, unknown.
  const reader = record.reader === undefined ? socket : record.reader;
  if (reader === null) return true;
  return !isReading(reader) || eofRead(reader) !== false || reader.writableLength > 0 || socket.writableLength > 0;
}
