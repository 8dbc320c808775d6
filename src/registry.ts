import type { Socket } from 'node:net';
import type { StackCapture } from './stack';
import type { Origin } from './types';

/** What the agent remembers about one socket. Lives exactly as long as the socket. */
export interface SocketRecord {
  readonly origin: Origin;
  /** Date.now() when the agent first saw the socket. */
  readonly createdAt: number;
  /** Creation stack (client sockets) or the server's listen() stack (accepted sockets). */
  readonly creation: StackCapture | undefined;
  /** When the periodic scan first saw CLOSE_WAIT; 0 while it has not. */
  closeWaitSince: number;
  /** Reported already: each leak is told once. */
  reported: boolean;
  /** This socket's entry in the scan set. */
  readonly ref: WeakRef<Socket>;
}

/**
 * Every TCP socket the agent has seen, held weakly.
 *
 * Records live in a WeakMap keyed by the socket, so a record (and the stack it
 * holds, whose frames reference the socket) dies with the socket. The scan
 * walks a set of WeakRefs and drops the ones whose socket is closed or gone,
 * so a closed socket leaves nothing behind once a scan has passed.
 */
export class SocketRegistry {
  private readonly records = new WeakMap<Socket, SocketRecord>();
  private readonly live = new Set<WeakRef<Socket>>();

  /** Starts tracking `socket` unless it already is. Returns false when it was known. */
  track(socket: Socket, origin: Origin, creation: StackCapture | undefined): boolean {
    if (this.records.has(socket)) return false;
    const ref = new WeakRef(socket);
    this.records.set(socket, { origin, createdAt: Date.now(), creation, closeWaitSince: 0, reported: false, ref });
    this.live.add(ref);
    return true;
  }

  has(socket: Socket): boolean {
    return this.records.has(socket);
  }

  recordOf(socket: Socket): SocketRecord | undefined {
    return this.records.get(socket);
  }

  /** How many sockets are held for scanning (including ones closed since the last scan). */
  get size(): number {
    return this.live.size;
  }

  /** Stops scanning a socket, for example one the kernel says is not TCP (a pipe). */
  forget(socket: Socket): void {
    const record = this.records.get(socket);
    if (record) this.live.delete(record.ref);
  }

  /**
   * Calls `visit` for each tracked socket that has an open descriptor, and
   * forgets those that were closed or collected.
   */
  forEachOpen(visit: (socket: Socket, fd: number) => void): void {
    for (const ref of this.live) {
      const socket = ref.deref();
      const fd = socket ? descriptorOf(socket) : CLOSED;
      if (fd === CLOSED) {
        this.live.delete(ref);
        continue;
      }
      // fd -1: libuv has not opened the socket yet (DNS lookup in progress).
      if (fd >= 0) visit(socket!, fd);
    }
  }

  /** Forgets every socket. */
  clear(): void {
    this.live.clear();
  }
}

const CLOSED = -2;

interface HandleLike {
  fd?: unknown;
}

/**
 * The descriptor behind a socket: `_handle.fd` (TLS handles delegate it to
 * their TCP handle). -1 while connecting, CLOSED once the handle is gone.
 */
export function descriptorOf(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: HandleLike | null })._handle;
  if (!handle) return socket.destroyed ? CLOSED : -1;
  const fd = handle.fd;
  if (typeof fd !== 'number') return -1;
  // Node reports -22 (EINVAL) when the handle is no longer alive.
  return fd >= -1 ? fd : CLOSED;
}
