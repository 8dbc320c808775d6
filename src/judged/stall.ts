import type { Socket } from 'node:net';
import { eofRead, isReading } from '../common/node-internals';
import { TCP_ESTABLISHED } from '../common/tcp-states';
import type { SocketRecord } from '../remembered/socket-record';
import type { Finding } from './finding';
import type { Judgement, JudgeSettings } from './judgement';

/**
 * A stalled reader: connected, Node not reading it (paused, or a body nobody
 * consumes), bytes waiting in the kernel, and socket.bytesRead unchanged for
 * stallMs. A slow consumer that pauses for backpressure keeps reading, so its
 * bytesRead moves and the clock starts over. The kernel is asked for unread
 * bytes only for sockets that pass the cheap JavaScript checks.
 */
export function judgeStall(
  socket: Socket,
  record: SocketRecord,
  fd: number,
  lastDataSentMs: number,
  settings: JudgeSettings,
  now: number,
  judgement: Judgement = 'periodic',
): Finding | undefined {
  const notReading = !isReading(socket) && eofRead(socket) === false;
  if (!notReading) {
    record.stallSince = 0;
    return undefined;
  }
  if (socket.bytesRead !== record.stallBytesRead) {
    record.stallSince = 0;
    record.stallBytesRead = socket.bytesRead;
  }
  if (judgement === 'exit') {
    // The loop is empty: no code is left to read these bytes.
    const unreadBytes = record.reported ? 0 : settings.unreadBytes(fd);
    if (unreadBytes <= 0) return undefined;
    const age = record.stallSince === 0 ? 0 : now - record.stallSince;
    return { socket, record, fd, state: TCP_ESTABLISHED, closeWaitMs: age, lastDataSentMs, unreadBytes };
  }
  if (record.stallSince === 0) {
    if (settings.unreadBytes(fd) > 0) record.stallSince = now;
    return undefined;
  }
  const age = now - record.stallSince;
  if (record.reported || age < settings.stallMs) return undefined;
  const unreadBytes = settings.unreadBytes(fd);
  if (unreadBytes <= 0) return undefined;
  return { socket, record, fd, state: TCP_ESTABLISHED, closeWaitMs: age, lastDataSentMs, unreadBytes };
}
