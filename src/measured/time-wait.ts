import { formatEndpoint } from '../common/endpoints';
import type { KernelReader } from './kernel-reader';
import { namespaceTimeWait } from './proc-net-tables';

/** An end this process's client sockets connect to. */
export interface Peer {
  address: string;
  port: number;
}

/** Where a pile of TIME_WAIT connections comes from. */
export interface TimeWaitSource {
  /** 'server': closed first by a server of this process; 'client': by a client socket of this process. */
  side: 'server' | 'client';
  /** The listening port (server) or the remote end (client). */
  endpoint: string;
  /** Where the closing code is, when known: the client socket's creation site, or the listen() call. */
  place: string | null;
  count: number;
  /** Client closes are counted from the sockets followed, one in this many (at most): each found counts that many. */
  sampledOneIn?: number;
  /** Why such closes happen, and what to do. */
  hint: string;
}

export interface TimeWaitWarning {
  type: 'time-wait';
  /** TIME_WAIT connections this process closed first (own listening ports, recently closed client 4-tuples). */
  count: number;
  threshold: number;
  /** Every TIME_WAIT connection of the network namespace, for scale; -1 when it cannot be read. */
  namespaceTotal: number;
  sources: TimeWaitSource[];
}

/** What the agent knows of a client socket it followed, for attributing its TIME_WAIT. */
export interface FollowedClient {
  localPort: number;
  http: boolean;
  /** When its 4-tuple was read (soon after it connected). */
  at: number;
  /** It was followed as one in this many: found in TIME_WAIT, it counts this many. */
  oneIn: number;
}

/**
 * Client sockets followed while TIME_WAIT piles up: one in this many. Following one costs two
 * address reads through the kernel (getsockname, getpeername: see FollowedClients), a cost a
 * connection-per-request client would pay on every request; counting one in eight and scaling
 * keeps the estimate within a few percent at the thousands a warning needs.
 */
export const FOLLOW_ONE_IN = 8;
/**
 * While the sockets followed are not found in TIME_WAIT, or too few to count a quarter of the
 * threshold (their peers close first, and the pile is someone else's), following thins out, eight
 * times at each such count, down to one socket in this many: a connection-per-request client then
 * pays about 0.02 µs a connection. A count of a quarter of the threshold brings it back to FOLLOW_ONE_IN.
 */
export const FOLLOW_SPARSEST = 512;
/**
 * And at most about this many a second, whatever the rate of new connections. A socket followed
 * costs a connection-per-request client far more than its two address reads (about 7 µs, see
 * FollowedClients): read alone, a turn of the event loop after the program's own work, it runs
 * cold, about 90 µs here, and the process paid three times that again (docs/figures.md: 100 a
 * second took about 4% of a client making 5,000 connections a second; 25 a second gave 3 points
 * of it back). 25 a second still count a pile within a few percent: TIME_WAIT lasts 60 s, so a
 * count finds up to 1,500 of them.
 */
export const FOLLOWED_PER_SECOND = 25;
/** The shortest time over which pace() measures the rate of new client sockets. */
const PACE_MS = 900;
/** The sparsest following the rate can ask for. */
const PACED_SPARSEST = 8192;

/** Followed sockets remembered before a count that finds none of them in TIME_WAIT thins following out. */
const FOLLOWED_BEFORE_THINNING = 32;
/** Peers of open client sockets remembered at most (see peersSeen); beyond it, the least recently seen go. */
const PEERS_REMEMBERED = 1024;
/** A count is near the threshold from a quarter of it: following is dense and counts come at their usual cadence then. */
export const TIME_WAIT_NEAR = 4;

/**
 * TIME_WAIT lasts 60 s on Linux (2 x MSL, fixed). A 4-tuple is remembered from when it connected
 * (when it closes is not watched): for as long as a short connection's TIME_WAIT lasts, and a minute more.
 */
const REMEMBER_MS = 120_000;
/**
 * A bound on remembered 4-tuples: beyond it the oldest go first. Each check lists the TIME_WAIT
 * rows on their ports one by one, so this also bounds a check's work.
 */
const MAX_REMEMBERED = 16_384;

const SERVER_HINT =
  'this server closes connections first, so their TIME_WAIT stays on its side: responses with "Connection: close", ' +
  'keep-alive connections ended by server.keepAliveTimeout, or socket.end() after each exchange. Let clients close first ' +
  '(keep-alive, a longer keepAliveTimeout than the clients\' idle timeout) where you control them';
const HTTP_CLIENT_HINT =
  'this code closes its HTTP connections after each request: an http.Agent without keepAlive, or requests sent with ' +
  '"Connection: close". Use a keep-alive agent (new http.Agent({ keepAlive: true })) so connections are reused';
const CLIENT_HINT =
  'this code opens a connection per operation and closes it first. Reuse connections (a pool), or let the peer close first';

/**
 * Counts the TIME_WAIT connections this process caused: it closed first, so
 * the kernel keeps each 4-tuple for 60 s with no descriptor, invisible to
 * every per-socket check. On this process's listening ports they are its
 * server's active closes; for client sockets the agent remembers the 4-tuples
 * of those it followed (see FollowedClients).
 */
export class TimeWaitWatch {
  /** Listening port -> its listen() call, when known. */
  private readonly listening = new Map<number, string | null>();
  private readonly followed = new Map<string, FollowedClient & { remotePort: number }>();
  /** Remote ports of the remembered 4-tuples, with how many use each: the kernel filters the dump by them. */
  private readonly followedPorts = new Map<number, number>();
  /**
   * Where the code closing connections to each remote end was opened: one formatted stack per
   * remote end (formatting costs 10-40 µs; following every socket must not).
   */
  private readonly places = new Map<string, string | null>();
  /**
   * The peers of open client sockets seen at checks, by endpoint, with when last seen: remembered
   * for REMEMBER_MS, so that a peer whose connections are short (seldom open at a check) still
   * counts once seen (see couldBeClients).
   */
  private readonly peersSeen = new Map<string, Peer & { at: number }>();
  private lastWarnedAt = 0;
  /** The count at the last check; -1 when it did not count (no dump was needed, or none ran yet). */
  lastCount = -1;
  /** Whether the last check dumped the namespace's TIME_WAIT (it does only when the namespace holds at least the threshold). */
  private lastDumped = false;
  /** Whether the last check walked the namespace's TIME_WAIT at all (a count, or the look toward the clients' peers). */
  walked = false;
  /**
   * Whether to follow client sockets (their 4-tuples read as they connect): only once the
   * namespace holds TIME_WAIT connections by the thousand, where knowing which of them are ours,
   * and from where, is worth it, and only while the pile could be this process's clients' (see
   * couldBeClients).
   */
  followClients = false;
  /** One client socket in this many is followed: as counts thinned it (FOLLOW_ONE_IN to FOLLOW_SPARSEST), or as the rate asks, the sparser. */
  private thinnedOneIn = FOLLOW_ONE_IN;
  private pacedOneIn = 1;
  followOneIn = FOLLOW_ONE_IN;
  private clientsSeen = 0;
  /** When pace() last measured the rate of new client sockets, and clientsSeen then. */
  private pacedAt: number;
  private seenAtPace = 0;

  /** `now`: the rate of new client sockets is measured from here, so that the first pace() has a real one. */
  constructor(
    private readonly binding: KernelReader,
    readonly threshold: number,
    private readonly repeatMs: number,
    now: number,
  ) {
    this.pacedAt = now;
  }

  addListeningPort(port: number, place: string | null): void {
    if (port > 0) this.listening.set(port, place);
  }

  /** Whether to follow this new client socket, as one in how many (0: not followed). */
  follows(): number {
    if (this.clientsSeen++ % this.followOneIn !== 0 || !this.followClients) return 0;
    return this.followOneIn;
  }

  /**
   * Measures the rate of new client sockets since the last call (about a second before, at least
   * PACE_MS: scans a second apart are read a few ms early or late) and follows sparsely enough to
   * follow about FOLLOWED_PER_SECOND of them a second.
   */
  pace(now: number): void {
    const elapsed = now - this.pacedAt;
    if (elapsed < PACE_MS) return;
    const perSecond = ((this.clientsSeen - this.seenAtPace) * 1000) / elapsed;
    this.pacedAt = now;
    this.seenAtPace = this.clientsSeen;
    let oneIn = 1;
    while (oneIn < PACED_SPARSEST && perSecond / oneIn > FOLLOWED_PER_SECOND) oneIn *= 2;
    this.pacedOneIn = oneIn;
    this.followOneIn = Math.max(this.thinnedOneIn, this.pacedOneIn);
  }

  /** Whether the place of closes to this remote end is still to be learned (so a stack is worth formatting). */
  needsPlace(remoteAddress: string, remotePort: number): boolean {
    return !this.places.has(formatEndpoint({ address: remoteAddress, port: remotePort }));
  }

  /** Where the closes to this remote end come from, learned from one socket's creation stack. */
  learnPlace(remoteAddress: string, remotePort: number, place: string | null): void {
    if (this.places.size >= 4096) this.places.clear();
    this.places.set(formatEndpoint({ address: remoteAddress, port: remotePort }), place);
  }

  /** A client socket followed: once it has closed, its 4-tuple is in TIME_WAIT if it closed first. */
  clientFollowed(remoteAddress: string, remotePort: number, client: FollowedClient): void {
    if (this.followed.size >= MAX_REMEMBERED) {
      const oldest = this.followed.keys().next().value;
      if (oldest !== undefined) this.forget(oldest);
    }
    const key = tupleKey(client.localPort, remoteAddress, remotePort);
    if (this.followed.has(key)) return;
    this.followed.set(key, { ...client, remotePort });
    this.followedPorts.set(remotePort, (this.followedPorts.get(remotePort) ?? 0) + 1);
  }

  private forget(key: string): void {
    const client = this.followed.get(key);
    if (!client) return;
    this.followed.delete(key);
    const users = (this.followedPorts.get(client.remotePort) ?? 1) - 1;
    if (users > 0) this.followedPorts.set(client.remotePort, users);
    else this.followedPorts.delete(client.remotePort);
  }

  /**
   * Counts now; returns a warning when the count is past the threshold (told again at most once
   * per repeatMs). The namespace's total comes first, from /proc/net/sockstat (one short read;
   * the caller's, when it read it to decide whether a dump is affordable now): this process cannot
   * have more than it, so below the threshold there is nothing to dump.
   */
  check(now: number, peers: () => Peer[] = noPeers, total: number = namespaceTimeWait()): TimeWaitWarning | undefined {
    for (const [key, client] of this.followed) {
      if (now - client.at <= REMEMBER_MS) break; // insertion order is the order they were read in
      this.forget(key);
    }
    this.walked = false;
    const piling = this.mayWalk(total);
    // Following on stays on while the pile does (a count turns it off: see tally()).
    if (piling) this.notePeers(peers(), now);
    this.followClients = piling && (this.followClients || this.couldBeClients());
    this.lastDumped = false;
    if (total >= 0 && total < this.threshold) {
      // No dump: not counted now (-1); a metrics collection counts for itself (countNow).
      this.lastCount = total === 0 ? 0 : -1;
      return undefined;
    }
    const { count, sources } = this.tally();
    this.lastDumped = true;
    if (count < this.threshold || now - this.lastWarnedAt < this.repeatMs) return undefined;
    this.lastWarnedAt = now;
    const sorted = [...sources.values()].sort((a, b) => b.count - a.count);
    return { type: 'time-wait', count, threshold: this.threshold, namespaceTotal: total, sources: sorted };
  }

  /**
   * Whether a check with the namespace's `total` (-1: unknown) may walk its TIME_WAIT: from half
   * the threshold on (the look toward the clients' peers; the count itself from the threshold).
   */
  mayWalk(total: number): boolean {
    return total < 0 || total >= this.threshold / 2;
  }

  /**
   * The count for metrics, read when an exporter collects: the last check's when it counted, else
   * a dump now (a collection comes about once a minute, so it may cost what a check saves).
   */
  countNow(): number {
    return this.lastCount >= 0 ? this.lastCount : this.tally().count;
  }

  /**
   * Whether the namespace holds TIME_WAIT connections toward the ends this process's client
   * sockets connect to (as scans read them from open ones, now or within REMEMBER_MS), whoever's,
   * by a quarter of the threshold (TIME_WAIT_NEAR): ours are at most those, so only then can
   * following find a pile worth a warning. Where the peer closes first (a server ending each
   * connection), the pile is on the peer's side, toward this process's ephemeral ports, and
   * following would read 4-tuples a count seldom finds: it cost a client making new connections
   * to a server on the same host about 1.5% (docs/figures.md). Following from a quarter of the
   * threshold leaves the pile time to grow four times before a warning, while the followed
   * sockets are found. No peer known (no open client socket a scan has read, or a backend that
   * does not read them): followed, as it cannot be told.
   */
  private couldBeClients(): boolean {
    const peers = this.peersSeen;
    if (peers.size === 0) return true;
    const ports = Int32Array.from(new Set(Array.from(peers.values(), (peer) => peer.port))).sort();
    const found = this.binding.listTimeWait(noPorts(), ports);
    this.walked = true;
    let toward = 0;
    for (let i = 0; i < found.remotePorts.length; i++) {
      if (peers.has(formatEndpoint({ address: found.remoteAddresses[i]!, port: found.remotePorts[i]! }))) toward++;
    }
    return toward * TIME_WAIT_NEAR >= this.threshold;
  }

  /** Remembers the peers seen now (see peersSeen), and forgets those not seen for REMEMBER_MS. */
  private notePeers(peers: Peer[], now: number): void {
    for (const peer of peers) {
      const key = formatEndpoint(peer);
      // Deleted first, so that the map's order stays the order they were last seen in.
      this.peersSeen.delete(key);
      this.peersSeen.set(key, { address: peer.address, port: peer.port, at: now });
    }
    for (const [key, peer] of this.peersSeen) {
      if (now - peer.at <= REMEMBER_MS && this.peersSeen.size <= PEERS_REMEMBERED) break;
      this.peersSeen.delete(key);
    }
  }

  /** Counts this process's TIME_WAIT connections (one filtered dump), by where they come from. */
  private tally(): { count: number; sources: Map<string, TimeWaitSource> } {
    const sources = new Map<string, TimeWaitSource>();
    const serverPorts = Int32Array.from(this.listening.keys()).sort();
    const remotePorts = Int32Array.from(this.followedPorts.keys()).sort();
    if (serverPorts.length === 0 && remotePorts.length === 0) {
      this.lastCount = 0;
      return { count: 0, sources };
    }
    const found = this.binding.listTimeWait(serverPorts, remotePorts);
    this.walked = true;
    const add = (source: Omit<TimeWaitSource, 'count'>, count: number): TimeWaitSource => {
      const key = `${source.side} ${source.endpoint} ${source.place}`;
      const existing = sources.get(key);
      if (existing) {
        existing.count += count;
        return existing;
      }
      const added = { ...source, count };
      sources.set(key, added);
      return added;
    };
    let count = 0;
    serverPorts.forEach((port, i) => {
      const onPort = found.serverCounts[i]!;
      if (onPort === 0) return;
      count += onPort;
      add({ side: 'server', endpoint: `port ${port}`, place: this.listening.get(port) ?? null, hint: SERVER_HINT }, onPort);
    });
    // Every TIME_WAIT row to each remote end the dump returned, whoever's: the most ours can be.
    const rowsTo = new RowsPerRemoteEnd();
    // Each client source's remote end, for that cap.
    const endOf = new Map<TimeWaitSource, { address: string; port: number }>();
    for (let i = 0; i < found.localPorts.length; i++) {
      const remoteAddress = found.remoteAddresses[i]!;
      const remotePort = found.remotePorts[i]!;
      rowsTo.add(remoteAddress, remotePort);
      const client = this.followed.get(tupleKey(found.localPorts[i]!, remoteAddress, remotePort));
      if (!client) continue; // another connection on a port we once used
      const endpoint = formatEndpoint({ address: remoteAddress, port: remotePort });
      const source = add({ side: 'client', endpoint, place: this.places.get(endpoint) ?? null, sampledOneIn: client.oneIn, hint: client.http ? HTTP_CLIENT_HINT : CLIENT_HINT }, client.oneIn);
      source.sampledOneIn = Math.max(source.sampledOneIn ?? 0, client.oneIn);
      endOf.set(source, { address: remoteAddress, port: remotePort });
    }
    const clientCount = capToRows(endOf, rowsTo);
    // Under a quarter of the threshold toward the followed sockets' peers, whoever's: ours cannot
    // be near it. Following stops until a check finds that it could be (see couldBeClients).
    if (remotePorts.length > 0 && found.localPorts.length * TIME_WAIT_NEAR < this.threshold) this.followClients = false;
    // A place whose share of its end's rows rounded to none has nothing to be told for.
    for (const [key, source] of sources) if (source.count === 0) sources.delete(key);
    count += clientCount;
    this.thinFollowing(clientCount);
    this.lastCount = count;
    return { count, sources };
  }

  /**
   * After a count: follow fewer client sockets while those followed are not found in TIME_WAIT,
   * or are found too few to come near the threshold (a client whose peer usually closes first
   * still closes first now and then). Following one in 8 again once they count a quarter of it:
   * the next counts are then as exact as a warning needs.
   */
  private thinFollowing(clientCount: number): void {
    if (clientCount * TIME_WAIT_NEAR >= this.threshold) this.thinnedOneIn = FOLLOW_ONE_IN;
    else if (this.followed.size >= FOLLOWED_BEFORE_THINNING) this.thinnedOneIn = Math.min(this.thinnedOneIn * 8, FOLLOW_SPARSEST);
    this.followOneIn = Math.max(this.thinnedOneIn, this.pacedOneIn);
  }

  /** Whether the last count was far from the threshold (under a quarter of it), when it dumped the namespace. */
  get lastDumpFarBelow(): boolean {
    return this.lastDumped && this.lastCount * TIME_WAIT_NEAR < this.threshold;
  }
}

const NO_PORTS = new Int32Array(0);
function noPorts(): Int32Array {
  return NO_PORTS;
}
function noPeers(): Peer[] {
  return [];
}

/** How many TIME_WAIT rows a dump returned to each remote end (address and port). */
class RowsPerRemoteEnd {
  private readonly byPort = new Map<number, Map<string, number>>();

  add(address: string, port: number): void {
    let addresses = this.byPort.get(port);
    if (addresses === undefined) this.byPort.set(port, (addresses = new Map()));
    addresses.set(address, (addresses.get(address) ?? 0) + 1);
  }

  rows(address: string, port: number): number {
    return this.byPort.get(port)?.get(address) ?? 0;
  }
}

/**
 * Caps the client sources' counts at the TIME_WAIT rows to their remote end, and returns their
 * sum. A followed socket found in TIME_WAIT stands for `oneIn` closes; that holds while each close
 * keeps a 4-tuple of its own. A client that cycles through its ports faster than TIME_WAIT ends
 * (which is when it nears EADDRNOTAVAIL) has the kernel reuse a 4-tuple in TIME_WAIT for a new
 * connection (tcp_tw_reuse): a followed 4-tuple is then found in TIME_WAIT again for a later
 * connection's close, and every remembered one is found, each standing for `oneIn`. Measured here,
 * a client closing first at full speed counted 62,464 against the kernel's 14,114, and more at each
 * count. There are no more of ours to an end than rows to it; several places closing to one end
 * share its rows in proportion.
 */
function capToRows(endOf: Map<TimeWaitSource, { address: string; port: number }>, rowsTo: RowsPerRemoteEnd): number {
  const byEnd = new Map<string, { rows: number; sources: TimeWaitSource[] }>();
  for (const [source, { address, port }] of endOf) {
    const end = byEnd.get(source.endpoint);
    if (end) end.sources.push(source);
    else byEnd.set(source.endpoint, { rows: rowsTo.rows(address, port), sources: [source] });
  }
  let total = 0;
  for (const { rows, sources } of byEnd.values()) {
    const sum = sources.reduce((sofar, source) => sofar + source.count, 0);
    if (sum > rows) for (const source of sources) source.count = Math.round((source.count * rows) / sum);
    for (const source of sources) total += source.count;
  }
  return total;
}

function tupleKey(localPort: number, remoteAddress: string, remotePort: number): string {
  return `${localPort} ${remoteAddress} ${remotePort}`;
}
