import { spawn, type ChildProcess } from 'node:child_process';
import * as diagnosticsChannel from 'node:diagnostics_channel';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, findLeaks, formatLeaks, SocketLeakError, snapshot, start, stop, verifyNoLeaks, type Leak } from '../src/index';
import { bannerServer, closeAll, leakOne, quietServer, silentClient, waitFor } from './loopback';
import { escapeRegExp } from './helpers';

// Where the helpers open their sockets: the line a report must name.
const LOOPBACK = path.join(__dirname, 'loopback.ts');
const children: ChildProcess[] = [];
// Writes its banner and FIN 50 ms after accepting, so the client's 'connect' surely comes first.
const BANNER_SERVER = `require('net').createServer((s) => { s.on('error', () => {}); setTimeout(() => s.end('HELLO'), 50); }).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`;
const sockets: net.Socket[] = [];

function release(socket: net.Socket): void {
  socket.destroy();
}

const seen: Leak[] = [];
beforeAll(() => {
  start({ intervalMs: 60_000, closeWaitMs: 60_000, output: 'none', onLeak: (leak) => seen.push(leak) });
});
afterAll(() => {
  for (const socket of sockets) socket.destroy();
  closeAll();
  for (const child of children) child.kill();
  stop();
});

describe('the API', () => {
  it('start() is idempotent and returns the running agent', () => {
    const agent = start({ intervalMs: 10 });
    expect(agent.running).toBe(true);
    expect(agent.options.intervalMs).toBe(60_000);
    expect(start()).toBe(agent);
  });

  it('verifyNoLeaks() rejects with SocketLeakError naming this file, and resolves once the socket is released', async () => {
    const socket = await leakOne();
    const error = await verifyNoLeaks({ timeoutMs: 300 }).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(SocketLeakError);
    const leaks = (error as SocketLeakError).leaks;
    expect(leaks).toHaveLength(1);
    expect(leaks[0]!.location?.file).toBe(LOOPBACK);
    expect((error as Error).message).toContain(`${LOOPBACK}:`);
    expect((error as SocketLeakError).code).toBe('ERR_TCP_LEAK_AGENT_SOCKET_LEAK');
    release(socket);
    await expect(verifyNoLeaks()).resolves.toBeUndefined();
  });

  it('verifyNoLeaks() does not pass a leak whose FIN Node has not read yet', async () => {
    // The server lives in another process, so blocking this event loop does not stop its FIN.
    const server = spawn(process.execPath, ['-e', BANNER_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(server);
    const port = Number(await new Promise<string>((resolve) => server.stdout.once('data', (data) => resolve(String(data)))));
    const { socket, fd } = await silentClient(port); // a leak once the FIN lands
    // Block the event loop until the kernel has the FIN, so Node cannot have read it yet.
    const deadline = Date.now() + 10_000;
    while (!snapshot().some((s) => s.fd === fd && s.state === 'CLOSE_WAIT')) {
      if (Date.now() > deadline) throw new Error('the client never reached CLOSE_WAIT');
    }
    // Not a leak yet (Node has the EOF still to read), and not settled either: verify must wait and see.
    expect(findLeaks()).toEqual([]);
    await expect(verifyNoLeaks({ timeoutMs: 300 })).rejects.toBeInstanceOf(SocketLeakError);
    release(socket);
  });

  it('verifyNoLeaks() waits for a FIN that Node has not processed yet instead of calling it a leak', async () => {
    const port = await bannerServer();
    const socket = net.connect(port, '127.0.0.1');
    socket.on('data', () => {}); // a well-behaved client: reads, and closes on the server's FIN
    sockets.push(socket);
    await new Promise((resolve) => socket.once('connect', resolve));
    await expect(verifyNoLeaks()).resolves.toBeUndefined();
  });

  it('findLeaks() scans now; snapshot() shows every tracked socket with its kernel state', async () => {
    const socket = await leakOne();
    // CLOSE_WAIT in the kernel is not yet a leak while Node has the EOF still to read: poll.
    await waitFor('a leak', () => findLeaks().length > 0);
    const leaks = findLeaks();
    expect(leaks).toHaveLength(1);
    expect(leaks[0]).toMatchObject({ kind: 'close-wait', state: 'CLOSE_WAIT', origin: 'client', atExit: false });
    const mine = snapshot().find((s) => s.fd === leaks[0]!.fd);
    expect(mine).toMatchObject({ state: 'CLOSE_WAIT', origin: 'client' });
    expect(mine!.location?.file).toBe(LOOPBACK);
    expect(seen).toHaveLength(0); // findLeaks reports nothing on its own
    release(socket);
  });

  it('formatLeaks() writes text that starts with file:line:column, and JSON lines', async () => {
    const socket = await leakOne();
    const error = (await verifyNoLeaks({ timeoutMs: 200 }).catch((e: unknown) => e)) as SocketLeakError;
    const text = formatLeaks(error.leaks, 'text');
    expect(text.split('\n')[0]).toMatch(new RegExp(`^${escapeRegExp(LOOPBACK)}:\\d+:\\d+`));
    expect(text).toContain('What to do:');
    const json = formatLeaks(error.leaks, 'json').trim().split('\n');
    expect(json).toHaveLength(1);
    const parsed = JSON.parse(json[0]!);
    for (const key of ['kind', 'state', 'fd', 'local', 'remote', 'closeWaitMs', 'createdAt', 'origin', 'location', 'stack']) {
      expect(parsed, key).toHaveProperty(key);
    }
    release(socket);
  });

  it('publishes nothing on the leak channel and calls no onLeak for findLeaks()/verifyNoLeaks()', async () => {
    const socket = await leakOne();
    let published = 0;
    const onLeak = () => published++;
    diagnosticsChannel.subscribe('tcp-leak-agent:leak', onLeak);
    try {
      // A real leak, found by both: they return it, and tell nobody.
      await waitFor('a leak', () => findLeaks().length > 0);
      await expect(verifyNoLeaks({ timeoutMs: 100 })).rejects.toBeInstanceOf(SocketLeakError);
    } finally {
      diagnosticsChannel.unsubscribe('tcp-leak-agent:leak', onLeak);
      release(socket);
    }
    expect(published).toBe(0);
    expect(seen).toHaveLength(0);
  });
});

describe('tracking leaves no trace in the program', () => {
  it('a socket the agent has looked at keeps the shape of the program\'s other sockets: its addresses come from the kernel', async () => {
    const port = await quietServer();
    const { socket } = await silentClient(port);
    findLeaks(); // a check: the agent reads the peer of every connected socket it tracks, once
    const row = snapshot().find((tracked) => tracked.remote?.port === port);
    expect(row?.remote).toEqual({ address: '127.0.0.1', port, family: 'IPv4' });
    // Where the backend reads one socket at a time, nothing is cached on the socket: Node adds
    // `_peername` when JavaScript reads socket.remoteAddress, and that gives it a shape of its own.
    // The procfs backend reads whole tables per call, so there Node reads it, as before.
    if (backend === 'native') expect(Object.hasOwn(socket, '_peername')).toBe(false);
    socket.destroy();
  });

  it('a program that adds ten close listeners to a socket gets no MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    const port = await bannerServer();
    const socket = net.connect(port, '127.0.0.1');
    sockets.push(socket);
    for (let i = 0; i < 10; i++) socket.on('close', () => {});
    await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    process.off('warning', onWarning);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    expect(socket.listenerCount('close')).toBe(11); // ten of the program's and the agent's one
    socket.destroy();
  });
});

describe('without a running agent', () => {
  it('stop() takes the agent off every socket it tracked', async () => {
    const port = await bannerServer();
    const socket = net.connect(port, '127.0.0.1');
    sockets.push(socket);
    const before = socket.listenerCount('close');
    stop();
    expect(socket.listenerCount('close')).toBe(before - 1);
    expect(socket.getMaxListeners()).toBe(10);
    socket.destroy();
  });

  it('verifyNoLeaks() rejects with ERR_TCP_LEAK_AGENT_NOT_RUNNING, findLeaks() and snapshot() are empty', async () => {
    stop();
    await expect(verifyNoLeaks()).rejects.toMatchObject({ code: 'ERR_TCP_LEAK_AGENT_NOT_RUNNING' });
    expect(findLeaks()).toEqual([]);
    expect(snapshot()).toEqual([]);
  });
});
