import type { Socket } from 'node:net';
import { TCP_CLOSE, TCP_CLOSE_WAIT, TCP_ESTABLISHED, TCP_SYN_SENT } from '../common/tcp-states';
import { SAMPLE, type KernelReader } from '../measured/kernel-reader';
import type { Measurement } from '../measured/scanner';
import type { SocketRecord } from '../remembered/socket-record';
import { judgeClosed } from './closed-state';
import { judgeDeadPeer } from './dead-peers';
import type { Finding } from './finding';
import type { Judgement, JudgeSettings, Verdict } from './judgement';
import { judgeStall } from './stall';

/**
 * The detector: one pass over a measurement gives each socket its verdict.
 * The rules live beside it: judgement.ts (the modes and what each means),
 * closed-state.ts (CLOSE_WAIT and CLOSE, tracked or not), stall.ts (stalled
 * readers), dead-peers.ts, consumption.ts (a reader still draining).
 */

export type { Finding } from './finding';
export type { Judgement, JudgeSettings, Verdict } from './judgement';
export { judgeUntracked } from './closed-state';

/**
 * A connected socket that received data this recently is still on the move:
 * whatever it becomes (closed by the peer and left: a CLOSE_WAIT leak; or
 * idle and healthy) is not known yet, so a check of this moment waits and
 * sees. The typical case: a test got a response's headers and ended before
 * the body and the FIN landed.
 */
const ARRIVING_MS = 200;

/**
 * Reads the socket's addresses once while the connection is up: once it is over (state CLOSE)
 * getpeername has no answer, so a report would have no remote address otherwise. From the
 * kernel into the record where the backend can (settings.endpointsOf): reading `socket.remoteAddress`
 * instead makes Node cache it on the socket as a new property (`_peername`), which gives every
 * socket the agent looks at a shape the program's other sockets do not have, and the program's
 * own stream and event code, optimized for one shape, is deoptimized and compiled again for two
 * (a wave of "wrong map" deoptimizations at the first scan: docs/figures.md). Where the backend
 * reads whole tables per call (procfs), Node reads it, as before.
 */
function rememberPeer(socket: Socket, record: SocketRecord, fd: number, settings: JudgeSettings): void {
  record.peerKnown = true;
  try {
    if (settings.endpointsOf) record.endpoints = settings.endpointsOf(fd);
    else void socket.remoteAddress;
  } catch {
    // Not connected after all; the report will say '?'.
  }
}

function isSending(socket: Socket, rows: Int32Array, base: number): boolean {
  return rows[base + SAMPLE.unacked]! > 0 || rows[base + SAMPLE.notsentBytes]! > 0 || socket.writableLength > 0;
}

/**
 * Judges one measurement. This is the one place that writes the judged
 * fields of a record (its CLOSE_WAIT, stall, consumption and write clocks).
 * They are observations: when a look first saw the closed state, what the
 * program had taken. So a one-off look (findLeaks, verifyNoLeaks, dump) only
 * makes the periodic verdicts' clocks more precise; it never tells or marks a
 * leak reported.
 */
export function judge(
  measurement: Measurement,
  judgement: Judgement,
  settings: JudgeSettings,
  now: number,
): Verdict {
  const findings: Finding[] = [];
  const unsettled: SocketRecord[] = [];
  const { rows, stride, sockets } = measurement;
  for (let i = 0; i < measurement.count; i++) {
    const base = i * stride;
    const state = rows[base + SAMPLE.state]!;
    const socket = sockets[i]!;
    const record = measurement.records[i]!;
    if (state === TCP_ESTABLISHED && (judgement === 'periodic' || (judgement === 'exit' && settings.loopEmptied))) {
      const stalled = judgeStall(socket, record, measurement.fds[i]!, rows[base + SAMPLE.lastDataSentMs]!, settings, now, judgement);
      if (stalled) findings.push(stalled);
      else if (judgement === 'periodic') {
        const dead = judgeDeadPeer(socket, record, measurement.fds[i]!, rows, base, settings);
        if (dead) findings.push(dead);
      }
    }
    const lastDataRecvMs = rows[base + SAMPLE.lastDataRecvMs]!;
    if (state === TCP_ESTABLISHED && judgement === 'now' && lastDataRecvMs >= 0 && lastDataRecvMs < ARRIVING_MS) {
      unsettled.push(record);
    }
    if (state !== TCP_CLOSE_WAIT && state !== TCP_CLOSE) {
      record.closeWaitSince = 0;
      // Any state past connecting still has a peer to name.
      if (!record.peerKnown && state !== TCP_SYN_SENT) rememberPeer(socket, record, measurement.fds[i]!, settings);
      continue;
    }
    if (!record.peerKnown && state === TCP_CLOSE_WAIT) rememberPeer(socket, record, measurement.fds[i]!, settings);
    const verdict = judgeClosed({ socket, record, state, kernelSentMs: rows[base + SAMPLE.lastDataSentMs]!, sending: () => isSending(socket, rows, base) }, judgement, settings, now);
    if (verdict === 'unsettled') unsettled.push(record);
    else if (verdict) findings.push({ socket, record, fd: measurement.fds[i]!, state, closeWaitMs: verdict.age, lastDataSentMs: verdict.lastDataSentMs });
  }
  return { leaked: findings, unsettled };
}

/** The detector's settings from the agent's options, asking the kernel (when there is one) for the rest. */
export function judgeSettingsFor(
  options: Pick<JudgeSettings, 'closeWaitMs' | 'stallMs' | 'deadPeerRetries' | 'idleMs'>,
  reader: Pick<KernelReader, 'inspectSocket' | 'readEndpoints' | 'readsWholeTables'> | undefined,
): JudgeSettings {
  const ask = <T>(fd: number, read: (detail: ReturnType<KernelReader['inspectSocket']>) => T, closed: T): T => {
    try {
      return reader ? read(reader.inspectSocket(fd)) : closed;
    } catch {
      return closed; // closed in the meantime
    }
  };
  return {
    closeWaitMs: options.closeWaitMs,
    stallMs: options.stallMs,
    deadPeerRetries: options.deadPeerRetries,
    idleMs: options.idleMs,
    keepalive: (fd) => ask(fd, (detail) => detail.keepalive, -1),
    unreadBytes: (fd) => ask(fd, (detail) => detail.unreadBytes, 0),
    endpointsOf: reader && !reader.readsWholeTables ? (fd) => reader.readEndpoints(fd) : undefined,
  };
}
