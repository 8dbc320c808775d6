import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/common/settings';
import { HUNT_CAPTURES, SAMPLED_PER_SECOND, StackPolicy } from '../../src/seen/stack-policy';

/** A seeded generator (mulberry32): the sampling test draws the same numbers on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How many of `calls` got a stack. */
function captured(calls: number, take: () => unknown): number {
  let count = 0;
  for (let i = 0; i < calls; i++) if (take()) count++;
  return count;
}

describe('the stack policy (stacks: "sampled")', () => {
  it('captures the first request to each host and the first socket, then one in `every` at random', () => {
    const never = new StackPolicy('sampled', 50, 10, () => 0.99);
    expect(never.forRequest('a.example:80')).toBeDefined();
    expect(never.forRequest('a.example:80')).toBeUndefined();
    expect(never.forRequest('b.example:80')).toBeDefined();
    expect(never.forSocket()).toBeDefined();
    expect(captured(100, () => never.forSocket())).toBe(0);
    // A draw of 0 makes every gap one call: every call is captured.
    const always = new StackPolicy('sampled', 50, 10, () => 0, () => 0);
    expect(captured(20, () => always.forRequest('a.example:80'))).toBe(20);
  });

  it('captures every call while descriptors run short, and samples again once they ease', () => {
    const policy = new StackPolicy('sampled', 50, 10, () => 0.99);
    policy.forRequest('a.example:80');
    policy.forSocket();
    policy.pressure = true;
    expect(captured(100, () => policy.forSocket())).toBe(100);
    expect(captured(100, () => policy.forRequest('a.example:80'))).toBe(100);
    policy.pressure = false;
    expect(captured(100, () => policy.forSocket())).toBe(0);
    expect(captured(100, () => policy.forRequest('a.example:80'))).toBe(0);
  });

  it('samples one call in `every` at random, which a periodic workload cannot line up with', () => {
    // A clock that stands still: no pacing (see the test below).
    const policy = new StackPolicy('sampled', 50, 10, seeded(13), () => 0);
    policy.forRequest('a.example:80');
    // 100,000 calls, one in ten of them (the leaking one of a period of ten) counted apart:
    // each kind is captured one time in 50 (bounds: five standard deviations).
    let all = 0;
    let periodic = 0;
    for (let i = 0; i < 100_000; i++) {
      if (!policy.forRequest('a.example:80')) continue;
      all++;
      if (i % 10 === 0) periodic++;
    }
    expect(all).toBeGreaterThan(2000 - 5 * 44);
    expect(all).toBeLessThan(2000 + 5 * 44);
    expect(periodic).toBeGreaterThan(200 - 5 * 14);
    expect(periodic).toBeLessThan(200 + 5 * 14);
  });

  it('takes at most about SAMPLED_PER_SECOND random stacks a second however fast the calls come, and one in `every` again once they slow', () => {
    let now = 0;
    const policy = new StackPolicy('sampled', 50, 10, seeded(7), () => now);
    policy.forRequest('a.example:80'); // its first
    /** Captures among `calls` calls spread over `seconds`. */
    const over = (seconds: number, calls: number) =>
      captured(calls, () => {
        now += (seconds * 1000) / calls;
        return policy.forRequest('a.example:80');
      });
    // 100,000 calls a second from the start: one in 50 only until the rate is first measured (a
    // tenth of a second on: about 200 of 10,000 calls), then sparse enough for SAMPLED_PER_SECOND a
    // second (one in 12,800: about 7 in the rest of the second). Paced once a second, as before,
    // the first second took about 2,000.
    const first = over(1, 100_000);
    expect(first).toBeGreaterThan(200 - 5 * 14);
    expect(first).toBeLessThan(200 + 5 * 14 + 2 * SAMPLED_PER_SECOND);
    const fast = over(10, 1_000_000);
    expect(fast).toBeGreaterThan(10 * SAMPLED_PER_SECOND * 0.4);
    expect(fast).toBeLessThanOrEqual(10 * SAMPLED_PER_SECOND * 1.6);
    // A report with no line says how sparse sampling is at this rate; the option's text names the same bound.
    expect(SETTINGS.find((setting) => setting.option === 'stackSampleEvery')!.summary).toContain(`at most about ${SAMPLED_PER_SECOND} a second`);
    expect(policy.describe(undefined)).toContain(`1 in 50 at random, 1 in 12800 at this rate: at most about ${SAMPLED_PER_SECOND} a second)`);
    // 100 calls a second: the gap drawn at the fast rate runs out first (12,800 calls on average,
    // about 128 s of these; past 120,000 once in 10,000 draws), then one in 50 again: 2 a second,
    // about 400 over 200 s.
    over(1200, 120_000);
    const slow = over(200, 20_000);
    expect(slow).toBeGreaterThan(400 - 5 * 20);
    expect(slow).toBeLessThan(400 + 5 * 20);
  });

  it('hunts a key after a leak without a line, until a leak made during the hunt is named, for at most HUNT_CAPTURES stacks', () => {
    const policy = new StackPolicy('sampled', 50, 10, () => 0.99);
    policy.forRequest('api:80');
    policy.hunt('api:80', 1000);
    expect(captured(10, () => policy.forRequest('api:80'))).toBe(10);
    expect(policy.forRequest('other:80')).toBeDefined(); // its first
    expect(policy.forRequest('other:80')).toBeUndefined(); // not hunted
    policy.named('api:80', 999); // a leak from before the hunt: says nothing
    expect(policy.forRequest('api:80')).toBeDefined();
    policy.named('api:80', 1001);
    expect(policy.forRequest('api:80')).toBeUndefined();
    policy.hunt('api:80', 2000);
    expect(captured(HUNT_CAPTURES + 10, () => policy.forRequest('api:80'))).toBe(HUNT_CAPTURES);
  });

  it('hunts new sockets after a leak with no request', () => {
    const policy = new StackPolicy('sampled', 50, 10, () => 0.99);
    policy.forSocket();
    policy.hunt(undefined, 1000);
    expect(captured(5, () => policy.forSocket())).toBe(5);
    policy.named(undefined, 1500);
    expect(policy.forSocket()).toBeUndefined();
  });

  it('captures everything with "all" and nothing with "off", and never hunts then', () => {
    const all = new StackPolicy('all', 50, 10);
    const off = new StackPolicy('off', 50, 10);
    all.hunt('x', 0);
    off.hunt('x', 0);
    expect(captured(5, () => all.forRequest('x'))).toBe(5);
    expect(captured(5, () => off.forRequest('x')) + captured(5, () => off.forSocket())).toBe(0);
  });
});
