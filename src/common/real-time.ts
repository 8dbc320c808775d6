import { performance as perfHooksPerformance } from 'node:perf_hooks';
import * as timers from 'node:timers';

/**
 * The agent's clocks and timers: the real ones, whatever the program does to the globals.
 *
 * Tests install fake clocks (@sinonjs/fake-timers, and jest's and vitest's fake timers built on
 * it) that replace `Date`, `performance.now`, `process.hrtime` and the timer functions, on the
 * global, on `node:timers` and on `node:perf_hooks`. An agent reading them reports ages of
 * decades, or never sees a socket's dwell grow and passes a leaking run in silence. So each is
 * taken when this module loads (the preload and the CLI load it before any test code); where a
 * fake is already installed by then (an adapter loaded after it), the original that
 * fake-timers keeps on its clock (`clock._Date`, `clock._setInterval`, ...) is used instead.
 */

type Clocked = { clock?: Record<string, unknown> };

/** `current`, or, when it is fake-timers' fake, the original it replaced. */
function original<T>(current: T, name: string): T {
  const clock = current !== null && (typeof current === 'function' || typeof current === 'object') ? (current as Clocked).clock : undefined;
  const saved = clock !== null && typeof clock === 'object' ? clock[`_${name}`] : undefined;
  return saved !== undefined && typeof saved === typeof current ? (saved as T) : current;
}

const RealDate = original(Date, 'Date');
const dateNow = RealDate.now.bind(RealDate);
// fake-timers shadows `now` with a property of the performance object itself: the prototype's is the real one.
const perfNow = (Object.getPrototypeOf(perfHooksPerformance) as { now(): number }).now.bind(perfHooksPerformance);
const realSetInterval = original(timers.setInterval, 'setInterval');
const realClearInterval = original(timers.clearInterval, 'clearInterval');
const realSetTimeout = original(timers.setTimeout, 'setTimeout');
const realClearTimeout = original(timers.clearTimeout, 'clearTimeout');
const realSetImmediate = original(timers.setImmediate, 'setImmediate');
const realClearImmediate = original(timers.clearImmediate, 'clearImmediate');

/** Milliseconds since the epoch, from the real clock (Date.now() as it was). */
export function realNow(): number {
  return dateNow();
}

/** A monotonic reading in milliseconds, for durations (performance.now() as it was). */
export function realMonotonic(): number {
  return perfNow();
}

// Not a clock fake-timers replaces. Node 22 has it from 22.19 (24 and 26 always): before that, wall time.
const threadCpuUsage = typeof process.threadCpuUsage === 'function' ? process.threadCpuUsage.bind(process) : undefined;

/**
 * The CPU time this thread has used (user + system, in ms), for work budgeted as a share of a core:
 * on a busy machine the same work takes several times as long in wall time, waiting for a core.
 * Where Node cannot tell, the monotonic clock, which never reads less.
 */
export function threadCpuMs(): number {
  if (threadCpuUsage === undefined) return perfNow();
  const used = threadCpuUsage();
  return (used.user + used.system) / 1000;
}

/** An ISO 8601 time: `ms` since the epoch, or now. */
export function realIso(ms: number = dateNow()): string {
  return new RealDate(ms).toISOString();
}

/** The timer functions as they were. */
export const realTimers = {
  setInterval: realSetInterval,
  clearInterval: realClearInterval,
  setTimeout: realSetTimeout,
  clearTimeout: realClearTimeout,
  setImmediate: realSetImmediate,
  clearImmediate: realClearImmediate,
};
