import { describe, expect, it } from 'vitest';
import type { Leak } from '../src/common/types';
import { carriedByContextFrames } from '../src/seen/served-requests';
import { formatTextReport } from '../src/told/report-text';
import { explain, FAST, markerLine, runFixture } from './helpers';

// Real client libraries at the versions in package.json: the report names the library's own
// calls, not Node's http API or fetch().
const cases = [
  { library: 'node-fetch-2', code: 'unread-node-fetch-body', fix: 'res.body.resume()' },
  { library: 'node-fetch-3', code: 'unread-node-fetch-body', fix: 'res.body.resume()' },
  { library: 'undici', code: 'unread-undici-body', fix: 'await body.dump()' },
  { library: 'axios', code: 'unread-axios-stream', fix: 'response.data.resume()' },
  { library: 'got', code: 'unread-got-stream', fix: 'stream.resume()' },
];

// Every case also at the production defaults (no stack setting, outside a test run): the library is
// recognised without stacks, and the location is the library call's line or none.
const PRODUCTION = { ...FAST, NODE_ENV: 'production', TCP_LEAK_AGENT_STACKS: '' };
const settings = [
  { name: '', env: FAST },
  { name: ' (production defaults)', env: PRODUCTION },
];

describe.concurrent('an unread body through a client library is explained in its own terms', () => {
  for (const [{ library, code, fix }, { name, env }] of cases.flatMap((c) => settings.map((s) => [c, s] as const))) {
    it(`${library}${name}`, async () => {
      const fixture = 'library-unread-body.js';
      const result = await runFixture(fixture, { args: [library], env });
      expect(result.code, explain(result)).toBe(0);
      const { cause, line } = JSON.parse(result.stdout.trim().split('\n').pop()!) as { cause: { code: string; fix: string }; line: number | null };
      expect(cause.code, explain(result)).toBe(code);
      expect(cause.fix).toContain(fix);
      // A line the evidence supports, or none: never another.
      const lines = markerLines(fixture);
      if (line !== null) expect(lines).toContain(line);
    });
  }
});

/** Every line of a fixture that carries the LEAK marker. */
function markerLines(fixture: string): number[] {
  const first = markerLine(fixture);
  return [first, first + 1, first + 2, first + 3, first + 4];
}

/**
 * A fixture run with its fix (the argument `fixed`) leaks nothing: it prints null (no leak within
 * its scans) as its last line, and the agent reported nothing.
 */
async function expectNoLeakWithFix(fixture: string): Promise<void> {
  const result = await runFixture(fixture, { args: ['fixed'], env: { ...FAST, TCP_LEAK_AGENT_STALL_MS: '60000' } });
  expect(result.code, explain(result)).toBe(0);
  expect(result.stdout.trim().split('\n').pop(), explain(result)).toBe('null');
  expect(result.leaks).toHaveLength(0);
}

describe.concurrent('a gateway on http-proxy whose client leaves mid-response', () => {
  const fixture = 'http-proxy-client-aborts.js';

  it('leaks the upstream socket: told in http-proxy\'s terms, at the proxy.web() line, with the upstream as the URL', async () => {
    const result = await runFixture(fixture, { env: { ...FAST, TCP_LEAK_AGENT_STALL_MS: '60000' } });
    // (the first request to the upstream is captured at the production defaults too: see below)
    expect(result.code, explain(result)).toBe(0);
    const leak = JSON.parse(result.stdout.trim().split('\n').pop()!) as Pick<Leak, 'location' | 'lastUse' | 'cause' | 'remote'>;
    expect(leak.cause?.code, explain(result)).toBe('proxy-response-abandoned');
    expect(leak.cause?.fix).toContain("proxy.on('proxyRes'");
    expect(leak.location?.line).toBe(markerLine(fixture));
    // The socket's real peer (the upstream), not the client's Host header (the gateway).
    expect(leak.lastUse?.url).toBe(`http://127.0.0.1:${leak.remote?.port}/reports/monthly?token=…`);
    expect(leak.lastUse?.host).toBe('gateway');
    // The gateway's endpoint that made it: the incoming request, and the server that took it.
    expect(leak.lastUse?.served).toMatchObject({ method: 'GET', url: '/reports/monthly?token=…', server: { line: markerLine(fixture, 'LISTEN') } });
  });

  it('leaks nothing with the fix the report gives', () => expectNoLeakWithFix(fixture));
});

// Where continuations carry context frames (Node 24 and later), the endpoint being served is
// followed through the handler's async code; on Node 22 only its synchronous turn is (see ServedRequests).
// In a test run (stacks: "all") from the start; at the production defaults from the first leak whose
// endpoint was not found, as stacks are hunted.
const followsAsyncCode = carriedByContextFrames();

type GatewayLeak = Pick<Leak, 'location' | 'lastUse' | 'cause'>;

async function gatewayLeaks(app: string, env: Record<string, string>, twice = false): Promise<{ leaks: GatewayLeak[]; result: Awaited<ReturnType<typeof runFixture>> }> {
  const result = await runFixture('gateway-async-proxy.js', { args: twice ? [app, 'twice'] : [app], env: { ...env, TCP_LEAK_AGENT_STALL_MS: '60000' } });
  expect(result.code, explain(result)).toBe(0);
  const leaks = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as GatewayLeak);
  for (const leak of leaks) expect(leak.cause?.code, explain(result)).toBe('proxy-response-abandoned');
  return { leaks, result };
}

describe.concurrent('a gateway whose proxying runs in async code', () => {
  const fixture = 'gateway-async-proxy.js';
  const endpoint = { method: 'GET', url: '/reports/monthly?token=…', server: { line: markerLine(fixture, 'LISTEN') } };
  const served = (leak: GatewayLeak) => (followsAsyncCode ? expect(leak.lastUse?.served).toMatchObject(endpoint) : expect(leak.lastUse?.served).toBeUndefined());

  it('express 4 + http-proxy-middleware 2 (the proxy request is made after an await, in the library): the endpoint is named, and no line', async () => {
    const { leaks: [leak], result } = await gatewayLeaks('express4-hpm', FAST);
    // Only the library's code is on the stack: no line of the program to name.
    expect(leak!.location, explain(result)).toBeNull();
    served(leak!);
    // The text report's first line names the endpoint when it has no line to name.
    if (followsAsyncCode) expect(formatTextReport(result.leaks[0]!).split('\n')[0]).toContain(' (made while serving GET /reports/monthly?token=…) over fd ');
  });

  it("express 5, an async route handler that awaits, then proxies: the handler's line and the endpoint", async () => {
    const { leaks: [leak], result } = await gatewayLeaks('express5-async', FAST);
    expect(leak!.location?.line, explain(result)).toBe(markerLine(fixture));
    served(leak!);
  });

  it('at the production defaults, the endpoint is followed from the first leak whose endpoint was not found: the next leak names it', async () => {
    for (const app of ['express4-hpm', 'express5-async']) {
      const { leaks, result } = await gatewayLeaks(app, PRODUCTION, true);
      expect(leaks, explain(result)).toHaveLength(2);
      expect(leaks[0]!.lastUse?.served).toBeUndefined();
      served(leaks[1]!);
      // A line the evidence supports, or none: never another.
      for (const leak of leaks) if (leak.location) expect(leak.location.line).toBe(markerLine(fixture));
    }
  });
});

describe.concurrent('at the production defaults (no stack setting)', () => {
  it('a gateway on http-proxy: http-proxy\'s terms, the served endpoint, and the proxy.web() line (the first request to the upstream is captured)', async () => {
    const fixture = 'http-proxy-client-aborts.js';
    const result = await runFixture(fixture, { env: { ...PRODUCTION, TCP_LEAK_AGENT_STALL_MS: '60000' } });
    expect(result.code, explain(result)).toBe(0);
    const leak = JSON.parse(result.stdout.trim().split('\n').pop()!) as Pick<Leak, 'location' | 'lastUse' | 'cause'>;
    expect(leak.cause?.code, explain(result)).toBe('proxy-response-abandoned');
    expect(leak.location?.line).toBe(markerLine(fixture));
    expect(leak.lastUse?.served).toMatchObject({ method: 'GET', url: '/reports/monthly?token=…' });
  });

  it("a socket dropped by an 'upgrade' listener is located at the listener, which V8 names without any stack", async () => {
    const fixture = 'upgrade-socket-dropped.js';
    const result = await runFixture(fixture, { env: PRODUCTION });
    expect(result.leaks, explain(result)).toHaveLength(1);
    expect(result.leaks[0]!.location?.line).toBe(markerLine(fixture, 'UPGRADE'));
    expect(result.leaks[0]!.listener?.event).toBe('upgrade');
  });
});

describe.concurrent("a CONNECT proxy whose 'connect' listener answers 502 and forgets the socket", () => {
  const fixture = 'connect-proxy-upstream-refused.js';

  for (const { name, env } of settings) {
    it(`leaks the refused tunnel's socket, located at that listener${name}`, async () => {
      const result = await runFixture(fixture, { env: { ...env, TCP_LEAK_AGENT_STALL_MS: '60000' } });
      expect(result.code, explain(result)).toBe(0);
      const leak = JSON.parse(result.stdout.trim().split('\n').pop()!) as Pick<Leak, 'location' | 'cause' | 'listener'>;
      expect(leak.cause?.code, explain(result)).toBe('connect-not-closed');
      expect(leak.location?.line).toBe(markerLine(fixture));
      expect(leak.listener).toMatchObject({ event: 'connect', what: "the server's 'connect' listener" });
    });
  }

  it('leaks nothing when the error path ends the socket (and the tunnel that worked closed cleanly)', () => expectNoLeakWithFix(fixture));
});

describe.concurrent("ws in noServer mode, an 'upgrade' listener that routes one path and forgets the others", () => {
  const fixture = 'ws-noserver-unrouted.js';

  for (const { name, env } of settings) {
    it(`leaks the unrouted socket, located at that listener${name}`, async () => {
      const result = await runFixture(fixture, { env: { ...env, TCP_LEAK_AGENT_STALL_MS: '60000' } });
      expect(result.code, explain(result)).toBe(0);
      const leak = JSON.parse(result.stdout.trim().split('\n').pop()!) as Pick<Leak, 'location' | 'cause' | 'listener'>;
      expect(leak.cause?.code, explain(result)).toBe('upgrade-not-routed');
      expect(leak.cause?.fix).toContain('wss.handleUpgrade()');
      expect(leak.location?.line).toBe(markerLine(fixture));
      expect(leak.listener?.what).toBe("the server's 'upgrade' listener");
    });
  }

  it('leaks nothing when the listener destroys what it does not route', () => expectNoLeakWithFix(fixture));
});
