// How many client sockets the TIME_WAIT check follows, on the real backend: one in 8 at a modest
// rate of new connections, and about FOLLOWED_PER_SECOND a second however fast they come, each
// followed one then counting for as many as it stands for.
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../src/measured/backend';
import { FOLLOWED_PER_SECOND, FOLLOW_ONE_IN, TimeWaitWatch } from '../src/measured/time-wait';

/** Follows asked for `sockets` new client sockets over `ms` (at the watch's pace), from `start`: how many were followed, and as one in how many. */
function connections(watch: TimeWaitWatch, sockets: number, start: number, ms: number): { followed: number; oneIn: Set<number> } {
  let followed = 0;
  const oneIn = new Set<number>();
  for (let i = 0; i < sockets; i++) {
    const n = watch.follows();
    if (n > 0) {
      followed++;
      oneIn.add(n);
    }
  }
  watch.pace(start + ms);
  return { followed, oneIn };
}

describe('TIME_WAIT following', () => {
  it('follows one socket in 8 at a modest rate, and about FOLLOWED_PER_SECOND a second at any rate above it', () => {
    let now = 1_000_000;
    const watch = new TimeWaitWatch(selectBackend().binding, 5000, 60_000, now);
    watch.followClients = true; // as after a count that found the namespace's TIME_WAIT piling up
    // A modest rate (160 a second: one in 8 of them is under FOLLOWED_PER_SECOND): one in 8.
    const modest = 160;
    expect(modest / FOLLOW_ONE_IN).toBeLessThanOrEqual(FOLLOWED_PER_SECOND);
    let second = connections(watch, modest, now, 1000);
    now += 1000;
    expect(second).toEqual({ followed: modest / FOLLOW_ONE_IN, oneIn: new Set([FOLLOW_ONE_IN]) });
    // 20,000 a second: the next second follows about FOLLOWED_PER_SECOND of them, each standing for the rest.
    connections(watch, 20_000, now, 1000);
    now += 1000;
    second = connections(watch, 20_000, now, 1000);
    now += 1000;
    expect(second.followed).toBeGreaterThanOrEqual(FOLLOWED_PER_SECOND / 2);
    expect(second.followed).toBeLessThanOrEqual(FOLLOWED_PER_SECOND);
    const [oneIn] = [...second.oneIn];
    expect(second.oneIn.size).toBe(1);
    expect(Math.abs(second.followed * oneIn! - 20_000)).toBeLessThanOrEqual(oneIn!);
    // Back to a modest rate: one in 8 again.
    connections(watch, modest, now, 1000);
    now += 1000;
    second = connections(watch, modest, now, 1000);
    expect(second.followed).toBe(modest / FOLLOW_ONE_IN);
  });

  it('paces from the start: a client connecting fast from its first second is followed sparsely once following begins, with scans a few ms early', () => {
    let now = 1_000_000;
    const watch = new TimeWaitWatch(selectBackend().binding, 5000, 60_000, now);
    // The first second, before the first count turned following on: 20,000 new client sockets, none followed.
    const first = connections(watch, 20_000, now, 1000);
    now += 1000;
    expect(first.followed).toBe(0);
    watch.followClients = true;
    // The next second, its scan 4 ms early: about FOLLOWED_PER_SECOND followed, not one in 8 of them.
    const second = connections(watch, 20_000, now, 996);
    now += 996;
    expect(second.followed).toBeGreaterThanOrEqual(FOLLOWED_PER_SECOND / 2);
    expect(second.followed).toBeLessThanOrEqual(FOLLOWED_PER_SECOND);
    // And the pace measured at that early scan holds for the second after it.
    const third = connections(watch, 20_000, now, 1000);
    expect(third.followed).toBeLessThanOrEqual(FOLLOWED_PER_SECOND);
  });
});
