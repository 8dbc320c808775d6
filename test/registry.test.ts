// The registry on real loopback sockets: closed sockets are dropped, open ones never are, and the
// TIME_WAIT check hears only of the sockets it follows.
import * as net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFERRED_AT_FIRST, SocketRegistry } from '../src/remembered/registry';
import { closeAll, quietServer, waitFor } from './loopback';

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

describe('deferred client sockets', () => {
  it('are tracked when settled if still open, never once closed', async () => {
    const port = await quietServer();
    const registry = new SocketRegistry();
    const stayOpen: net.Socket[] = [];
    const seenAt: number[] = [];
    for (let i = 0; i < 3 * DEFERRED_AT_FIRST; i++) {
      const socket = unconnected();
      const before = Date.now();
      registry.defer(socket, 'client', undefined);
      seenAt.push(before, Date.now());
      await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', resolve));
      if (i % 3 === 0) stayOpen.push(socket);
      else await closeAndWait(socket);
    }
    open.push(...stayOpen);
    // A lookup settles the list: the open ones are tracked, with the time they were seen.
    const createdAt = registry.recordOf(stayOpen[stayOpen.length - 1]!)?.createdAt ?? 0;
    const last = 3 * DEFERRED_AT_FIRST - 3;
    expect(createdAt).toBeGreaterThanOrEqual(seenAt[2 * last]!);
    expect(createdAt).toBeLessThanOrEqual(seenAt[2 * last + 1]!);
    expect(registry.size).toBe(stayOpen.length);
    const visited: net.Socket[] = [];
    registry.forEachOpen((socket) => visited.push(socket));
    expect(new Set(visited)).toEqual(new Set(stayOpen));
    // And dropped at their 'close', as tracked ones are.
    await closeAndWait(stayOpen.pop()!);
    expect(registry.size).toBe(stayOpen.length);
  });

  it('are seen by every lookup, and the list never holds more than DEFERRED_AT_FIRST closed ones', async () => {
    const port = await quietServer();
    const registry = new SocketRegistry();
    const socket = unconnected();
    registry.defer(socket, 'client', undefined);
    expect(registry.has(socket)).toBe(true);
    expect(registry.track(socket, 'client', undefined)).toBeUndefined(); // already tracked
    await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', resolve));
    await closeAndWait(socket);
    expect(registry.size).toBe(0);
    const held = registry as unknown as { deferred: unknown[]; deferredCount: number };
    for (let i = 0; i < 5 * DEFERRED_AT_FIRST; i++) {
      registry.defer(new net.Socket().destroy(), 'client', undefined); // closed before it was settled: forgotten then
      expect(held.deferredCount).toBeLessThan(DEFERRED_AT_FIRST);
    }
    // The slots given up are cleared, not left holding the sockets.
    expect(held.deferred.filter((socket) => socket !== undefined)).toHaveLength(held.deferredCount);
    expect(registry.size).toBe(0);
  });

  it('stay on the list while young, however many are open, and are tracked once older', async () => {
    const port = await quietServer();
    const youngMs = 200;
    const registry = new SocketRegistry(youngMs);
    const peek = (socket: net.Socket) => registry.peek(socket);
    const first: net.Socket[] = [];
    // More open at once than the list first holds: it grows rather than tracking them.
    for (let i = 0; i < 2 * DEFERRED_AT_FIRST; i++) {
      const socket = unconnected();
      registry.defer(socket, 'client', undefined);
      await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', resolve));
      first.push(socket);
    }
    open.push(...first);
    expect(first.filter(peek)).toHaveLength(0);
    // Once they are older than youngMs, the next compaction tracks them, and not the young ones.
    const seenAt = Date.now();
    await waitFor('the sockets to be older than youngMs', () => Date.now() - seenAt > youngMs);
    const young: net.Socket[] = [];
    for (let i = 0; first.some((socket) => !peek(socket)); i++) {
      expect(i).toBeLessThan(8 * DEFERRED_AT_FIRST); // a compaction came
      const socket = unconnected();
      registry.defer(socket, 'client', undefined);
      young.push(socket);
    }
    expect(young.filter(peek)).toHaveLength(0);
    for (const socket of young) socket.destroy();
  });

  it('after a burst of young open sockets, the list shrinks back as they close', () => {
    const registry = new SocketRegistry();
    const held = registry as unknown as { deferredCount: number; deferredLimit: number };
    const burst = Array.from({ length: 4 * DEFERRED_AT_FIRST }, () => unconnected());
    for (const socket of burst) registry.defer(socket, 'client', undefined);
    expect(held.deferredLimit).toBeGreaterThan(4 * DEFERRED_AT_FIRST);
    for (const socket of burst) socket.destroy();
    // Closed ones only from now on: each compaction keeps none, and halves the list.
    for (let i = 0; i < 16 * DEFERRED_AT_FIRST; i++) registry.defer(new net.Socket().destroy(), 'client', undefined);
    expect(held.deferredLimit).toBe(DEFERRED_AT_FIRST);
    expect(registry.size).toBe(0);
  });
});
