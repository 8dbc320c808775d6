import type { Socket } from 'node:net';
import { handleOf } from '../common/node-internals';
import type { StackCapture } from '../common/stack';
import type { Origin } from '../common/types';
import { newRecord, type SocketRecord } from './socket-record';

export type { SocketRecord } from './socket-record';

/** Picks sockets for a visit: the socket, its record, and its position in the registry's order. */
export type Selection = (socket: Socket, record: SocketRecord, position: number) => boolean;

/** Records the registry checks for a closed socket each time it starts tracking one (see prune). */
const PRUNED_PER_TRACK = 4;

/**
 * Every open TCP socket the agent has seen, from the moment it is seen until
 * the registry finds it closed.
 *
 * The agent never extends a socket's life by more than a few connections:
 * an open socket is held by its libuv handle whatever JavaScript does (Node
 * never collects an open socket, which is why leaks last), and a closed one is
 * dropped at the next socket tracked (each new record checks the next few in
 * the map, a lap at a time) or at the next periodic scan (which checks every
 * one), so it is free for the next GC or the one after.
 *
 * Why not a listener: a 'close' listener per socket, with the listener
 * allowance raised and given back, cost about 2 µs of a new connection's CPU
 * (adding it, calling it, taking it off), more than the rest of tracking.
 * Why not WeakRef / WeakMap: V8's young-generation GC keeps WeakRef targets
 * alive, so every tracked socket (with its stream state) got promoted to the
 * old generation; on a connect/close loop that more than doubled GC pause
 * time (benchmarks/, README). Dropping closed sockets within a few
 * connections keeps them young.
 */
export class SocketRegistry {
  private readonly records = new Map<Socket, SocketRecord>();
  // Where the checks at track() are: a Map iterator stays valid while entries come and go.
  private cursor: MapIterator<[Socket, SocketRecord]> | undefined;
  /** Names the test a new socket belongs to; set by the test-runner adapters. */
  attribution: (() => string | undefined) | undefined;
  /** Told of each tracked socket found closed, before its record is dropped. */
  onClosed: ((socket: Socket, record: SocketRecord) => void) | undefined;

  /** Starts tracking `socket` unless it already is, or has already closed. Returns the new record, if any. */
  track(socket: Socket, origin: Origin, creation: StackCapture | undefined): SocketRecord | undefined {
    if (this.records.has(socket) || (socket.destroyed && !hasHandle(socket))) return undefined;
    // The time is read here, exactly: a report says how long ago the socket was opened.
    const record = newRecord(origin, Date.now(), creation, false);
    if (this.attribution) record.test = this.attribution();
    this.records.set(socket, record);
    this.prune(PRUNED_PER_TRACK);
    return record;
  }

  /**
   * Checks the next `count` records for a closed socket and drops those: a program that opens
   * sockets closes them at about the rate it opens them, so checking a few more than one per new
   * socket keeps up, and a closed socket waits at most one lap of the map.
   */
  private prune(count: number): void {
    let cursor = (this.cursor ??= this.records.entries());
    for (let i = 0; i < count; i++) {
      const next = cursor.next();
      if (next.done) {
        // A finished iterator stays finished: the next lap starts from the oldest record.
        cursor = this.cursor = this.records.entries();
        if (i > 0) return;
        continue;
      }
      const [socket, record] = next.value;
      if (isClosed(socket)) this.drop(socket, record);
    }
  }

  private drop(socket: Socket, record: SocketRecord): void {
    this.records.delete(socket);
    if (this.onClosed) this.onClosed(socket, record);
  }

  has(socket: Socket): boolean {
    return this.records.has(socket);
  }

  recordOf(socket: Socket): SocketRecord | undefined {
    return this.records.get(socket);
  }

  /** How many sockets are tracked (closed ones included until they are found closed). */
  get size(): number {
    return this.records.size;
  }

  /** Stops tracking a socket, for example one the kernel says is not TCP (a pipe). */
  forget(socket: Socket): void {
    this.records.delete(socket);
  }

  /**
   * Calls `visit` for each tracked socket that has an open descriptor, and drops every closed
   * one it passes (also those `select` would skip: a periodic scan is the registry's full lap).
   * A socket left without a handle (its connect() threw before opening one) counts as closed.
   */
  forEachOpen(visit: (socket: Socket, fd: number, record: SocketRecord) => void, select?: Selection): void {
    let position = 0;
    for (const [socket, record] of this.records) {
      if (isClosed(socket)) {
        this.drop(socket, record);
        continue;
      }
      // Asked before the descriptor: a scan that measures a few of many pays little for the rest.
      if (select && !select(socket, record, position++)) continue;
      const fd = descriptorOf(socket);
      if (fd === CLOSED) {
        this.drop(socket, record);
        continue;
      }
      // fd -1: libuv has not opened the socket yet (DNS lookup in progress).
      if (fd >= 0) visit(socket, fd, record);
    }
  }

  /** Forgets every socket (the agent leaves nothing on them). */
  clear(): void {
    this.records.clear();
    this.cursor = undefined;
  }
}

const CLOSED = -2;

/**
 * Closed: destroyed, and without a handle. (A client socket is announced before connect() gives
 * it a handle: no handle alone says nothing.)
 */
function isClosed(socket: Socket): boolean {
  return !handleOf(socket) && socket.destroyed;
}

function hasHandle(socket: Socket): boolean {
  return Boolean(handleOf(socket));
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
