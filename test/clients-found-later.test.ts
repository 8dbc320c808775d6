import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { explain, FAST, FIXTURES, markerLine, runFixture } from './helpers';

// At stacks "off" a client socket is only counted as it is made, and found at a scan among the
// process's handles (src/seen/sockets-found-later.ts). Its leak must be told as "off" told it
// before: the connection, the request on it, and a line only where V8 locates a function (the
// request's response callback), never a caller's; when it was made, as a window.
const OFF = { ...FAST, TCP_LEAK_AGENT_STACKS: 'off', TCP_LEAK_AGENT_STALL_MS: '60000' };

const cases: Array<{ fixture: string; cause: string; url?: RegExp; callbackLine?: boolean; orStalled?: boolean }> = [
  { fixture: 'http-get-unread-body.js', cause: 'unread-http-response', url: /^http:\/\/127\.0\.0\.1:\d+\/report$/, callbackLine: true },
  { fixture: 'https-get-unread-body.js', cause: 'unread-http-response', url: /^https:\/\/127\.0\.0\.1:\d+\/$/, callbackLine: true, orStalled: true },
  { fixture: 'queued-request-leaks.js', cause: 'unread-http-response', url: /^http:\/\/127\.0\.0\.1:\d+\/big$/, callbackLine: true },
  { fixture: 'fetch-unread-body.js', cause: 'unread-fetch-body', url: /^http:\/\/127\.0\.0\.1:\d+\/report$/ },
  { fixture: 'net-banner-never-read.js', cause: 'unread' },
  { fixture: 'half-open-client-never-ends.js', cause: 'eof-not-ended' },
];

describe.concurrent('a leaked client socket, at stacks "off"', () => {
  for (const { fixture, cause, url, callbackLine, orStalled } of cases) {
    it(`${fixture}: caught, told with ${url ? 'its request' : 'its connection'} and ${callbackLine ? "its response callback's line" : 'no line'}`, async () => {
      const result = await runFixture(fixture, { env: orStalled ? { ...OFF, TCP_LEAK_AGENT_STALL_MS: FAST.TCP_LEAK_AGENT_STALL_MS } : OFF });
      expect(result.code, explain(result)).toBe(0);
      expect(result.leaks, explain(result)).toHaveLength(1);
      const [leak] = result.leaks;
      const stalled = orStalled && leak!.kind === 'stalled-reader';
      expect(leak, explain(result)).toMatchObject({ kind: stalled ? 'stalled-reader' : 'close-wait', origin: 'client', creation: null, cause: { code: cause } });
      if (callbackLine) expect(leak!.location, explain(result)).toMatchObject({ file: path.join(FIXTURES, fixture), line: markerLine(fixture, 'LEAK') });
      else expect(leak!.location, explain(result)).toBeNull();
      if (url) {
        expect(leak!.lastUse).toMatchObject({ method: 'GET', location: null });
        expect(leak!.lastUse!.url).toMatch(url);
      } else {
        expect(leak!.lastUse).toBeUndefined();
      }
      // Found at a scan: when it was made is known as a window.
      expect(leak!.createdAtLatest, explain(result)).toBeDefined();
      expect(Date.parse(leak!.createdAt)).toBeLessThanOrEqual(Date.parse(leak!.createdAtLatest!));
      expect(Date.parse(leak!.createdAtLatest!)).toBeLessThanOrEqual(Date.parse(leak!.detectedAt));
    });
  }

  it('leads its text report with the request where no function names a line, and says stacks are off', async () => {
    const result = await runFixture('fetch-unread-body.js', { env: { ...OFF, TCP_LEAK_AGENT_FORMAT: 'text' } });
    expect(result.code, explain(result)).toBe(0);
    const lines = result.stderr.split('\n');
    expect(lines[0], explain(result)).toMatch(/^GET http:\/\/127\.0\.0\.1:\d+\/report over fd \d+ 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ \(no line/);
    expect(result.stderr).toContain('No line to name: creation stacks are off (stacks: "off")');
    expect(result.stderr).toContain('What to do: read the body (await response.text()');
    expect(result.stderr).toMatch(/client socket, opened [^,]+ ago/);
  });

  it('missed by scans while unref\'d, then found: its window holds the moment it was opened', async () => {
    const result = await runFixture('client-missed-then-leaks.js', { env: OFF });
    expect(result.code, explain(result)).toBe(0);
    const { openedAt } = JSON.parse(result.stdout.trim().split('\n')[0]!) as { openedAt: number };
    expect(result.leaks, explain(result)).toHaveLength(1);
    const [leak] = result.leaks;
    expect(leak).toMatchObject({ kind: 'close-wait', origin: 'client', location: null });
    // Date.now() and the agent's clock read at the same millisecond's grain.
    expect(Date.parse(leak!.createdAt), explain(result)).toBeLessThanOrEqual(openedAt + 1);
    expect(Date.parse(leak!.createdAtLatest!)).toBeGreaterThanOrEqual(openedAt - 1);
  });
});

describe.concurrent('a healthy client gets no report, at stacks "off"', () => {
  for (const fixture of ['keep-alive-idle-closed-by-server.js', 'http-clients-half-close.js', 'long-lived-idle-connections.js', 'slow-consumer-keeps-reading.js', 'fetch-body-cancelled.js']) {
    it(fixture, async () => {
      // FAST's stall time, as in clean-programs-stay-silent.test.ts: some wait for scans three stall times long.
      const result = await runFixture(fixture, { env: { ...FAST, TCP_LEAK_AGENT_STACKS: 'off', TCP_LEAK_AGENT_FAIL_ON_LEAK: '1' } });
      expect(result.stderr, explain(result)).toBe('');
      expect(result.code, explain(result)).toBe(0);
    });
  }
});
