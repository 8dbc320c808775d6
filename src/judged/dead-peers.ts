import type { Socket } from 'node:net';
import { SAMPLE } from '../measured/kernel-reader';
import type { SocketRecord } from '../remembered/registry';
import type { Finding } from './finding';

/** The thresholds of the dead-peer check; 0 turns a check off. */
export interface DeadPeerSettings {
  /** Unanswered retransmissions (or zero-window probes) in a row that make a peer dead. */
  deadPeerRetries: number;
  /** Silence both ways, with TCP keepalive off, that makes a peer possibly gone. */
  idleMs: number;
  /** SO_KEEPALIVE of a descriptor: 1, 0, or -1 when it cannot be told. */
  keepalive(fd: number): number;
}

/**
 * An ESTABLISHED connection whose peer stopped answering. Two shapes:
 * - data waits to be acknowledged and the kernel has retransmitted it (or
 *   probed a zero window) `deadPeerRetries` times in a row with no answer: the
 *   host is gone or unreachable; the kernel keeps trying for ~15 minutes
 *   (tcp_retries2) and the program waits all that time;
 * - nothing sent or received for `idleMs` with TCP keepalive off: if the peer
 *   vanished (a NAT or load balancer dropped the flow), this side never learns.
 * Each is reported once per socket. The kernel row is the scan's; keepalive is
 * asked only of sockets already idle past the threshold.
 */
export function judgeDeadPeer(
  socket: Socket,
  record: SocketRecord,
  fd: number,
  rows: Int32Array,
  base: number,
  settings: DeadPeerSettings,
): Finding | undefined {
  if (record.reported) return undefined;
  const unanswered = rows[base + SAMPLE.unanswered]!;
  const waiting = Math.max(0, rows[base + SAMPLE.unacked]!) + Math.max(0, rows[base + SAMPLE.notsentBytes]!);
  const lastDataSentMs = rows[base + SAMPLE.lastDataSentMs]!;
  if (settings.deadPeerRetries > 0 && unanswered >= settings.deadPeerRetries && waiting > 0) {
    return { socket, record, fd, state: 1, closeWaitMs: 0, lastDataSentMs, deadPeer: { unanswered } };
  }
  const lastDataRecvMs = rows[base + SAMPLE.lastDataRecvMs]!;
  if (settings.idleMs > 0 && lastDataSentMs >= settings.idleMs && lastDataRecvMs >= settings.idleMs && settings.keepalive(fd) === 0) {
    return { socket, record, fd, state: 1, closeWaitMs: 0, lastDataSentMs, deadPeer: { idleMs: Math.min(lastDataSentMs, lastDataRecvMs) } };
  }
  return undefined;
}
