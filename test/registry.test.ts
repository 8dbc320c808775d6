// The registry on real loopback sockets: closed sockets are dropped without any listener on them,
// open ones never are.
import * as net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { SocketRegistry } from '../src/remembered/registry';
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
  it('drops a closed socket within a few new ones, telling onClosed once, and never drops an open one', async () => {
    const port = await quietServer();
    const registry = new SocketRegistry();
    const closed: net.Socket[] = [];
    registry.onClosed = (socket) => closed.push(socket);
    for (let i = 0; i < 20; i++) open.push(await trackAndConnect(registry, port));
    let largest = 0;
    const churned: net.Socket[] = [];
    for (let i = 0; i < 200; i++) {
      const socket = await trackAndConnect(registry, port);
      churned.push(socket);
      await closeAndWait(socket);
      largest = Math.max(largest, registry.size);
    }
    // 20 open, and closed ones waiting at most one lap of the map.
    expect(largest).toBeLessThanOrEqual(20 + 20);
    for (const socket of open) expect(registry.recordOf(socket)).toBeDefined();
    expect(new Set(closed).size).toBe(closed.length);
    for (const socket of closed) expect(churned).toContain(socket);

    // A full pass (a periodic scan) drops every closed socket left.
    const visited: net.Socket[] = [];
    registry.forEachOpen((socket) => visited.push(socket));
    expect(registry.size).toBe(20);
    expect(visited).toEqual(open);
    expect(closed.length).toBe(200);
  });

  it('keeps a socket announced before it has a handle', async () => {
    const port = await quietServer();
    const registry = new SocketRegistry();
    const early = unconnected();
    open.push(early);
    registry.track(early, 'client', undefined);
    // Other sockets come and go before this one connects: each new record checks the others.
    for (let i = 0; i < 10; i++) await closeAndWait(await trackAndConnect(registry, port));
    expect(registry.recordOf(early)).toBeDefined();
    await new Promise<void>((resolve) => early.connect(port, '127.0.0.1', resolve));
    expect(registry.recordOf(early)).toBeDefined();
  });
});
