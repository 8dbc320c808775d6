import { describe, expect, it } from 'vitest';
import { explain, FAST, markerLine, runFixture } from './helpers';

// Node announces each http request where it is made (http.client.request.created), so a
// request over a reused socket has its caller. An http socket's use is the request in flight,
// read from the socket when the leak is reported (nothing runs as a request is dispatched), so
// http reports one use; fetch()'s are noted as each is sent, and keep the earlier one too.
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
      expect(leak!.uses).toHaveLength(1);
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

describe('at the production defaults (stacks sampled), a pooled leak', () => {
  it('is never located at another call site of the pool, and is named once it repeats', async () => {
    const fixture = 'pooled-periodic-leak.js';
    // No stack setting, outside a test run: what a service gets.
    const env = { ...FAST, NODE_ENV: 'production', TCP_LEAK_AGENT_STACKS: '' };
    const result = await runFixture(fixture, { env });
    expect(result.code, explain(result)).toBe(0);
    const { leaks } = JSON.parse(result.stdout.trim().split('\n').pop()!) as { leaks: Array<{ line: number | null; lastUse?: string; stackNote?: string }> };
    expect(leaks.length, explain(result)).toBeGreaterThanOrEqual(1);
    // Every leak is the export's: its line, or none (never the health check's).
    for (const leak of leaks) {
      expect(leak.lastUse).toMatch(/\/big\?report=…$/);
      if (leak.line === null) expect(leak.stackNote).toMatch(/^the request that last used this socket \(GET http:\/\/127\.0\.0\.1:\d+\/big\?report=…\) was made where no stack was captured/);
      else expect(leak.line).toBe(markerLine(fixture, 'LEAK'));
    }
    expect(leaks.some((leak) => leak.line === markerLine(fixture, 'LEAK')), explain(result)).toBe(true);
    expect(leaks.some((leak) => leak.line === markerLine(fixture, 'HEALTH'))).toBe(false);
  });
});

describe('at the production defaults (stacks sampled), a one-time leak on a pooled socket', () => {
  // The leaking request's caller is not captured (only 1 in 200 is); its response callback,
  // which once() drops as the response arrives, was kept as the request was made.
  for (const args of [[], ['queued']]) {
    it(`is located at its response callback, told as such${args.length ? ' (queued behind maxSockets: 1)' : ''}`, async () => {
      const fixture = 'pooled-callback-leak.js';
      const env = { ...FAST, NODE_ENV: 'production', TCP_LEAK_AGENT_STACKS: '' };
      const result = await runFixture(fixture, { env, args });
      expect(result.code, explain(result)).toBe(0);
      const told = JSON.parse(result.stdout.trim().split('\n').pop()!) as { location: { line: number } | null; listener?: { event: string; location: { line: number } }; lastUse?: { location: unknown } };
      // The caller, when the random sample caught it; else the callback, and the report says which.
      if (told.lastUse?.location) expect(told.location?.line, explain(result)).toBe(markerLine(fixture, 'LEAK'));
      else {
        expect(told.location?.line, explain(result)).toBe(markerLine(fixture, 'CALLBACK'));
        expect(told.listener, explain(result)).toMatchObject({ event: 'response', location: { line: markerLine(fixture, 'CALLBACK') } });
      }
    });
  }
});
