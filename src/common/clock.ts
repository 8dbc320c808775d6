import { realNow } from './real-time';

/**
 * The agent's own clock for what happens on the hot path: the time of its last check, read as a
 * field. In a process that sleeps between requests, the first Date.now() after waking costs about
 * half a microsecond here, more than the rest of the agent's work on a request; a request's time
 * is therefore known to within one check interval (`intervalMs`), which is what a report needs.
 */
export class CheckClock {
  /** Date.now() at the last check (or at start). */
  now = realNow();

  /** Moves the clock to `now`: at the start of each check, with the time that check uses. */
  set(now: number): void {
    this.now = now;
  }
}
