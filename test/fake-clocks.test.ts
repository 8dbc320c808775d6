import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { explain, FIXTURES, markerLine, runFixture } from './helpers';

// A program that fakes the clock (with the real @sinonjs/fake-timers) is still watched on the
// real one: its leak is reported during the run, at its line, with ages of this world. With the
// agent reading the faked Date, no dwell ever grew and the run passed in silence.
describe.concurrent('a program that fakes the clock for its whole run', () => {
  for (const faked of ['date', 'timers']) {
    it(`has its leak reported on the real clock (${faked === 'date' ? 'Date frozen at 0' : 'Date, performance and every timer faked'})`, async () => {
      const startedAt = Date.now();
      // The defaults but the output: nothing shortened, so the agent's own timers must run.
      const result = await runFixture('fake-clock-leak.js', { args: [faked], env: { TCP_LEAK_AGENT_FORMAT: 'json', TCP_LEAK_AGENT_STACKS: 'all' } });
      expect(result.code, explain(result)).toBe(0);
      expect(result.leaks, explain(result)).toHaveLength(1);
      const [leak] = result.leaks;
      expect(leak!.atExit, explain(result)).toBe(false);
      expect(leak!.location, explain(result)).toMatchObject({ file: path.join(FIXTURES, 'fake-clock-leak.js'), line: markerLine('fake-clock-leak.js') });
      for (const time of [leak!.createdAt, leak!.detectedAt]) {
        expect(Date.parse(time), explain(result)).toBeGreaterThanOrEqual(startedAt);
        expect(Date.parse(time), explain(result)).toBeLessThanOrEqual(Date.now());
      }
      expect(leak!.closeWaitMs, explain(result)).toBeGreaterThanOrEqual(1000);
      expect(leak!.closeWaitMs, explain(result)).toBeLessThan(60_000);
    });
  }
});
