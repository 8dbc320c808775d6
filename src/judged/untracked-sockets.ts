import { threadId } from 'node:worker_threads';
import type { Judgement } from './detector';
import { slotOf, type KernelReader } from '../measured/kernel-reader';
import { TCP_CLOSE, TCP_CLOSE_WAIT } from '../common/tcp-states';
import type { Endpoint, Leak } from '../common/types';

interface Sighting {
  firstSeen: number;
  /** When a pass first saw the socket in a leaked state; 0 while none has. */
  since: number;
  reported: boolean;
}

/**
 * TCP sockets of this process that the agent never saw created: opened before
 * start(), by a native addon, or inherited. Found by listing the process's own
 * descriptors; identified by fd and inode, since a number can be reused.
 *
 * Only the kernel speaks for them (there is no JavaScript socket to ask
 * whether Node is about to read a FIN), so they are judged by age alone: by
 * the periodic scan after closeWaitMs, and at exit when an earlier scan had
 * already seen them stuck.
 */
export class UntrackedSockets {
  private readonly sightings = new Map<string, Sighting>();

  constructor(private readonly binding: KernelReader) {}

  /**
   * Judges the sockets no thread's agent tracks; returns the leaks to report.
   * `trackedWithinMs`: how recently another thread must have noted a
   * descriptor for it to count as tracked (a few of the longest scan interval).
   */
  judge(trackedFds: ReadonlySet<number>, judgement: Judgement, closeWaitMs: number, now: number, trackedWithinMs: number): Leak[] {
    if (judgement === 'now') return [];
    const { fds: candidates, keys, rows } = this.measure(trackedFds, trackedWithinMs);
    const stride = this.binding.SAMPLE_STRIDE;
    const seen = new Set<string>();
    const leaks: Leak[] = [];
    for (let i = 0; i < candidates.length; i++) {
      const key = keys[i]!;
      seen.add(key);
      let sighting = this.sightings.get(key);
      if (!sighting) this.sightings.set(key, (sighting = { firstSeen: now, since: 0, reported: false }));
      const state = slotOf(rows, stride, i, 'state');
      if (state !== TCP_CLOSE_WAIT && state !== TCP_CLOSE) {
        sighting.since = 0;
        continue;
      }
      const seenBefore = sighting.since !== 0;
      if (!seenBefore) sighting.since = now;
      const age = now - sighting.since;
      const lastDataSentMs = slotOf(rows, stride, i, 'lastDataSentMs');
      const leaked =
        !sighting.reported &&
        (judgement === 'exit' ? seenBefore : age >= closeWaitMs && (state === TCP_CLOSE || lastDataSentMs < 0 || lastDataSentMs >= closeWaitMs));
      if (!leaked) continue;
      sighting.reported = true;
      leaks.push(this.describe(candidates[i]!, state, age, lastDataSentMs, sighting.firstSeen, judgement === 'exit'));
    }
    for (const key of this.sightings.keys()) if (!seen.has(key)) this.sightings.delete(key);
    return leaks;
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
      listed = this.binding.listTcpDescriptors();
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

  private describe(fd: number, state: number, age: number, lastDataSentMs: number, firstSeen: number, atExit: boolean): Leak {
    const { local, remote } = this.endpoints(fd);
    return {
      kind: state === TCP_CLOSE ? 'descriptor-without-connection' : 'close-wait',
      state: state === TCP_CLOSE ? 'CLOSE' : 'CLOSE_WAIT',
      fd,
      local,
      remote,
      closeWaitMs: age,
      lastDataSentMs,
      createdAt: new Date(firstSeen).toISOString(),
      detectedAt: new Date().toISOString(),
      origin: 'unknown',
      location: null,
      creation: null,
      stack: '',
      atExit,
      threadId,
      pid: process.pid,
    };
  }
}
