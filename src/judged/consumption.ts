import type { Socket } from 'node:net';
import { eofRead, httpParserOf, httpResponseOf } from '../common/node-internals';
import type { SocketRecord } from '../remembered/socket-record';

/**
 * Whether the program is still taking in what the peer sent before it closed.
 *
 * A reader that drains a body slowly (a rate limiter, a throttling Transform in
 * a pipeline, axios's maxRate) leaves its socket in CLOSE_WAIT until it has
 * read the last byte: the peer's FIN sits behind the unread data. That is not a
 * leak while the data keeps moving. Data moves in two places: out of the
 * kernel's receive queue (socket.bytesRead grows) and out of the streams'
 * buffers once it is in JavaScript (the socket's own buffer, and for HTTP the
 * message the parser feeds, shrink). Either counts as progress.
 *
 * A rate limiter pauses between chunks, for longer than a scan interval, so one
 * quiet look proves nothing: the program counts as consuming until it has taken
 * nothing for CONSUMING_WINDOW_MS (or closeWaitMs, when longer).
 */
export const CONSUMING_WINDOW_MS = 1000;

/** Bytes that reached JavaScript and wait in the socket's or its HTTP message's buffer. */
export function bufferedBytes(socket: Socket): number {
  const incoming = httpParserOf(socket)?.incoming;
  const response = httpResponseOf(socket);
  let buffered = socket.readableLength ?? 0;
  if (incoming) buffered += incoming.readableLength ?? 0;
  if (response && response !== incoming) buffered += response.readableLength ?? 0;
  return buffered;
}

/**
 * True when something sent before the peer's FIN is still to be taken: Node has
 * not read the EOF yet (data waits in the kernel ahead of it), or data waits in
 * a buffer. A socket with nothing left to take cannot be consuming.
 */
function leftToTake(socket: Socket, buffered: number): boolean {
  return eofRead(socket) === false || buffered > 0;
}

/**
 * Looks at a socket in a closed state (CLOSE_WAIT or CLOSE) and notes whether
 * the program took anything since the last look. Every look is an observation,
 * so looks of any kind (periodic scans, findLeaks, verifyNoLeaks) refine the
 * same clock. Returns how the socket stands:
 * - 'done': nothing is left to take, so progress cannot be the reason it stays open;
 * - 'consuming': progress was seen within the window;
 * - 'quiet-since-first-look': something is left, but no progress has been seen yet
 *   (the first look starts the clock);
 * - 'stopped': progress was seen once, then nothing for the window.
 */
export function lookAtConsumption(socket: Socket, record: SocketRecord, now: number, windowMs: number): ConsumptionState {
  const read = socket.bytesRead;
  const buffered = bufferedBytes(socket);
  const consumption = record.consumption;
  if (!consumption) {
    record.consumption = { read, buffered, quietSince: now, progressSeen: false };
  } else {
    if (read > consumption.read || buffered < consumption.buffered) {
      consumption.quietSince = now;
      consumption.progressSeen = true;
    }
    consumption.read = read;
    consumption.buffered = buffered;
  }
  if (!leftToTake(socket, buffered)) return 'done';
  const { quietSince, progressSeen } = record.consumption!;
  if (now - quietSince < windowMs) return progressSeen ? 'consuming' : 'quiet-since-first-look';
  return 'stopped';
}

/** See lookAtConsumption. */
export type ConsumptionState = 'done' | 'consuming' | 'quiet-since-first-look' | 'stopped';
