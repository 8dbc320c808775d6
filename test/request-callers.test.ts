// Which line an http request's use names when the request's own stack was not sampled, on real
// loopback requests: the socket's creation stack stands in only for the request that connected
// that socket, never for a later request on it (a pooled reuse, a queued request), even when
// another socket was connected in the same turn as the request was made. An accepted socket's
// response is never taken for a request.
import * as http from 'node:http';
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckClock } from '../src/common/clock';
import { captureStack } from '../src/common/stack';
import { SocketRegistry } from '../src/remembered/registry';
import { SocketSources } from '../src/seen/socket-sources';
import type { StackPolicy } from '../src/seen/stack-policy';
import { closeAll, quietServer, waitFor } from './loopback';

// Every socket's creation stack captured, no request's: the sampling under test, made certain.
const socketsOnly = { level: 'sampled', every: 200, depth: 20, forSocket: () => captureStack(20), forRequest: () => undefined } as unknown as StackPolicy;

const registry = new SocketRegistry();
const sources = new SocketSources(registry, socketsOnly, (error) => {
  throw error;
}, new CheckClock());
let port = 0;
// Responses to /hold, held open (the accepted socket's _httpMessage) until a test ends them.
const held: http.ServerResponse[] = [];
const server = http.createServer((req, res) => {
  if (req.url === '/hold') held.push(res);
  else res.end('x'.repeat(req.url === '/big' ? 1 << 20 : 10));
});

beforeAll(async () => {
  sources.subscribe();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(() => {
  sources.unsubscribe();
  server.closeAllConnections();
  server.close();
  closeAll();
});

/** A request whose response is left unread: it stays on its socket, as a leaking one does. */
function leaveUnread(options: http.RequestOptions): Promise<net.Socket> {
  return new Promise((resolve) => http.get({ host: '127.0.0.1', port, path: '/big', ...options }, (res) => resolve(res.socket)));
}

/** A request read to its end; resolves once its socket is back in the pool. */
function readFully(agent: http.Agent): Promise<void> {
  return new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port, path: '/small', agent }, (res) => {
      res.resume();
      res.socket.once('free', () => resolve());
    });
  });
}

function useOf(socket: net.Socket) {
  const record = registry.recordOf(socket)!;
  expect(record).toBeDefined();
  expect(record.creation).toBeDefined();
  sources.noteHttpUse(socket, record);
  return { record, use: record.uses?.[record.uses.length - 1] };
}

describe("an http request's caller, when its stack was not sampled", () => {
  it('is the creation stack of the socket the request connected', async () => {
    const socket = await leaveUnread({ agent: false });
    const { record, use } = useOf(socket);
    expect(use?.path).toBe('/big');
    expect(use?.caller).toBe(record.creation);
    socket.destroy();
  });

  it('is unknown for a request that reused a pooled socket', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await readFully(agent);
    const socket = await leaveUnread({ agent });
    const { use } = useOf(socket);
    expect(use?.path).toBe('/big');
    expect(use?.caller).toBeUndefined();
    agent.destroy();
  });

  it('is unknown for a request queued behind maxSockets', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const first = readFully(agent);
    const socket = leaveUnread({ agent });
    await first;
    const { use } = useOf(await socket);
    expect(use?.path).toBe('/big');
    expect(use?.caller).toBeUndefined();
    agent.destroy();
  });

  it("is never read from an accepted socket, whose _httpMessage is the server's response", async () => {
    const answered = new Promise((resolve) => http.get({ host: '127.0.0.1', port, path: '/hold', agent: false }, (res) => res.resume().on('end', resolve)));
    await waitFor('the server to hold the response', () => held.length > 0);
    const response = held.pop()!;
    const record = registry.recordOf(response.socket as net.Socket)!;
    expect(record?.origin).toBe('server');
    sources.noteHttpUse(response.socket as net.Socket, record);
    expect(record.uses).toBeUndefined();
    response.end();
    await answered;
  });

  it('is unknown for a pooled reuse made in the same turn as another socket was connected', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await readFully(agent);
    const quiet = await quietServer();
    const raw = net.connect(quiet, '127.0.0.1'); // tracked just before the request is made
    const socket = await leaveUnread({ agent });
    expect(socket).not.toBe(raw);
    const { use } = useOf(socket);
    expect(use?.caller).toBeUndefined();
    // The raw socket carries no request.
    const { use: rawUse } = useOf(raw);
    expect(rawUse).toBeUndefined();
    raw.destroy();
    agent.destroy();
  });
});
