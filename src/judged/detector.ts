import type { Socket } from 'node:net';
import { eofRead, isReading, serverOf } from '../common/node-internals';
import { SAMPLE, type KernelReader } from '../measured/kernel-reader';
import type { SocketRecord } from '../remembered/registry';
import type { Measurement } from '../measured/scanner';
import { judgeDeadPeer, type DeadPeerSettings } from './dead-peers';
import type { Finding } from './finding';
import { CONSUMING_WINDOW_MS, lookAtConsumption } from './consumption';
import { TCP_CLOSE, TCP_CLOSE_WAIT, TCP_ESTABLISHED, TCP_SYN_SENT } from '../common/tcp-states';

export type { Finding } from './finding';

/**
 * A socket is in a leaked state when the peer is done with the connection and
 * this process is not: CLOSE_WAIT (the peer's FIN arrived, ours was never
 * sent), or CLOSE with the descriptor still open (the connection finished,
 * for example after end() on a socket nobody read, or a reset, and the socket
 * was never destroyed).
 *
 * When a socket counts as leaked:
 * - 'periodic': the scan has seen it in that state for at least closeWaitMs,
 *   the kernel says nothing was sent on it for closeWaitMs, and the program has
 *   taken none of what arrived before the FIN for the consuming window (see
 *   consumption.ts). A server still streaming after its client half-closed
 *   keeps sending, and a reader draining a body through a rate limiter keeps
 *   taking: neither is a leak.
 * - 'now': it is in that state with nothing queued to send, and no look has
 *   seen the program take data within the consuming window (findLeaks,
 *   verifyNoLeaks). Age is not required: the caller asked about this moment.
 * - 'exit': it is in that state as the process exits: it was never closed. When
 *   the event loop emptied, a connected socket Node is not reading, with bytes
 *   waiting, is a stalled reader too: no code is left to read them.
 * In every mode a socket whose FIN the kernel holds but Node has not read yet
 * is not a leak: Node would close it on its next turn.
 */
export type Judgement = 'periodic' | 'now' | 'exit';

/**
 * True when Node is still reading the socket and has not yet seen its EOF:
 * the FIN is in the kernel, and Node closes the socket as soon as it reads it
 * (allowHalfOpen false) or hands 'end' to the program. A leaked socket is one
 * Node stopped reading (paused, unread body) or that already saw EOF.
 *
 * A socket accepted by a TLS server is the raw socket under a TLSSocket that
 * reads the handle directly, so the raw stream never sees EOF and the
 * TLSSocket cannot be reached from it: for those the kernel alone decides.
 */
function eofPending(socket: Socket): boolean {
  if (!isReading(socket) || eofRead(socket) !== false) return false;
  return !underTlsServer(socket);
}

function underTlsServer(socket: Socket): boolean {
  const server = serverOf(socket);
  // Loaded only here, once a server socket sits in CLOSE_WAIT; tls is already loaded if the server is a TLS one.
  return server !== undefined && server instanceof (require('node:tls') as typeof import('node:tls')).Server;
}

/**
 * A connected socket that received data this recently is still on the move:
 * whatever it becomes (closed by the peer and left: a CLOSE_WAIT leak; or
 * idle and healthy) is not known yet, so a check of this moment waits and
 * sees. The typical case: a test got a response's headers and ended before
 * the body and the FIN landed.
 */
const ARRIVING_MS = 200;

/**
 * A stalled reader: connected, Node not reading it (paused, or a body nobody
 * consumes), bytes waiting in the kernel, and socket.bytesRead unchanged for
 * stallMs. A slow consumer that pauses for backpressure keeps reading, so its
 * bytesRead moves and the clock starts over. The kernel is asked for unread
 * bytes only for sockets that pass the cheap JavaScript checks.
 */
function judgeStall(
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

/**
 * Reads the peer's address once while the connection is up: Node caches it,
 * and once the connection is over (state CLOSE) getpeername has no answer,
 * so a report would have no remote address otherwise.
 */
function rememberPeer(socket: Socket, record: SocketRecord): void {
  record.peerKnown = true;
  try {
    void socket.remoteAddress;
  } catch {
    // Not connected after all; the report will say '?'.
  }
}

/**
 * For backends that cannot say when data was last sent (procfs): how long
 * socket.bytesWritten has stood still, as seen by the scans since the socket
 * reached its closed state. A server still streaming keeps moving it.
 */
function msSinceWrite(socket: Socket, record: SocketRecord, now: number): number {
  const written = socket.bytesWritten ?? 0;
  if (record.writtenAt === 0 || written !== record.writtenSeen) {
    record.writtenSeen = written;
    record.writtenAt = now;
  }
  return now - record.writtenAt;
}

function isSending(socket: Socket, rows: Int32Array, base: number): boolean {
  return rows[base + SAMPLE.unacked]! > 0 || rows[base + SAMPLE.notsentBytes]! > 0 || socket.writableLength > 0;
}

/** The verdict on one measurement. */
export interface Verdict {
  leaked: Finding[];
  /**
   * Sockets not settled yet: in CLOSE_WAIT with an EOF Node has not read, or
   * with a program still taking in what arrived, or connected with data still
   * arriving. Not leaks now; verifyNoLeaks waits to see what they become.
   */
  unsettled: SocketRecord[];
}

/** The thresholds, and how to ask the kernel for a socket's unread bytes (SIOCINQ). */
export interface JudgeSettings extends DeadPeerSettings {
  closeWaitMs: number;
  stallMs: number;
  unreadBytes(fd: number): number;
  /**
   * The process is exiting because its event loop emptied ('beforeExit' ran; process.exit()
   * skips it): nothing can read a paused socket's bytes any more, whatever the stall's age.
   */
  loopEmptied?: boolean;
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
      if (!record.peerKnown && state !== TCP_SYN_SENT) rememberPeer(socket, record);
      continue;
    }
    if (!record.peerKnown && state === TCP_CLOSE_WAIT) rememberPeer(socket, record);
    const verdict = judgeClosed({ socket, record, state, kernelSentMs: rows[base + SAMPLE.lastDataSentMs]!, sending: () => isSending(socket, rows, base) }, judgement, settings, now);
    if (verdict === 'unsettled') unsettled.push(record);
    else if (verdict) findings.push({ socket, record, fd: measurement.fds[i]!, state, closeWaitMs: verdict.age, lastDataSentMs: verdict.lastDataSentMs });
  }
  return { leaked: findings, unsettled };
}

/** What the closed-state rule needs to know of one socket. */
interface ClosedLook {
  /** The JavaScript socket; absent for a socket no agent tracks, for which the kernel alone speaks. */
  socket: Socket | undefined;
  record: SocketRecord;
  /** TCP_CLOSE_WAIT or TCP_CLOSE. */
  state: number;
  /** Since data was last sent, by the kernel; -1 where it cannot tell (procfs). */
  kernelSentMs: number;
  /** Whether anything waits to be sent ('now' checks). */
  sending(): boolean;
}

/**
 * The rule for a socket in CLOSE_WAIT or CLOSE, tracked or not (see the
 * comment on Judgement). A socket with no JavaScript side cannot be asked
 * whether Node is about to read its FIN or whether the program is still
 * taking what arrived: it is judged on the kernel's word and its age, and at
 * exit only when an earlier look had already seen it there.
 */
function judgeClosed(look: ClosedLook, judgement: Judgement, settings: JudgeSettings, now: number): { age: number; lastDataSentMs: number } | 'unsettled' | undefined {
  const { socket, record, state } = look;
  const { closeWaitMs } = settings;
  const seenBefore = record.closeWaitSince !== 0;
  if (!seenBefore) record.closeWaitSince = now;
  if (socket && eofPending(socket)) return 'unsettled';
  const age = now - record.closeWaitSince;
  const taking = socket ? lookAtConsumption(socket, record, now, Math.max(closeWaitMs, CONSUMING_WINDOW_MS)) : 'done';
  if (taking === 'consuming' && judgement !== 'exit') return 'unsettled';
  // Once the connection is over (CLOSE) nothing can be sent; where the kernel cannot tell (procfs),
  // a tracked socket's bytesWritten can, and an untracked one's silence is taken as given.
  const lastDataSentMs = look.kernelSentMs >= 0 ? look.kernelSentMs : socket ? msSinceWrite(socket, record, now) : -1;
  const quiet = state === TCP_CLOSE || lastDataSentMs < 0 || lastDataSentMs >= closeWaitMs;
  let leaked: boolean;
  switch (judgement) {
    case 'periodic':
      // The first look starts the consuming clock: a reader between two rate-limited chunks gets the window.
      leaked = !record.reported && age >= closeWaitMs && quiet && taking !== 'quiet-since-first-look';
      break;
    case 'now':
      leaked = socket !== undefined && !look.sending();
      break;
    case 'exit':
      leaked = !record.reported && (socket !== undefined || seenBefore);
      break;
  }
  return leaked ? { age, lastDataSentMs } : undefined;
}

/**
 * Judges sockets no agent tracks: rows of the kernel and the records kept for
 * them (keyed by descriptor and inode by their finder), with the same rule as
 * tracked sockets in CLOSE_WAIT or CLOSE. Other states restart their clock.
 */
export function judgeUntracked(
  rows: Int32Array,
  stride: number,
  fds: readonly number[],
  records: readonly SocketRecord[],
  judgement: Judgement,
  settings: JudgeSettings,
  now: number,
): Finding[] {
  const findings: Finding[] = [];
  if (judgement === 'now') return findings;
  for (let i = 0; i < fds.length; i++) {
    const state = rows[i * stride + SAMPLE.state]!;
    const record = records[i]!;
    if (state !== TCP_CLOSE_WAIT && state !== TCP_CLOSE) {
      record.closeWaitSince = 0;
      continue;
    }
    const kernelSentMs = rows[i * stride + SAMPLE.lastDataSentMs]!;
    const verdict = judgeClosed({ socket: undefined, record, state, kernelSentMs, sending: () => false }, judgement, settings, now);
    if (verdict && verdict !== 'unsettled') findings.push({ record, fd: fds[i]!, state, closeWaitMs: verdict.age, lastDataSentMs: verdict.lastDataSentMs });
  }
  return findings;
}

/** The detector's settings from the agent's options, asking the kernel (when there is one) for the rest. */
export function judgeSettingsFor(
  options: Pick<JudgeSettings, 'closeWaitMs' | 'stallMs' | 'deadPeerRetries' | 'idleMs'>,
  reader: Pick<KernelReader, 'inspectSocket'> | undefined,
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
  };
}
