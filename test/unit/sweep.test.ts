import { describe, expect, it } from 'vitest';
import { Sweep } from '../../src/measured/sweep';

/** The registry positions a planned scan covers. */
function covered(sweep: Sweep, size: number, now: number): number[] {
  sweep.plan(size, now);
  const positions: number[] = [];
  for (let i = 0; i < size; i++) if (sweep.covers(i)) positions.push(i);
  return positions;
}

describe('the slow sweep', () => {
  it('per socket: a rolling window sized by the budget reaches every socket, and shrinks when sockets cost more', () => {
    const sweep = new Sweep(5, 1000, false);
    const size = 20_000;
    const seen = new Set<number>();
    let scans = 0;
    let window = 0;
    while (seen.size < size && scans < 100) {
      const positions = covered(sweep, size, scans * 1000);
      window = positions.length;
      for (const position of positions) seen.add(position);
      // Each socket costs 2.5 µs: the budget of 5 ms per scan pays for 2,000.
      sweep.done(positions.length * 0.0025, positions.length, scans * 1000);
      scans++;
    }
    expect(seen.size).toBe(size);
    expect(window).toBeGreaterThan(1800);
    expect(window).toBeLessThan(2200);
    expect(scans).toBeLessThanOrEqual(14); // 10 at 2,000 a scan, after a first guess of 5 µs a socket
  });

  it('per socket: with few sockets, every one at every scan', () => {
    const sweep = new Sweep(5, 1000, false);
    expect(covered(sweep, 300, 0)).toHaveLength(300);
    sweep.done(300 * 0.002, 300, 0);
    expect(covered(sweep, 300, 1000)).toHaveLength(300);
  });

  it('per read: every socket at once, then a pause of 1000 / msPerSecond times what that took', () => {
    const sweep = new Sweep(5, 1000, true);
    expect(covered(sweep, 18_000, 0)).toHaveLength(18_000);
    sweep.done(300, 18_000, 0); // 300 ms: the next sweep in 60 s
    expect(covered(sweep, 18_000, 1000)).toHaveLength(0);
    expect(covered(sweep, 18_000, 59_000)).toHaveLength(0);
    expect(covered(sweep, 18_000, 60_000)).toHaveLength(18_000);
  });

  it('off at 0 ms per second', () => {
    expect(covered(new Sweep(0, 1000, false), 10, 0)).toHaveLength(0);
    expect(covered(new Sweep(0, 1000, true), 10, 0)).toHaveLength(0);
  });
});
