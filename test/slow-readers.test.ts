import { describe, expect, it } from 'vitest';
import { explain, FAST, runFixture } from './helpers';

// A program still taking in a body the peer finished sending is not leaking, whoever asks;
// once it stops taking, it is, whoever asks.
describe('a slow reader in CLOSE_WAIT', () => {
  it('is not a leak for findLeaks() or verifyNoLeaks() while it drains, and is once it stops', async () => {
    const result = await runFixture('throttled-reader-checks.js', { env: { ...FAST, TCP_LEAK_AGENT_STALL_MS: '60000' } });
    expect(result.code, explain(result)).toBe(0);
    const checks = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(checks, explain(result)).toEqual({
      whileDraining: { state: 'CLOSE_WAIT', findLeaks: 0, verify: 'passed' },
      afterStop: { state: 'CLOSE_WAIT', findLeaks: 1, verify: 'ERR_TCP_LEAK_AGENT_SOCKET_LEAK' },
    });
    // The periodic scan told the leak once the reader stopped, and only then.
    expect(result.leaks, explain(result)).toHaveLength(1);
    expect(result.leaks[0]).toMatchObject({ kind: 'close-wait', cause: { code: 'unread-http-response' } });
  });
});
