import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { judge, judgeUntracked, type JudgeSettings } from '../../src/judged/detector';
import { SAMPLE, SAMPLE_STRIDE } from '../../src/measured/native';
import type { Measurement } from '../../src/measured/scanner';
import type { SocketRecord } from '../../src/remembered/socket-record';
import { TCP_CLOSE, TCP_CLOSE_WAIT, TCP_ESTABLISHED } from '../../src/common/tcp-states';

// The detector's verdicts from tables of kernel rows and the JavaScript side of each socket.
// The socket objects carry only the fields the detector reads.

interface SocketSide {
  /** Node is reading the handle. */
  reading: boolean;
  /** Node has read the EOF. */
  ended: boolean;
  bytesRead?: number;
  buffered?: number;
  writableLength?: number;
}

function socketLike(side: SocketSide): Socket {
  return {
    _handle: { reading: side.reading },
    _readableState: { ended: side.ended },
    bytesRead: side.bytesRead ?? 0,
    readableLength: side.buffered ?? 0,
    writableLength: side.writableLength ?? 0,
    bytesWritten: 0,
    remoteAddress: '127.0.0.1',
  } as unknown as Socket;
}

function newRecord(): SocketRecord {
  return { origin: 'client', createdAt: 0, creation: undefined, closeWaitSince: 0, reported: false, stallSince: 0, stallBytesRead: 0, writtenSeen: 0, writtenAt: 0, peerKnown: false };
}

interface Row {
  state: number;
  lastDataSentMs?: number;
  lastDataRecvMs?: number;
  unacked?: number;
}

function measurement(entries: Array<{ socket: Socket; record: SocketRecord; row: Row }>): Measurement {
  const rows = new Int32Array(entries.length * SAMPLE_STRIDE);
  entries.forEach(({ row }, i) => {
    const base = i * SAMPLE_STRIDE;
    rows[base + SAMPLE.state] = row.state;
    rows[base + SAMPLE.lastDataSentMs] = row.lastDataSentMs ?? 100_000;
    rows[base + SAMPLE.lastDataRecvMs] = row.lastDataRecvMs ?? 100_000;
    rows[base + SAMPLE.unacked] = row.unacked ?? 0;
  });
  return {
    count: entries.length,
    sockets: entries.map((entry) => entry.socket),
    records: entries.map((entry) => entry.record),
    fds: Int32Array.from(entries.map((_, i) => 10 + i)),
    rows,
    stride: SAMPLE_STRIDE,
  };
}

const settings = (unread = 0): JudgeSettings => ({
  closeWaitMs: 1000,
  stallMs: 60_000,
  deadPeerRetries: 0,
  idleMs: 0,
  keepalive: () => 1,
  unreadBytes: () => unread,
});

// Clocks are Date.now() values, never 0 (0 means "not started" in a record).
const T0 = 1_700_000_000_000;

/** Judges one socket at each of `times` (ms after T0), changing its JavaScript side before each look. */
function looks(side: (at: number) => SocketSide, row: Row, times: number[], mode: 'periodic' | 'now' | 'exit' = 'periodic', unread = 0) {
  const record = newRecord();
  return times.map((at) => {
    const verdict = judge(measurement([{ socket: socketLike(side(at)), record, row }]), mode, settings(unread), T0 + at);
    return verdict.leaked.length > 0 ? 'leaked' : verdict.unsettled.length > 0 ? 'unsettled' : 'fine';
  });
}

describe('CLOSE_WAIT verdicts', () => {
  const paused = () => ({ reading: false, ended: false, buffered: 1000 });

  it('a paused socket becomes a leak once closeWaitMs has passed since the first look, and only then', () => {
    expect(looks(paused, { state: TCP_CLOSE_WAIT }, [0, 500, 999, 1000])).toEqual(['fine', 'fine', 'fine', 'leaked']);
  });

  it('a socket whose EOF Node has not read yet is unsettled, never a leak, however long', () => {
    const eofPending = () => ({ reading: true, ended: false });
    expect(looks(eofPending, { state: TCP_CLOSE_WAIT }, [0, 5000, 60_000])).toEqual(['unsettled', 'unsettled', 'unsettled']);
  });

  it('a socket that still sends is not a leak (a server streaming to a half-closed client)', () => {
    const ended = () => ({ reading: false, ended: true });
    expect(looks(ended, { state: TCP_CLOSE_WAIT, lastDataSentMs: 10 }, [0, 2000, 4000])).toEqual(['fine', 'fine', 'fine']);
  });

  it('a reader still taking data (bytes leave the kernel) is not a leak; once it stops for the window, it is', () => {
    // Takes 8 KB at every look until 3000 ms, then nothing.
    const draining = (at: number) => ({ reading: false, ended: false, bytesRead: Math.min(at, 3000) * 8, buffered: 1000 });
    expect(looks(draining, { state: TCP_CLOSE_WAIT }, [0, 1000, 2000, 3000, 3500, 4000])).toEqual([
      'fine',
      'unsettled',
      'unsettled',
      'unsettled',
      'unsettled',
      'leaked',
    ]);
  });

  it("a reader draining the streams' buffers (the kernel queue already empty) is not a leak either", () => {
    const draining = (at: number) => ({ reading: false, ended: true, buffered: Math.max(0, 100_000 - at * 10) });
    expect(looks(draining, { state: TCP_CLOSE_WAIT }, [0, 1000, 2000])).toEqual(['fine', 'unsettled', 'unsettled']);
  });

  it('a tracked socket whose connection is over (CLOSE) but sent within closeWaitMs waits until it has been quiet that long', () => {
    const done = () => ({ reading: false, ended: true, buffered: 0 });
    expect(looks(done, { state: TCP_CLOSE, lastDataSentMs: 10 }, [0, 1000])).toEqual(['fine', 'fine']);
    expect(looks(done, { state: TCP_CLOSE }, [0, 1000])).toEqual(['fine', 'leaked']);
  });

  it('a socket with nothing left to take is judged on closeWaitMs alone', () => {
    const done = () => ({ reading: false, ended: true, buffered: 0 });
    expect(looks(done, { state: TCP_CLOSE_WAIT }, [0, 1000])).toEqual(['fine', 'leaked']);
  });

  it("'now' judges the moment: a leak at the first look unless it sends", () => {
    expect(looks(paused, { state: TCP_CLOSE_WAIT }, [0], 'now')).toEqual(['leaked']);
    expect(looks(paused, { state: TCP_CLOSE_WAIT, unacked: 10 }, [0], 'now')).toEqual(['fine']);
  });

  it("'exit' calls every socket still in CLOSE_WAIT a leak, even one that was draining", () => {
    const draining = (at: number) => ({ reading: false, ended: false, bytesRead: at });
    expect(looks(draining, { state: TCP_CLOSE_WAIT }, [0, 500], 'exit')).toEqual(['leaked', 'leaked']);
  });

  it('each leak is reported once', () => {
    const record = newRecord();
    const m = () => measurement([{ socket: socketLike({ reading: false, ended: true }), record, row: { state: TCP_CLOSE_WAIT } }]);
    judge(m(), 'periodic', settings(), T0);
    expect(judge(m(), 'periodic', settings(), T0 + 1000).leaked).toHaveLength(1);
    record.reported = true;
    expect(judge(m(), 'periodic', settings(), T0 + 2000).leaked).toHaveLength(0);
  });
});

describe('stalled readers', () => {
  const notReading = () => ({ reading: false, ended: false, bytesRead: 5 });

  it('a connected socket nobody reads, with bytes waiting, is a stalled reader after stallMs', () => {
    const verdicts = looks(notReading, { state: TCP_ESTABLISHED }, [0, 30_000, 60_000], 'periodic', 4096);
    expect(verdicts).toEqual(['fine', 'fine', 'leaked']);
  });

  it('nothing waiting in the kernel: not stalled', () => {
    expect(looks(notReading, { state: TCP_ESTABLISHED }, [0, 60_000, 120_000], 'periodic', 0)).toEqual(['fine', 'fine', 'fine']);
  });

  it('a reader that makes progress starts the clock over', () => {
    const slow = (at: number) => ({ reading: false, ended: false, bytesRead: Math.floor(at / 40_000) });
    expect(looks(slow, { state: TCP_ESTABLISHED }, [0, 40_000, 80_000, 100_000], 'periodic', 4096)).toEqual(['fine', 'fine', 'fine', 'fine']);
  });
});

describe('sockets no agent tracks (kernel rows only)', () => {
  const untracked = (): SocketRecord => ({ ...newRecord(), origin: 'unknown', peerKnown: true });

  function untrackedLooks(row: Row, times: number[], mode: 'periodic' | 'exit') {
    const record = untracked();
    return times.map((at) => {
      const m = measurement([{ socket: socketLike({ reading: false, ended: true }), record, row }]);
      return judgeUntracked(m.rows, m.stride, [10], [record], mode, settings(), T0 + at).findings.length > 0 ? 'leaked' : 'fine';
    });
  }

  it('are judged by the same CLOSE_WAIT rule: a leak once closeWaitMs has passed with nothing sent', () => {
    expect(untrackedLooks({ state: TCP_CLOSE_WAIT }, [0, 999, 1000], 'periodic')).toEqual(['fine', 'fine', 'leaked']);
    expect(untrackedLooks({ state: TCP_CLOSE_WAIT, lastDataSentMs: 10 }, [0, 1000], 'periodic')).toEqual(['fine', 'fine']);
  });

  it('at exit, only once an earlier look saw them closed: Node may have been about to read the FIN', () => {
    expect(untrackedLooks({ state: TCP_CLOSE_WAIT }, [0, 10], 'exit')).toEqual(['fine', 'leaked']);
  });

  it("in a check's look (findLeaks, verifyNoLeaks), once an earlier look saw them closed and the kernel has nothing left to send", () => {
    expect(untrackedLooks({ state: TCP_CLOSE_WAIT }, [0, 5], 'now')).toEqual(['fine', 'leaked']);
    expect(untrackedLooks({ state: TCP_CLOSE_WAIT, unacked: 2 }, [0, 5], 'now')).toEqual(['fine', 'fine']);
  });
});
