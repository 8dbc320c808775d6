// The registry on real loopback sockets: closed sockets are dropped, open ones never are, and the
// sockets not tracked as they were made are found by a check while they are open, and only then.
import * as net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { SocketRegistry } from '../src/remembered/registry';
import { SocketSources } from '../src/seen/socket-sources';
import { StackPolicy } from '../src/seen/stack-policy';
import { CheckClock } from '../src/common/clock';
import { closeAll, quietServer } from './loopback';

const open: net.Socket[] = [];
afterAll(() => {
  for (const socket of open) socket.destroy();
  closeAll();
});

/** A socket not connected yet: no handle. */
function unconnected(): net.Socket {
  return new net.Socket().on('error', () => {});
}

/** Tracks a socket as the agent does: announced before connect() gives it a handle. */
async function trackAndConnect(registry: SocketRegistry, port: number): Promise<net.Socket> {
  const socket = unconnected();
  expect(registry.track(socket, 'client', undefined)).toBeDefined();
  await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', resolve));
  return socket;
}

async function closeAndWait(socket: net.Socket): Promise<void> {
  await new Promise((resolve) => socket.destroy().once('close', resolve));
}

describe('the socket registry', () => {
  it('drops each closed socket and never drops an open one', async () => {
    const port = await quietServer();
    const registry = new SocketRegistry();
    for (let i = 0; i < 20; i++) open.push(await trackAndConnect(registry, port));
    let largest = 0;
    for (let i = 0; i < 200; i++) {
      const socket = await trackAndConnect(registry, port);
      await closeAndWait(socket);
      largest = Math.max(largest, registry.size);
    }
    expect(largest).toBe(20); // each closed socket is gone by the time its 'close' has been told
    for (const socket of open) expect(registry.recordOf(socket)).toBeDefined();

    const visited: net.Socket[] = [];
    registry.forEachOpen((socket) => visited.push(socket));
    expect(registry.size).toBe(20);
    expect(new Set(visited)).toEqual(new Set(open));
  });
});

/** A client socket, connected. */
async function connected(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1').on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  return socket;
}

describe('sockets not tracked as they were made (stacks not captured, no test to name)', () => {
  it('are found by a check while open, as seen then; never once closed; never those open before start', async () => {
    const port = await quietServer();
    const fromBefore = await connected(port);
    open.push(fromBefore);
    const registry = new SocketRegistry();
    const sources = new SocketSources(registry, new StackPolicy('off', 50, 10), (error) => { throw error; }, new CheckClock());
    sources.subscribe();
    try {
      const stayOpen: net.Socket[] = [];
      for (let i = 0; i < 30; i++) {
        const socket = await connected(port);
        if (i % 3 === 0) stayOpen.push(socket);
        else await closeAndWait(socket);
      }
      open.push(...stayOpen);
      expect(registry.size).toBe(0); // nothing was tracked as it was made
      const before = Date.now();
      registry.discover();
      const after = Date.now();
      const clients: net.Socket[] = [];
      const accepted: net.Socket[] = [];
      registry.forEachOpen((socket, _fd, record) => {
        if (record.origin === 'client') clients.push(socket);
        else if (record.origin === 'server') accepted.push(socket);
        expect(record.createdAt).toBeGreaterThanOrEqual(before);
        expect(record.createdAt).toBeLessThanOrEqual(after);
      });
      expect(new Set(clients)).toEqual(new Set(stayOpen));
      // This process's server accepted them: their other ends, found too, attributed to it.
      const ports = new Set(stayOpen.map((socket) => socket.localPort));
      expect(accepted.filter((socket) => ports.has(socket.remotePort)).length).toBe(stayOpen.length);
      // And dropped at their 'close', as the others are.
      const closing = stayOpen.pop()!;
      await closeAndWait(closing);
      expect(registry.recordOf(closing)).toBeUndefined();
      for (const socket of stayOpen) expect(registry.recordOf(socket)).toBeDefined();
    } finally {
      sources.unsubscribe();
      registry.clear();
    }
  });
});
