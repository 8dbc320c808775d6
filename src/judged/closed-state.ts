import type { Socket } from 'node:net';
import { eofRead, isReading, isTlsServer, serverOf } from '../common/node-internals';
import { TCP_CLOSE, TCP_CLOSE_WAIT } from '../common/tcp-states';
import { SAMPLE } from '../measured/kernel-reader';
import type { SocketRecord } from '../remembered/socket-record';
import { CONSUMING_WINDOW_MS, lookAtConsumption } from './consumption';
import type { Finding } from './finding';
import type { Judgement, JudgeSettings } from './judgement';

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
  return !isTlsServer(serverOf(socket));
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

/** What the closed-state rule needs to know of one socket. */
export interface ClosedLook {
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
export function judgeClosed(look: ClosedLook, judgement: Judgement, settings: JudgeSettings, now: number): { age: number; lastDataSentMs: number } | 'unsettled' | undefined {
  const { socket, record, state } = look;
  const { closeWaitMs } = settings;
  const seenBefore = record.closeWaitSince !== 0;
  if (!seenBefore) record.closeWaitSince = now;
  if (socket && eofPending(socket)) return 'unsettled';
  const age = now - record.closeWaitSince;
  const taking = socket ? lookAtConsumption(socket, record, now, Math.max(closeWaitMs, CONSUMING_WINDOW_MS)) : 'done';
  if (taking === 'consuming' && judgement !== 'exit') return 'unsettled';
  // Where the kernel cannot tell when data was last sent (procfs), a tracked socket's bytesWritten
  // can. An untracked one has no such witness: its silence is taken as given, as is that of a
  // connection already over (CLOSE), which can send nothing more.
  const lastDataSentMs = look.kernelSentMs >= 0 ? look.kernelSentMs : socket ? msSinceWrite(socket, record, now) : -1;
  const quiet = socket ? lastDataSentMs >= closeWaitMs : state === TCP_CLOSE || lastDataSentMs < 0 || lastDataSentMs >= closeWaitMs;
  let leaked: boolean;
  switch (judgement) {
    case 'periodic':
      // The first look starts the consuming clock: a reader between two rate-limited chunks gets the window.
      leaked = !record.reported && age >= closeWaitMs && quiet && taking !== 'quiet-since-first-look';
      break;
    case 'now':
      // A socket no agent tracks has no JavaScript side to say whether Node is about to read its
      // FIN: an earlier look must have seen it closed already (a check's retry, or a scan). The
      // kernel's clocks cannot stand in: tcpi_last_data_recv moves with data, not with a FIN, so
      // an idle connection whose peer closed a moment ago looks as old as its last byte.
      if (!socket && !seenBefore) return 'unsettled';
      leaked = !look.sending();
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
): { findings: Finding[]; unsettled: number } {
  const findings: Finding[] = [];
  let unsettled = 0;
  for (let i = 0; i < fds.length; i++) {
    const state = rows[i * stride + SAMPLE.state]!;
    const record = records[i]!;
    if (state !== TCP_CLOSE_WAIT && state !== TCP_CLOSE) {
      record.closeWaitSince = 0;
      continue;
    }
    const kernelSentMs = rows[i * stride + SAMPLE.lastDataSentMs]!;
    // What the kernel still has to send (a check's look): it has no JavaScript side to ask.
    const sending = () => rows[i * stride + SAMPLE.unacked]! > 0 || rows[i * stride + SAMPLE.notsentBytes]! > 0;
    const verdict = judgeClosed({ socket: undefined, record, state, kernelSentMs, sending }, judgement, settings, now);
    if (verdict === 'unsettled') unsettled++;
    else if (verdict) findings.push({ record, fd: fds[i]!, state, closeWaitMs: verdict.age, lastDataSentMs: verdict.lastDataSentMs });
  }
  return { findings, unsettled };
}
