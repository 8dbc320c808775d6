import type { Socket } from 'node:net';
import { handleOf } from '../common/node-internals';
import { socketListener } from '../common/socket-listener';
import type { StackCapture } from '../common/stack';
import type { Endpoint, Origin } from '../common/types';
import { newRecord, type SocketRecord } from './socket-record';
import { realNow } from '../common/real-time';

export type { SocketRecord } from './socket-record';

/** How many sockets the deferred list holds before it is first compacted (see defer()). */
export const DEFERRED_AT_FIRST = 32;
/**
 * A deferred socket still open this long after it was seen is tracked when the list is compacted;
 * younger ones stay on the list (see defer()).
 */
export const DEFERRED_YOUNG_MS = 1000;

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
 * Why not WeakRef: V8's young-generation GC keeps WeakRef targets alive, so
 * every tracked socket (with its stream state) got promoted to the old
 * generation; on a connect/close loop that more than doubled GC pause time
 * (benchmarks/, README). Releasing on 'close' costs one listener. (Records
 * in a WeakMap, with the tracked sockets in slots cleared at 'close', were
 * measured against this map too: no change in what GC keeps, docs/figures.md.)
 *
 * Why not drop closed sockets without a listener (each new socket checking a
 * few tracked ones for a missing handle, the scan checking all): measured
 * against this in one process, the same CPU time per new connection, about
 * 0.3 µs more GC per connection, and more code on the path every new socket
 * takes. The listener stays.
 *
 * A socket with nothing of its own to remember yet (a client socket with no
 * stack captured, no test to name, not followed for TIME_WAIT, at stacks
 * "sampled"; a socket accepted by a plain server at stacks "all", whose
 * listen() stack is shared: elsewhere those are found at scans, see
 * SocketsFoundLater) is deferred
 * instead: noted in a short list, and tracked only if it is still open when
 * the list is settled (at the next scan or count; a socket looked up is
 * tracked alone). Where a connection lasts one request, most have closed by
 * then, and they cost a list slot rather than a record, a map entry and a
 * listener: about 10,000 instructions less per client connection
 * (callgrind).
 *
 * When the list is full it is compacted rather than settled: the closed ones
 * go, the open ones seen less than DEFERRED_YOUNG_MS ago stay, older open
 * ones are tracked; when the young ones fill half the list, it grows. Why by
 * age and not by count: the map's table lives in V8's old generation, and a
 * young socket put in it is kept by every copy V8 makes of the table as it
 * grows or drops deleted entries (the copy left behind is garbage only the
 * next full GC collects): each one, with its requests and buffers, survived
 * the young-generation GCs and was promoted. Tracking the open ones beyond
 * the newest 16 did that to a quarter of a client's connections (16
 * requests in flight on new connections): 1.7 MB surviving each scavenge
 * against 0.5 MB without the agent (docs/figures.md). A socket that has
 * lived a second is old to the GC too under such a load. The list holds only
 * the sockets the program holds, plus the closed ones of at most one list's
 * length (back to DEFERRED_AT_FIRST at each settle, halved at a compaction
 * that keeps few); its slots are cleared as they are given up, and the arrays
 * are never cut short (a shorter copy leaves the same kind of garbage behind).
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
  // Sockets deferred (see defer()), in the first deferredCount slots: each one's origin, creation
  // stack, and when it was seen. Slots past the count are cleared (undefined), never cut off.
  private readonly deferred: Array<Socket | undefined> = [];
  private readonly deferredOrigins: Origin[] = [];
  private readonly deferredCreations: Array<StackCapture | undefined> = [];
  private readonly deferredAt: number[] = [];
  private deferredCount = 0;
  // The count at which the list is compacted next.
  private deferredLimit = DEFERRED_AT_FIRST;
  /** How many sockets were made or accepted since start (and pooled ones from before): handed to track() or defer(), or counted as accepted to be found later (see SocketsFoundLater). */
  seen = 0;

  /** `youngMs`: see DEFERRED_YOUNG_MS (tests shorten it). */
  constructor(private readonly youngMs = DEFERRED_YOUNG_MS) {
    const records = this.records;
    const closed = (socket: Socket) => {
      records.delete(socket);
      if (socket === this.lastClient) this.lastClient = this.lastClientRecord = undefined;
    };
    this.onClose = socketListener(closed);
  }

  /** Starts tracking `socket` unless it already is, or has already closed. Returns the new record, if any. */
  track(socket: Socket, origin: Origin, creation: StackCapture | undefined): SocketRecord | undefined {
    this.seen++;
    // The time is read here, exactly: a report says how long ago the socket was opened.
    return this.trackSince(socket, origin, creation, realNow());
  }

  /**
   * Tracks a socket found after it was made (see SocketsFoundLater), unless it already is tracked or
   * has closed: it was made between `madeAfter` and `foundAt`. Not counted in `seen` (counted as it came).
   */
  adopt(socket: Socket, origin: Origin, creation: StackCapture | undefined, madeAfter: number, foundAt: number): SocketRecord | undefined {
    const record = this.trackSince(socket, origin, creation, madeAfter);
    if (record) record.createdAtLatest = foundAt;
    return record;
  }

  /** Notes a socket to track later, if it is still open then: at the next settle(). */
  defer(socket: Socket, origin: Origin, creation: StackCapture | undefined): void {
    // Not the socket a request made next connected, as far as takeLastClient() can tell.
    if (origin === 'client') this.lastClient = this.lastClientRecord = undefined;
    this.seen++;
    const at = this.deferredCount++;
    this.deferred[at] = socket;
    this.deferredOrigins[at] = origin;
    this.deferredCreations[at] = creation;
    // Read now, exactly, as track() does.
    this.deferredAt[at] = realNow();
    if (this.deferredCount >= this.deferredLimit) this.compact();
  }

  /** Drops the deferred sockets that closed, keeps the young open ones, tracks the older open ones. */
  private compact(): void {
    const sockets = this.deferred;
    const youngSince = realNow() - this.youngMs;
    let to = 0;
    for (let i = 0; i < this.deferredCount; i++) {
      const socket = sockets[i]!;
      if (isClosed(socket)) continue;
      if (this.deferredAt[i]! <= youngSince) {
        this.trackSince(socket, this.deferredOrigins[i]!, this.deferredCreations[i], this.deferredAt[i]!);
        continue;
      }
      sockets[to] = socket;
      this.deferredOrigins[to] = this.deferredOrigins[i]!;
      this.deferredCreations[to] = this.deferredCreations[i];
      this.deferredAt[to] = this.deferredAt[i]!;
      to++;
    }
    this.clearDeferredFrom(to);
    // Young open sockets fill half the list: it grows, so that compacting stays a small cost per
    // socket; when they fill under a quarter it shrinks back, so that after a burst it does not
    // keep that many closed ones between compactions.
    if (to * 2 > this.deferredLimit) this.deferredLimit *= 2;
    else if (to * 4 < this.deferredLimit && this.deferredLimit > DEFERRED_AT_FIRST) this.deferredLimit /= 2;
    // A socket tracked here was not connected by the request made next.
    this.lastClient = this.lastClientRecord = undefined;
  }

  /** Tracks the deferred sockets still open, and forgets the rest. */
  private settle(): void {
    if (this.deferredCount === 0) return;
    const sockets = this.deferred;
    for (let i = 0; i < this.deferredCount; i++) this.trackSince(sockets[i]!, this.deferredOrigins[i]!, this.deferredCreations[i], this.deferredAt[i]!);
    this.clearDeferredFrom(0);
    this.deferredLimit = DEFERRED_AT_FIRST;
    this.lastClient = this.lastClientRecord = undefined;
  }

  /** Forgets the deferred sockets from slot `from` on, clearing their slots (see the class comment). */
  private clearDeferredFrom(from: number): void {
    for (let i = from; i < this.deferredCount; i++) this.deferred[i] = this.deferredCreations[i] = undefined;
    this.deferredCount = from;
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

  /** The record of `socket` if it is tracked, without tracking a deferred one. */
  peek(socket: Socket): SocketRecord | undefined {
    return this.records.get(socket);
  }

  has(socket: Socket): boolean {
    return this.recordOf(socket) !== undefined;
  }

  /**
   * The record of `socket`; a deferred socket is tracked now, alone. (Settling the whole list
   * here tracked every connection in flight at each fetch() request sent.)
   */
  recordOf(socket: Socket): SocketRecord | undefined {
    return this.records.get(socket) ?? (this.deferredCount > 0 ? this.trackDeferred(socket) : undefined);
  }

  /** Tracks `socket` now if it is deferred and still open, and takes it off the list. */
  private trackDeferred(socket: Socket): SocketRecord | undefined {
    const sockets = this.deferred;
    // From the newest: a socket is most often looked up soon after it was seen.
    const at = sockets.lastIndexOf(socket, this.deferredCount - 1);
    if (at < 0) return undefined;
    const origin = this.deferredOrigins[at]!;
    const creation = this.deferredCreations[at];
    const createdAt = this.deferredAt[at]!;
    for (let i = at + 1; i < this.deferredCount; i++) {
      sockets[i - 1] = sockets[i];
      this.deferredOrigins[i - 1] = this.deferredOrigins[i]!;
      this.deferredCreations[i - 1] = this.deferredCreations[i];
      this.deferredAt[i - 1] = this.deferredAt[i]!;
    }
    this.clearDeferredFrom(this.deferredCount - 1);
    const record = this.trackSince(socket, origin, creation, createdAt);
    // As in settle(): not the socket a request made next connected, as far as takeLastClient() can tell.
    this.lastClient = this.lastClientRecord = undefined;
    return record;
  }

  /** How many sockets are tracked. */
  get size(): number {
    this.settle();
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
    this.settle();
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

  /**
   * The remote ends of the open client sockets whose addresses a scan has read (see the record's
   * `endpoints`), each once. Deferred sockets are not looked at.
   */
  clientPeers(): Endpoint[] {
    const peers = new Map<string, Endpoint>();
    for (const record of this.records.values()) {
      const remote = record.origin === 'client' ? record.endpoints?.remote : undefined;
      if (remote && remote.port > 0) peers.set(`${remote.address} ${remote.port}`, remote);
    }
    return [...peers.values()];
  }

  /** The sockets tracked now (deferred ones aside), for taking other listeners of the agent back. */
  trackedSockets(): IterableIterator<Socket> {
    return this.records.keys();
  }

  /** Forgets every socket and takes the agent's listeners off them. */
  clear(): void {
    for (const socket of this.records.keys()) release(socket, this.onClose);
    this.records.clear();
    this.clearDeferredFrom(0);
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
function isClosed(socket: Socket): boolean {
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
