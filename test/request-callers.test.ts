// Which line an http request's use names when the request's own stack was not sampled, on real
// loopback requests: the socket's creation stack stands in only for the request that connected
// that socket, never for a later request on it (a pooled reuse, a queued request), even when
// another socket was connected in the same turn as the request was made. An accepted socket's
// response is never taken for a request. A socket http hands to a request's 'upgrade' or 'connect'
// listener keeps that request as its use; one back in a pool, with no request noted, names no line.
import * as http from 'node:http';
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckClock } from '../src/common/clock';
import { captureStack } from '../src/common/stack';
import { SocketRegistry } from '../src/remembered/registry';
import { SocketSources } from '../src/seen/socket-sources';
import { describeLeak } from '../src/explained/leak';
import { formatTextReport } from '../src/told/report-text';
import { TCP_ESTABLISHED } from '../src/common/tcp-states';
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
// Upgrades every request that asks (and accepts every CONNECT), keeping the sockets open.
const upgraded: net.Socket[] = [];
server.on('upgrade', (req, socket: net.Socket) => {
  upgraded.push(socket);
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: demo\r\nConnection: Upgrade\r\n\r\n');
});
server.on('connect', (req, socket: net.Socket) => {
  upgraded.push(socket);
  socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
});

beforeAll(async () => {
  sources.subscribe();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(() => {
  sources.unsubscribe();
  for (const socket of upgraded) socket.destroy();
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
    // At stacks "sampled" an accepted socket is tracked when a look finds it (see SocketsFoundLater).
    sources.findLater(Date.now(), true);
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

/** A request that asks to upgrade (or a CONNECT); resolves with the socket its listener is handed. */
function handedOver(options: http.RequestOptions): Promise<net.Socket> {
  return new Promise((resolve) => {
    const connect = options.method === 'CONNECT';
    const request = http.request({ host: '127.0.0.1', port, path: connect ? `127.0.0.1:${port}` : '/live', headers: connect ? {} : { Connection: 'Upgrade', Upgrade: 'demo' }, ...options });
    request.on(connect ? 'connect' : 'upgrade', (res, socket: net.Socket) => resolve(socket));
    request.end();
  });
}

describe("a client socket http let go of, when the request's own stack was not sampled", () => {
  it("keeps the request that upgraded it, which it was opened for: the creation stack stands in", async () => {
    const socket = await handedOver({ agent: false });
    const record = registry.recordOf(socket)!;
    expect(record.handedTo).toBe('upgrade');
    expect(record.uses?.map((use) => use.path)).toEqual(['/live']);
    expect(record.uses![0]!.caller).toBe(record.creation);
    socket.destroy();
  });

  it('keeps the later request that upgraded a pooled socket, whose line is not known: never the line that opened it', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await readFully(agent);
    const socket = await handedOver({ agent });
    const record = registry.recordOf(socket)!;
    expect(record.creation).toBeDefined();
    expect(record.handedTo).toBe('upgrade');
    expect(record.uses?.map((use) => use.path)).toEqual(['/live']);
    expect(record.uses![0]!.caller).toBeUndefined();
    const leak = describeLeak({ socket, record, fd: -1, state: TCP_ESTABLISHED, closeWaitMs: 0, lastDataSentMs: 0, leftOpen: true }, false, false);
    expect(leak.location).toBeNull();
    expect(leak.lastUse?.url).toMatch(/\/live$/);
    socket.destroy();
    agent.destroy();
  });

  it("keeps a CONNECT request as its use, handed to the 'connect' listener", async () => {
    const socket = await handedOver({ agent: false, method: 'CONNECT' });
    const record = registry.recordOf(socket)!;
    expect(record.handedTo).toBe('connect');
    expect(record.uses?.[0]?.method).toBe('CONNECT');
    expect(record.uses![0]!.caller).toBe(record.creation);
    socket.destroy();
  });

  it("names no line for a socket back in its agent's pool: the request that opened it need not be the one that used it last", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await readFully(agent);
    const [socket] = Object.values(agent.freeSockets).flat() as net.Socket[];
    const record = registry.recordOf(socket!)!;
    expect(record.creation).toBeDefined();
    sources.noteHttpUse(socket!, record);
    expect(record.uses).toBeUndefined();
    // Left open at the end of a check (a strict check's finding): the pool still holds it.
    const leak = describeLeak({ socket, record, fd: -1, state: TCP_ESTABLISHED, closeWaitMs: 0, lastDataSentMs: 0, leftOpen: true }, false, false);
    expect(leak.creation?.file).toBe(__filename);
    expect(leak.location).toBeNull();
    expect(leak.pooled).toBe(true);
    expect(leak.stackNote).toContain(`the line that opened it (${__filename}:`);
    const text = formatTextReport(leak);
    expect(text.split('\n')[0]).toMatch(/^fd -1 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ \(no line: a pooled socket whose last request is not known\)/);
    // Capturing every stack would not name the line: the report does not suggest it.
    expect(text).not.toContain('TCP_LEAK_AGENT_STACKS=all');
    agent.destroy();
  });
});

describe('the listener that notes a handover', () => {
  it('is on client sockets whose creation stack was captured, and unsubscribe() takes it back', async () => {
    const ownRegistry = new SocketRegistry();
    const own = new SocketSources(ownRegistry, socketsOnly, (error) => {
      throw error;
    }, new CheckClock());
    own.subscribe();
    const quiet = await quietServer();
    const socket = net.connect(quiet, '127.0.0.1');
    // This file's sources, and these.
    expect(socket.listenerCount('agentRemove')).toBe(2);
    own.unsubscribe();
    expect(socket.listenerCount('agentRemove')).toBe(1);
    socket.destroy();
  });
});
