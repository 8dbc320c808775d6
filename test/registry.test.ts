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
  it('drops a closed socket within a few new ones, tells onClosed of the followed ones once, and never drops an open one', async () => {
    const port = await quietServer();
    const registry = new SocketRegistry();
    const closed: net.Socket[] = [];
    registry.onClosed = (socket) => closed.push(socket);
    for (let i = 0; i < 20; i++) open.push(await trackAndConnect(registry, port));
    let largest = 0;
    const followed: net.Socket[] = [];
    for (let i = 0; i < 200; i++) {
      const socket = await trackAndConnect(registry, port);
      if (i % 2 === 0) {
        // As the TIME_WAIT check marks the sockets it follows.
        registry.recordOf(socket)!.tuple = { localPort: socket.localPort!, remoteAddress: '127.0.0.1', remotePort: port, oneIn: 8 };
        followed.push(socket);
      }
      await closeAndWait(socket);
      largest = Math.max(largest, registry.size);
    }
    // 20 open, and closed ones waiting at most one lap of the map.
    expect(largest).toBeLessThanOrEqual(20 + 20);
    for (const socket of open) expect(registry.recordOf(socket)).toBeDefined();

    // A full pass (a periodic scan) drops every closed socket left.
    const visited: net.Socket[] = [];
    registry.forEachOpen((socket) => visited.push(socket));
    expect(registry.size).toBe(20);
    expect(new Set(visited)).toEqual(new Set(open));
    expect(closed).toHaveLength(100);
    expect(new Set(closed)).toEqual(new Set(followed));
  });

  it('keeps the socket being tracked, which a channel announces before connect() gives it a handle', async () => {
    const port = await quietServer();
    const registry = new SocketRegistry();
    // Closed sockets in the list: the checks at the next track pass over the new socket too.
    for (let i = 0; i < 3; i++) await closeAndWait(await trackAndConnect(registry, port));
    const early = unconnected();
    open.push(early);
    expect(registry.track(early, 'client', undefined)).toBeDefined();
    expect(registry.recordOf(early)).toBeDefined();
    expect(registry.size).toBe(1); // the closed ones were dropped on the way
    // As net.connect() does: connect() right after the announcement gives it its handle.
    const connected = new Promise<void>((resolve) => early.connect(port, '127.0.0.1', resolve));
    for (let i = 0; i < 10; i++) await closeAndWait(await trackAndConnect(registry, port));
    await connected;
    expect(registry.recordOf(early)).toBeDefined();
  });
});
