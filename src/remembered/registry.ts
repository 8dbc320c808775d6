import type { Socket } from 'node:net';
import { handleOf } from '../common/node-internals';
import { socketListener } from '../common/socket-listener';
import type { StackCapture } from '../common/stack';
import type { Origin } from '../common/types';
import { newRecord, type SocketRecord } from './socket-record';
import { realNow } from '../common/real-time';

export type { SocketRecord } from './socket-record';

/** Picks sockets for a visit: the socket, its record, and its position in the registry's order. */
export type Selection = (socket: Socket, record: SocketRecord, position: number) => boolean;

/**
 * Every open TCP socket the agent has seen, from the moment it is seen until
 * its 'close' event.
 *
 * The agent never extends a socket's life: an open socket is held by its
 * libuv handle whatever JavaScript does (Node never collects an open socket,
 * which is why leaks last), and the record is dropped in the socket's own
 * 'close' event, so a closed socket is free for the very next GC.
 *
 * Why not WeakRef / WeakMap: V8's young-generation GC keeps WeakRef targets
 * alive, so every tracked socket (with its stream state) got promoted to the
 * old generation; on a connect/close loop that more than doubled GC pause
 * time (benchmarks/, README). Releasing on 'close' costs one listener.
 *
 * Why not drop closed sockets without a listener (each new socket checking a
 * few tracked ones for a missing handle, the scan checking all): measured
 * against this in one process, the same CPU time per new connection, about
 * 0.3 µs more GC per connection, and more code on the path every new socket
 * takes. The listener stays.
 *
 * A socket with nothing of its own to remember yet (a client socket with no
 * stack captured, no test to name; a socket accepted by a plain server, whose
 * listen() stack is shared) is not tracked as it is created: it is found by
 * discover() at the next check, if it is still open then (see
 * SocketSources.discover). Where a connection lasts one request, most have
 * closed by then and cost nothing. Nothing holds on to them meanwhile: a list
 * of such sockets, compacted only when it filled up, kept about a megabyte of
 * closed connections alive through each young-generation GC of a client
 * making 16 requests at a time on new connections (with V8's allocation-site
 * pretenuring off, that was the whole difference in what survived).
 */
export class SocketRegistry {
  private readonly records = new Map<Socket, SocketRecord>();
  /** Names the test a new socket belongs to; set by the test-runner adapters. */
  attribution: (() => string | undefined) | undefined;
  // One shared listener for every socket (see socketListener).
  private readonly onClose: (this: Socket) => void;
  // The client socket tracked last and its record, until it closes or is taken (takeLastClient):
  // never longer, as a record's creation stack can hold much of the program.
  private lastClient: Socket | undefined;
  private lastClientRecord: SocketRecord | undefined;
  /** Finds the open sockets not tracked yet and tracks them (see discover()); set by the socket sources. */
  discoverer: ((budgeted: boolean) => void) | undefined;

  constructor() {
    const records = this.records;
    const closed = (socket: Socket) => {
      records.delete(socket);
      if (socket === this.lastClient) this.lastClient = this.lastClientRecord = undefined;
    };
    this.onClose = socketListener(closed);
  }

  /** Starts tracking `socket` unless it already is, or has already closed. Returns the new record, if any. */
  track(socket: Socket, origin: Origin, creation: StackCapture | undefined): SocketRecord | undefined {
    // The time is read here, exactly: a report says how long ago the socket was opened.
    return this.trackSince(socket, origin, creation, realNow());
  }

  /** A client socket was seen and not tracked: the next request made did not connect a tracked one (see takeLastClient). */
  seenUntracked(): void {
    this.lastClient = this.lastClientRecord = undefined;
  }

  /**
   * Tracks the open sockets that were not tracked as they were created: before a check measures.
   * `budgeted` (periodic scans): not more often than its cost allows (see SocketSources.discover).
   */
  discover(budgeted = false): void {
    this.discoverer?.(budgeted);
  }

  /** Starts tracking a socket found open, as seen now. */
  trackFound(socket: Socket, origin: Origin, creation: StackCapture | undefined): void {
    this.trackSince(socket, origin, creation, realNow());
    // Not the socket a request made next connected.
    this.lastClient = this.lastClientRecord = undefined;
  }

  private trackSince(socket: Socket, origin: Origin, creation: StackCapture | undefined, createdAt: number): SocketRecord | undefined {
    if (this.records.has(socket) || isClosed(socket)) return undefined;
    const record = newRecord(origin, createdAt, creation, false);
    if (this.attribution) record.test = this.attribution();
    this.records.set(socket, record);
    if (origin === 'client') {
      this.lastClient = socket;
      this.lastClientRecord = record;
    }
    // Our listener must never be the one that trips a MaxListenersExceededWarning,
    // now or when the program adds its own later: raise the allowance by one.
    const max = socket.getMaxListeners();
    if (max !== 0 && Number.isFinite(max)) socket.setMaxListeners(max + 1);
    socket.on('close', this.onClose);
    return record;
  }

  /** The record of the client socket tracked last, if it is still open and was not taken since. */
  takeLastClient(): SocketRecord | undefined {
    const record = this.lastClientRecord;
    this.lastClient = this.lastClientRecord = undefined;
    return record;
  }

  has(socket: Socket): boolean {
    return this.recordOf(socket) !== undefined;
  }

  /** The record of `socket`, if it is tracked. */
  recordOf(socket: Socket): SocketRecord | undefined {
    return this.records.get(socket);
  }

  /** How many sockets are tracked. */
  get size(): number {
    return this.records.size;
  }

  /** Stops tracking a socket, for example one the kernel says is not TCP (a pipe). */
  forget(socket: Socket): void {
    if (this.records.delete(socket)) release(socket, this.onClose);
    if (socket === this.lastClient) this.lastClient = this.lastClientRecord = undefined;
  }

  /**
   * Calls `visit` for each tracked socket that has an open descriptor. A
   * socket left without a handle (its connect() threw before opening one) will
   * never emit 'close', so it is dropped here.
   */
  forEachOpen(visit: (socket: Socket, fd: number, record: SocketRecord) => void, select?: Selection): void {
    let position = 0;
    for (const [socket, record] of this.records) {
      // Asked before the descriptor: a scan that measures a few of many pays little for the rest.
      if (select && !select(socket, record, position++)) continue;
      const fd = descriptorOf(socket);
      if (fd === CLOSED) {
        this.forget(socket);
        continue;
      }
      // fd -1: libuv has not opened the socket yet (DNS lookup in progress).
      if (fd >= 0) visit(socket, fd, record);
    }
  }

  /** The sockets tracked now, for taking other listeners of the agent back. */
  trackedSockets(): IterableIterator<Socket> {
    return this.records.keys();
  }

  /** Forgets every socket and takes the agent's listeners off them. */
  clear(): void {
    for (const socket of this.records.keys()) release(socket, this.onClose);
    this.records.clear();
    this.lastClient = this.lastClientRecord = undefined;
  }
}

const CLOSED = -2;

/** Takes the agent's listener off a socket it stops tracking, and gives back the allowance it took. */
function release(socket: Socket, listener: (this: Socket) => void): void {
  socket.removeListener('close', listener);
  const max = socket.getMaxListeners();
  if (max > 1 && Number.isFinite(max)) socket.setMaxListeners(max - 1);
}

/** Closed for good: destroyed, and its handle gone (a socket can be destroyed before its handle closes). */
export function isClosed(socket: Socket): boolean {
  return socket.destroyed && !handleOf(socket);
}

/**
 * The descriptor behind a socket: `_handle.fd` (TLS handles delegate it to
 * their TCP handle). -1 while connecting, CLOSED once there is no handle.
 */
export function descriptorOf(socket: Socket): number {
  const handle = handleOf(socket);
  if (!handle) return socket.connecting ? -1 : CLOSED;
  const fd = handle.fd;
  if (typeof fd !== 'number') return -1;
  // Node reports -22 (EINVAL) when the handle is no longer alive.
  return fd >= -1 ? fd : CLOSED;
}
