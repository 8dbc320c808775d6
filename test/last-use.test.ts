import { describe, expect, it } from 'vitest';
import { explain, FAST, markerLine, runFixture } from './helpers';

// Node announces each http request where it is made (http.client.request.created), so a
// request over a reused socket has its caller.
describe.concurrent('a socket reused by another request blames the request that leaked it', () => {
  for (const fixture of ['pooled-socket-reused.js', 'queued-request-leaks.js']) {
    it(fixture, async () => {
      const result = await runFixture(fixture, { env: FAST });
      expect(result.code, explain(result)).toBe(0);
      expect(result.leaks, explain(result)).toHaveLength(1);
      const [leak] = result.leaks;
      expect(leak!.creation?.line).toBe(markerLine(fixture, 'OPENED'));
      expect(leak!.lastUse?.method).toBe('GET');
      expect(leak!.lastUse?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/big/);
      expect(leak!.uses).toHaveLength(2);
      expect(leak!.location?.line).toBe(markerLine(fixture, 'LEAK'));
      expect(leak!.lastUse?.location?.line).toBe(markerLine(fixture, 'LEAK'));
    });
  }

  it('fetch-pooled-connection-reused.js', async () => {
    const fixture = 'fetch-pooled-connection-reused.js';
    const result = await runFixture(fixture, { env: FAST });
    expect(result.code, explain(result)).toBe(0);
    expect(result.leaks, explain(result)).toHaveLength(1);
    const [leak] = result.leaks;
    expect(leak!.location?.line).toBe(markerLine(fixture, 'LEAK'));
    expect(leak!.creation?.line).toBe(markerLine(fixture, 'OPENED'));
    expect(leak!.uses?.map((use) => use.location?.line)).toEqual([markerLine(fixture, 'OPENED'), markerLine(fixture, 'LEAK')]);
    expect(leak!.cause?.code).toBe('unread-fetch-body');
  });

  it('redacts credentials and query values in the request URL', async () => {
    const result = await runFixture('pooled-socket-reused.js', { env: { ...FAST, TCP_LEAK_AGENT_FORMAT: 'text' } });
    const lastUsed = result.stderr.split('\n').find((line) => line.includes('Last used by'));
    expect(lastUsed, explain(result)).toMatch(/Last used by GET http:\/\/127\.0\.0\.1:\d+\/big\?token=… /);
    expect(lastUsed).not.toContain('secret');
  });
});
