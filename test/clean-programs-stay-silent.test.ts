import { describe, expect, it } from 'vitest';
import { explain, FAST, runFixture } from './helpers';

// Healthy programs: the agent must say nothing at all, during the run or at exit.
const fixtures = [
  'keep-alive-idle-closed-by-server.js',
  'http-clients-half-close.js',
  'long-lived-idle-connections.js',
  'close-wait-resolved-in-grace-time.js',
  'stream-after-client-half-close.js',
  'slow-consumer-keeps-reading.js',
  'fetch-body-cancelled.js',
  // Pauses of ~640 ms between chunks: longer than closeWaitMs, within the consuming window.
  'throttled-reader-drains-body.js',
];

describe.concurrent('a healthy program gets no report', () => {
  for (const fixture of fixtures) {
    it(fixture, async () => {
      // The throttled reader pauses longer than FAST's stall time; its CLOSE_WAIT is what is under test.
      const stall = fixture.startsWith('throttled') ? { TCP_LEAK_AGENT_STALL_MS: '60000' } : {};
      const result = await runFixture(fixture, { env: { ...FAST, ...stall, TCP_LEAK_AGENT_FAIL_ON_LEAK: '1' } });
      expect(result.stderr, explain(result)).toBe('');
      expect(result.code, explain(result)).toBe(0);
    });
  }
});
