import { captureStack, type StackCapture } from '../common/stack';
import type { StackLevel } from '../common/types';
import { realMonotonic } from '../common/real-time';

/**
 * Stacks captured, at most, per leak that had no line, while its key is hunted: about 13 µs
 * each when taken at every call, so a hunt costs at most about 25 ms of CPU.
 */
export const HUNT_CAPTURES = 2000;
/** A hunt: stacks left to capture, and when it began. */
interface Hunt {
  left: number;
  since: number;
}

/** Keys whose first call was captured are remembered up to this many, then forgotten together. */
const KEYS_REMEMBERED = 4096;
/**
 * Random captures a second, at most about: past `every` times this many calls a second, the
 * random ones are drawn sparser (one in 2, 4, 8... times `every`). A random capture is taken
 * alone, its stack walk out of the caches, about 90 µs here at the default depth (a profile of a
 * keep-alive client making 15,000 requests a second: its 75 captures a second were half of what
 * the agent did as each request was made; at 20 a second they still cost that client about 1%,
 * measured out of process). What the random ones are for, a leak's line the first time it
 * happens, is as likely at any rate per call, and at such rates a call's odds are already under
 * one in a thousand; a leak that repeats is named by its hunt, the first call to each place by its own capture.
 */
export const SAMPLED_PER_SECOND = 10;
/**
 * How often the rate of calls is measured, at most (at a due capture: no clock is read per call).
 * Short, so that a process busy from its start is paced within its first tenth of a second (at a
 * second, a client making 15,000 requests a second took 75 stacks in its first one).
 */
const PACE_MS = 100;
/** The sparsest the pacing draws, as a multiple of `every`. */
const PACED_SPARSEST = 1 << 16;

/**
 * Decides, call by call, whether a stack is captured (stacks: "sampled").
 * A capture costs 50 to 90 µs when taken now and then (V8's stack walk is out of
 * the caches by then; 13 µs when taken at every call), the agent's largest cost
 * per request, so most calls go without; which ones get one:
 * - the first call of each key (a request's host, a fetch() origin; sockets
 *   share one key): a program's first connection to each place, often the one
 *   a short script leaks, gets its line;
 * - one call in `every`, at random: a counter could line up with a workload
 *   whose period divides it (one leaking call in ten would never be sampled,
 *   or always). The gaps between chosen calls are drawn at random (geometric,
 *   mean `every`): the same odds for every call, one random draw per capture
 *   instead of one per call; and at most about SAMPLED_PER_SECOND a second
 *   (the mean doubles while calls come faster);
 * - every call while descriptors run short (see `pressure`): the process is about to
 *   fail, its next sockets are the ones a dump at the limit has to name, and a
 *   stack costs nothing next to EMFILE;
 * - every call of a hunted key: after a leak whose line was not captured,
 *   every request to its host (or every socket, for a leak with no request)
 *   until a leak of that key is named, for at most HUNT_CAPTURES stacks. A
 *   leak that repeats is then named the next time it happens.
 */
export class StackPolicy {
  /** Request keys (hosts, origins) whose first request was captured. */
  private readonly firstOfKey = new Set<string>();
  private firstSocketSeen = false;
  /** Hunted request keys: stacks left to capture, and when the hunt began. */
  private readonly hunts = new Map<string, Hunt>();
  /** The hunt over every new socket (leaks with no request), when one is on. */
  private socketHunt: Hunt | undefined;
  /** The last key found in firstOfKey: a service calls the same few places over and over. */
  private lastKey: string | undefined;
  /** Calls left until the next random capture (see nextGap). */
  private untilSample: number;
  /** The mean gap now: `every`, or a multiple of it while calls come fast (see SAMPLED_PER_SECOND). */
  private gapMean: number;
  /** When the rate of calls was last measured, and the calls since (the gaps drawn). */
  private pacedAt: number;
  private callsSincePace = 0;
  /** Set while open descriptors are past the warning level: every call is captured until it eases. */
  pressure = false;

  /** `random` and `clock` (milliseconds, monotonic): tests give their own. */
  constructor(
    readonly level: StackLevel,
    readonly every: number,
    readonly depth: number,
    private readonly random: () => number = Math.random,
    private readonly clock: () => number = realMonotonic,
  ) {
    this.gapMean = every;
    this.pacedAt = clock();
    this.untilSample = this.nextGap();
  }

  /**
   * Calls until the next random capture: geometric with mean `gapMean`, so each call is chosen
   * with probability 1/gapMean independently of the others, as a draw per call would be.
   */
  private nextGap(): number {
    const mean = this.gapMean;
    const gap = mean <= 1 ? 1 : 1 + Math.floor(Math.log(1 - this.random()) / Math.log(1 - 1 / mean));
    this.callsSincePace += gap;
    return gap;
  }

  /** Whether this call is one of the random 1 in `gapMean`. */
  private sampled(): boolean {
    if (--this.untilSample > 0) return false;
    this.pace();
    this.untilSample = this.nextGap();
    return true;
  }

  /**
   * At a due capture, at most once per PACE_MS: draws the next gaps sparse enough for about
   * SAMPLED_PER_SECOND captures a second at the rate of calls since the last time. (`every` of 1
   * asks for every call: not paced.)
   */
  private pace(): void {
    if (this.every <= 1) return;
    const now = this.clock();
    const elapsed = now - this.pacedAt;
    if (elapsed < PACE_MS) return;
    const perSecond = (this.callsSincePace * 1000) / elapsed;
    let mean = this.every;
    while (mean < this.every * PACED_SPARSEST && perSecond / mean > SAMPLED_PER_SECOND) mean *= 2;
    this.gapMean = mean;
    this.pacedAt = now;
    this.callsSincePace = 0;
  }

  /** A stack for a new socket, or undefined when it goes without. */
  forSocket(): StackCapture | undefined {
    if (this.level !== 'sampled') return this.level === 'all' ? captureStack(this.depth) : undefined;
    let chosen: boolean;
    if (this.pressure) {
      chosen = true;
    } else if (this.socketHunt) {
      chosen = true;
      if (--this.socketHunt.left <= 0) this.socketHunt = undefined;
    } else if (!this.firstSocketSeen) {
      chosen = this.firstSocketSeen = true;
    } else {
      chosen = this.sampled();
    }
    return chosen ? captureStack(this.depth) : undefined;
  }

  /** A stack for a request made to `key` (its host, or a fetch() origin), or undefined when it goes without. */
  forRequest(key: string | undefined): StackCapture | undefined {
    if (this.level !== 'sampled') return this.level === 'all' ? captureStack(this.depth) : undefined;
    return this.requestChosen(key) ? captureStack(this.depth) : undefined;
  }

  private requestChosen(key: string | undefined): boolean {
    if (this.pressure) return true;
    if (key !== undefined) {
      if (this.hunts.size > 0) {
        const hunt = this.hunts.get(key);
        if (hunt !== undefined) {
          if (--hunt.left <= 0) this.hunts.delete(key);
          return true;
        }
      }
      if (key !== this.lastKey) {
        this.lastKey = key;
        if (!this.firstOfKey.has(key)) {
          if (this.firstOfKey.size >= KEYS_REMEMBERED) this.firstOfKey.clear();
          this.firstOfKey.add(key);
          return true;
        }
      }
    }
    return this.sampled();
  }

  /**
   * A leak was told without a line: hunt its key (the host of the request that last used the
   * socket; undefined: a socket no request used), so that the next one is named.
   */
  hunt(requestKey: string | undefined, now: number): void {
    if (this.level !== 'sampled') return;
    if (requestKey === undefined) this.socketHunt ??= { left: HUNT_CAPTURES, since: now };
    else if (!this.hunts.has(requestKey)) this.hunts.set(requestKey, { left: HUNT_CAPTURES, since: now });
  }

  /**
   * A leak of this key was named, its socket (or last request) made at `madeAt`: the hunt, if
   * any, is over when that was during the hunt (a named leak from before it says nothing of
   * the leak that started it).
   */
  named(requestKey: string | undefined, madeAt: number): void {
    if (requestKey === undefined) {
      if (this.socketHunt && madeAt >= this.socketHunt.since) this.socketHunt = undefined;
      return;
    }
    const hunt = this.hunts.get(requestKey);
    if (hunt && madeAt >= hunt.since) this.hunts.delete(requestKey);
  }

  /** Words for a report whose socket had no stack captured: why, and what happens next. */
  describe(lastUse: { method: string; url: string } | undefined): string {
    if (this.level === 'off') return 'creation stacks are off (stacks: "off")';
    const paced = this.gapMean > this.every ? `, 1 in ${this.gapMean} at this rate: at most about ${SAMPLED_PER_SECOND} a second` : '';
    const sampled = `stacks: "sampled", the first call to each place and 1 in ${this.every} at random${paced}`;
    if (lastUse) {
      return (
        `the request that last used this socket (${lastUse.method} ${lastUse.url}) was made where no stack was captured (${sampled}); ` +
        `every request to its host is captured from now on, so the line is named when this leak happens again`
      );
    }
    return `this socket's creation stack was not sampled (${sampled}); every new socket is captured from now on, so the line is named when this leak happens again`;
  }
}
