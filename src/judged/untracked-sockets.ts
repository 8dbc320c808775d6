import type { Endpoint } from '../common/types';
import type { KernelReader } from '../measured/kernel-reader';
import { newRecord, type SocketRecord } from '../remembered/socket-record';
import { judgeUntracked } from './closed-state';
import type { Finding } from './finding';
import type { Judgement, JudgeSettings } from './judgement';
import { realMonotonic } from '../common/real-time';

/** The share of one core periodic looks for untracked sockets may take. */
const LOOK_BUDGET = 1 / 500;

/** What is remembered of a socket no agent tracks: the clocks a tracked one has, no origin but 'unknown'. */
function untrackedRecord(now: number): SocketRecord {
  return newRecord('unknown', now, undefined, true);
}

/**
 * TCP sockets of this process that the agent never saw created: opened before
 * start(), by a native addon, or inherited. Found by listing the process's own
 * descriptors; identified by fd and inode, since a number can be reused.
 *
 * Only the kernel speaks for them (there is no JavaScript socket to ask
 * whether Node is about to read a FIN): the detector judges them by the
 * kernel's word and their age, and at exit only when an earlier scan had
 * already seen them stuck; the leak builder describes them like any other.
 */
export class UntrackedSockets {
  // A record per descriptor and inode, as the registry keeps one per tracked socket.
  private readonly records = new Map<string, SocketRecord>();
  private nextLookAt = 0;

  constructor(
    private readonly binding: KernelReader,
    /** The longest pause between periodic looks: 20 scan intervals, at least a second. */
    private readonly longestPauseMs: number,
  ) {}

  /**
   * Judges the sockets no thread's agent tracks, with the detector's rule for
   * tracked ones (judgeUntracked); returns the findings to report, each with
   * its addresses. `trackedWithinMs`: how recently another thread must have
   * noted a descriptor for it to count as tracked (a few of the longest scan interval).
   *
   * Listing the process's descriptors costs about 0.7 µs each, and 2 µs more for each one not
   * tracked (13 ms at 18,000 tracked sockets), so periodic
   * looks are spaced to keep within LOOK_BUDGET of one core: at every scan for a
   * process with a thousand descriptors, every ~30 s with 18,000. The exit look always runs.
   */
  judge(trackedFds: () => ReadonlySet<number>, judgement: Judgement, settings: JudgeSettings, now: number, trackedWithinMs: number): Finding[] {
    if (judgement === 'periodic' && now < this.nextLookAt) return [];
    const started = realMonotonic();
    const { findings } = this.look(trackedFds(), judgement, settings, now, trackedWithinMs);
    if (judgement !== 'now') {
      // Within the budget, but never so far apart that a leak waits for minutes: a look that costs
      // more (procfs in a namespace of many connections) gets more than its share.
      this.nextLookAt = now + Math.min((realMonotonic() - started) / LOOK_BUDGET, this.longestPauseMs);
    }
    return findings;
  }

  /**
   * A check's look (findLeaks, verifyNoLeaks): the untracked sockets leaked now, and how many sit
   * closed unseen by any earlier look (a retry, or the next scan, decides those).
   */
  judgeNow(trackedFds: ReadonlySet<number>, settings: JudgeSettings, now: number, trackedWithinMs: number): { findings: Finding[]; unsettled: number } {
    return this.look(trackedFds, 'now', settings, now, trackedWithinMs);
  }

  /** The fd:inode keys of the untracked TCP descriptors open now (ignoreCurrent). */
  currentKeys(trackedFds: ReadonlySet<number>, trackedWithinMs: number): string[] {
    return this.measure(trackedFds, trackedWithinMs).keys;
  }

  private look(trackedFds: ReadonlySet<number>, judgement: Judgement, settings: JudgeSettings, now: number, trackedWithinMs: number): { findings: Finding[]; unsettled: number } {
    const { fds, keys, rows } = this.measure(trackedFds, trackedWithinMs);
    const records = keys.map((key) => {
      let record = this.records.get(key);
      if (!record) this.records.set(key, (record = untrackedRecord(now)));
      return record;
    });
    // Descriptors gone (or reused for another socket) take their records with them.
    const listed = new Set(keys);
    for (const key of this.records.keys()) if (!listed.has(key)) this.records.delete(key);
    const verdict = judgeUntracked(rows, this.binding.SAMPLE_STRIDE, fds, records, judgement, settings, now);
    for (const finding of verdict.findings) {
      finding.endpoints = this.endpoints(finding.fd);
      finding.untrackedKey = keys[fds.indexOf(finding.fd)];
    }
    return verdict;
  }

  /**
   * The TCP descriptors of the process that no thread's agent tracks, each with its
   * fd:inode key and a scan row (SAMPLE_STRIDE int32s). Out of descriptors (EMFILE,
   * ENFILE), the agent cannot open /proc/self/fd either: none, until the next scan
   * (the descriptor warning tells that story).
   */
  measure(trackedFds: ReadonlySet<number>, trackedWithinMs: number): { fds: number[]; keys: string[]; rows: Int32Array } {
    let listed: { fds: Int32Array; inodes: Float64Array };
    try {
      listed = this.binding.listTcpDescriptors(Int32Array.from(trackedFds).sort());
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EMFILE' || code === 'ENFILE') return { fds: [], keys: [], rows: new Int32Array(0) };
      throw error;
    }
    const { fds, inodes } = listed;
    const candidates: number[] = [];
    const keys: string[] = [];
    for (let i = 0; i < fds.length; i++) {
      if (trackedFds.has(fds[i]!) || this.binding.trackedElsewhere(fds[i]!, trackedWithinMs)) continue;
      candidates.push(fds[i]!);
      keys.push(`${fds[i]}:${inodes[i]}`);
    }
    const rows = new Int32Array(candidates.length * this.binding.SAMPLE_STRIDE);
    this.binding.scanSockets(Int32Array.from(candidates), candidates.length, rows);
    return { fds: candidates, keys, rows };
  }

  /** The addresses of an untracked descriptor; nulls once it closed in the meantime. */
  endpoints(fd: number): { local: Endpoint | null; remote: Endpoint | null } {
    try {
      return this.binding.readEndpoints(fd);
    } catch {
      return { local: null, remote: null };
    }
  }
}
