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
 * Why not a 'close' listener per socket (the agent had one, with the listener
 * allowance raised and given back): the checks cost the same CPU time per
 * connection (measured against it, in one process), and the program's sockets
 * stay as it made them, so a program that counts or removes its listeners sees
 * only its own. The checks walk a plain list, not the map: a Map iterator
 * made and advanced at each new socket cost about 1 µs more where it ran.
 * Why not WeakRef / WeakMap: V8's young-generation GC keeps WeakRef targets
 * alive, so every tracked socket (with its stream state) got promoted to the
 * old generation; on a connect/close loop that more than doubled GC pause
 * time (benchmarks/, README). Dropping closed sockets within a few
 * connections keeps them young.
 */
export class SocketRegistry {
  private readonly records = new Map<Socket, SocketRecord>();
  // The same sockets and records as a list the checks at track() walk, in no order (a socket
  // dropped leaves its place to the last one: record.slot says where each is), and where the
  // checks are in it.
  private readonly listed: Socket[] = [];
  private readonly listedRecords: SocketRecord[] = [];
  private cursor = 0;
  /** Names the test a new socket belongs to; set by the test-runner adapters. */
  attribution: (() => string | undefined) | undefined;
  /** Told of each socket the TIME_WAIT check follows (its record has a tuple) once found closed. */
  onClosed: ((socket: Socket, record: SocketRecord) => void) | undefined;

  /**
   * Starts tracking a socket a channel announced as new (created or accepted just now), unless it
   * is tracked already. Returns the new record, if any. Nothing else is asked of the socket: on
   * this path each call into other code costs a few hundred ns (see prune).
   */
  track(socket: Socket, origin: Origin, creation: StackCapture | undefined): SocketRecord | undefined {
    if (this.records.has(socket)) return undefined;
    // The time is read here, exactly: a report says how long ago the socket was opened.
    const record = newRecord(origin, Date.now(), creation, false);
    if (this.attribution) record.test = this.attribution();
    this.records.set(socket, record);
    record.slot = this.listed.length;
    this.listed.push(socket);
    this.listedRecords.push(record);
    this.prune(PRUNED_PER_TRACK, socket);
    return record;
  }

  /** Starts tracking a socket seen only later (at its first request), unless it is tracked already or has closed. */
  adopt(socket: Socket, origin: Origin): SocketRecord | undefined {
    if (this.records.has(socket) || (!hasHandle(socket) && socket.destroyed)) return undefined;
    return this.track(socket, origin, undefined);
  }

  /**
   * Checks the next `count` sockets of the list for a closed one and drops those: a program that
   * opens sockets closes them at about the rate it opens them, so checking a few more than one per
   * new socket keeps up, and a closed socket waits at most one lap of the list.
   *
   * Measured where it runs (a client that sleeps between connections, so the agent's code is cold),
   * each call into other code costs a few hundred ns whatever it does: Node's `destroyed` getter,
   * a hook that returns at once. So the check is one property read: without a handle, a socket
   * is closed, except the one being tracked, which a channel announces before connect() gives it
   * one (nothing else runs in between). And the TIME_WAIT check hears only of the sockets it follows.
   */
  private prune(count: number, tracking: Socket): void {
    const listed = this.listed;
    for (let i = 0; i < count && listed.length > 0; i++) {
      if (this.cursor >= listed.length) this.cursor = 0;
      const socket = listed[this.cursor]!;
      // A dropped socket's place gets the last one, which the next step checks.
      if (socket !== tracking && !handleOf(socket)) this.drop(socket, this.listedRecords[this.cursor]!);
      else this.cursor++;
    }
  }

  private drop(socket: Socket, record: SocketRecord): void {
    this.unlist(socket, record);
    if (record.tuple !== undefined && this.onClosed) this.onClosed(socket, record);
  }

  /** Takes a socket out of the map and the list: the last of the list takes its place. */
  private unlist(socket: Socket, record: SocketRecord): void {
    if (!this.records.delete(socket)) return;
    const slot = record.slot;
    const lastSocket = this.listed.pop()!;
    const lastRecord = this.listedRecords.pop()!;
    if (lastSocket !== socket) {
      this.listed[slot] = lastSocket;
      this.listedRecords[slot] = lastRecord;
      lastRecord.slot = slot;
    }
    record.slot = -1;
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
    const record = this.records.get(socket);
    if (record) this.unlist(socket, record);
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

  /** Forgets every socket (the registry put nothing on them to take back). */
  clear(): void {
    this.records.clear();
    this.listed.length = 0;
    this.listedRecords.length = 0;
    this.cursor = 0;
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
