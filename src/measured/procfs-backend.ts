import { THREAD_CHANNELS } from '../common/channels';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { constants } from 'node:os';
import { BroadcastChannel } from 'node:worker_threads';
import { SAMPLE, SAMPLE_STRIDE, type KernelReader, type NativeEndpoint, type TcpDetail } from './kernel-reader';
import { TCP_CLOSE } from '../common/tcp-states';

/**
 * The kernel's view without the addon (Linux): each descriptor's socket inode
 * from /proc/self/fd, joined to the rows of /proc/self/net/tcp and tcp6
 * (state, queues, addresses). Same interface as the addon.
 *
 * What procfs cannot tell: when data was last sent or received (tcp_info
 * keeps those; /proc/net/tcp does not). Those fields are -1, and the detector
 * then watches socket.bytesWritten instead. A socket whose connection is over
 * (state CLOSE) is unhashed and in no table: a socket inode found in no
 * table of /proc/self/net is taken to be one.
 *
 * Cost: each scan reads the whole TCP tables of the network namespace, so it
 * grows with every socket on the host's namespace, not only this process's.
 */

const ENOENT_ROW = -constants.errno.EBADF; // the descriptor is closed
const NOT_TCP = -constants.errno.ENOTSOCK; // the scanner forgets such sockets
// TIME_WAIT, CLOSE_WAIT, LAST_ACK, CLOSING: states in which the peer's FIN has arrived.
const FIN_RECEIVED = new Set([6, 8, 9, 11]);

interface TcpRow {
  state: number;
  txQueue: number;
  rxQueue: number;
  /** Unanswered retransmissions or zero-window probes ("retrnsmt", and the probes column after uid). */
  unanswered: number;
  local: NativeEndpoint;
  remote: NativeEndpoint;
}

function ipv4(hex: string): string {
  // One 32-bit word in host (little-endian) order.
  const n = parseInt(hex, 16);
  return `${n & 0xff}.${(n >>> 8) & 0xff}.${(n >>> 16) & 0xff}.${n >>> 24}`;
}

function ipv6(hex: string): string {
  // Four 32-bit words, each in host (little-endian) order.
  const bytes: number[] = [];
  for (let word = 0; word < 4; word++) {
    const n = parseInt(hex.slice(word * 8, word * 8 + 8), 16);
    bytes.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
  }
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `::ffff:${bytes.slice(12).join('.')}`;
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // Shorten the longest run of zero groups, as inet_ntop does.
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLength) [best, bestLength] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLength).join(':')}`;
}

function endpoint(text: string, family: 'IPv4' | 'IPv6'): NativeEndpoint {
  const [address, port] = text.split(':') as [string, string];
  return { address: family === 'IPv4' ? ipv4(address) : ipv6(address), port: parseInt(port, 16), family };
}

/** Parses /proc/self/net/tcp or tcp6 into rows by inode. Missing file (no IPv6): no rows. */
function readTable(file: string, family: 'IPv4' | 'IPv6', into: Map<number, TcpRow>): void {
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // no IPv6
    throw error; // EMFILE and the like: no answer is not "every socket closed"
  }
  const lines = text.split('\n');
  // "sl: local remote st ...", addresses of fixed width: the state can be read without
  // splitting the line, and TIME_WAIT rows (no descriptor, often most of a busy host's
  // table) skipped at the cost of one slice.
  const addressWidth = family === 'IPv4' ? 13 : 37;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const stateAt = line.indexOf(':') + 2 + 2 * (addressWidth + 1);
    if (line.startsWith('06', stateAt)) continue;
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const [tx, rx] = fields[4]!.split(':') as [string, string];
    const state = parseInt(fields[3]!, 16);
    const rxQueue = parseInt(rx, 16);
    into.set(Number(fields[9]), {
      state,
      txQueue: parseInt(tx, 16),
      // rcv_nxt - copied_seq counts the peer's FIN once it arrived; SIOCINQ (the addon) does not.
      rxQueue: FIN_RECEIVED.has(state) && rxQueue > 0 ? rxQueue - 1 : rxQueue,
      unanswered: Math.max(parseInt(fields[6]!, 16), Number(fields[8])),
      local: endpoint(fields[1]!, family),
      remote: endpoint(fields[2]!, family),
    });
  }
}

/** TIME_WAIT connections, as the addon's listTimeWait gives them (they have no inode, so readTable skips them). */
function readTimeWait(serverPorts: Int32Array, clientPorts: Int32Array): ReturnType<KernelReader['listTimeWait']> {
  const serverIndex = new Map<number, number>();
  serverPorts.forEach((port, i) => serverIndex.set(port, i));
  const clients = new Set(clientPorts);
  const serverCounts = new Int32Array(serverPorts.length);
  const localPorts: number[] = [];
  const remotePorts: number[] = [];
  const remoteAddresses: string[] = [];
  let total = 0;
  for (const [file, family] of [['/proc/self/net/tcp', 'IPv4'], ['/proc/self/net/tcp6', 'IPv6']] as const) {
    let text: string;
    try {
      text = readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    // Fixed-width columns ("sl: local remote st"): a busy server's table holds TIME_WAIT rows by
    // the hundred thousand, so each is read by offset, and only a client port's row is split.
    const addressWidth = family === 'IPv4' ? 13 : 37;
    const lines = text.split('\n');
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const localAt = line.indexOf(':') + 2;
      const stateAt = localAt + 2 * (addressWidth + 1);
      if (!line.startsWith('06', stateAt) || localAt < 2) continue;
      total++;
      const localPort = parseInt(line.slice(localAt + addressWidth - 4, localAt + addressWidth), 16);
      const server = serverIndex.get(localPort);
      if (server !== undefined) {
        serverCounts[server]!++;
        continue;
      }
      if (!clients.has(localPort)) continue;
      const remote = endpoint(line.slice(localAt + addressWidth + 1, localAt + 2 * addressWidth + 1), family);
      localPorts.push(localPort);
      remotePorts.push(remote.port);
      remoteAddresses.push(remote.address);
    }
  }
  return { serverCounts, localPorts: Int32Array.from(localPorts), remotePorts: Int32Array.from(remotePorts), remoteAddresses, total };
}

let scannedThisTurn: Map<number, TcpRow> | undefined;

/** The TCP tables, read now. A scan's read is kept until the end of the synchronous turn. */
function readTcpTables(): Map<number, TcpRow> {
  const rows = new Map<number, TcpRow>();
  readTable('/proc/self/net/tcp', 'IPv4', rows);
  readTable('/proc/self/net/tcp6', 'IPv6', rows);
  return rows;
}

/**
 * For questions about one socket (unread bytes, addresses): the tables the
 * scan just read, when asked in the same synchronous turn, as the detector
 * does for each paused socket right after a scan; otherwise a fresh read.
 * Without this, every such question would read the whole tables again.
 */
function tablesForOneSocket(): Map<number, TcpRow> {
  return scannedThisTurn ?? readTcpTables();
}

function keepForThisTurn(tables: Map<number, TcpRow>): void {
  if (!scannedThisTurn) {
    queueMicrotask(() => {
      scannedThisTurn = undefined;
    });
  }
  scannedThisTurn = tables;
}

/**
 * Inodes of every socket that is not TCP (unix, udp, raw, netlink, packet), so
 * that a socket inode missing from the TCP tables can be told to be a closed
 * TCP socket rather than, say, a pipe or a UDP socket.
 */
function otherSocketInodes(): Set<number> {
  const inodes = new Set<number>();
  for (const table of ['unix', 'udp', 'udp6', 'raw', 'raw6', 'netlink', 'packet']) {
    let lines: string[];
    try {
      lines = readFileSync(`/proc/self/net/${table}`, 'latin1').split('\n');
    } catch {
      continue;
    }
    // udp and raw share the TCP layout (two headers name two columns each); the others name the inode column.
    const column = table.startsWith('udp') || table.startsWith('raw') ? 9 : lines[0]!.trim().split(/\s+/).findIndex((name) => /^inode$/i.test(name));
    if (column < 0) continue;
    for (let i = 1; i < lines.length; i++) {
      const fields = lines[i]!.trim().split(/\s+/);
      if (fields.length > column) inodes.add(Number(fields[column]));
    }
  }
  return inodes;
}

/** The socket inode behind a descriptor; undefined when it is not a socket, null when closed. */
function socketInode(fd: number): number | undefined | null {
  let target: string;
  try {
    target = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
  const match = /^socket:\[(\d+)\]$/.exec(target);
  return match ? Number(match[1]) : undefined;
}

/** What one descriptor is: a TCP row, a closed TCP socket (CLOSE), or an errno. */
class DescriptorResolver {
  private others: Set<number> | undefined;
  constructor(private readonly tables: Map<number, TcpRow>) {}

  resolve(fd: number): { row?: TcpRow; state: number; inode?: number } {
    const inode = socketInode(fd);
    if (inode === null) return { state: ENOENT_ROW };
    if (inode === undefined) return { state: NOT_TCP };
    const row = this.tables.get(inode);
    if (row) return { row, state: row.state, inode };
    this.others ??= otherSocketInodes();
    return this.others.has(inode) ? { state: NOT_TCP } : { state: TCP_CLOSE, inode };
  }
}

/** Tells other threads which descriptors this thread's agent tracks (the addon keeps a process-wide map). */
class TrackedAcrossThreads {
  private readonly seen = new Map<number, number>();
  private channel: BroadcastChannel | undefined;

  private open(): BroadcastChannel {
    if (!this.channel) {
      this.channel = new BroadcastChannel(THREAD_CHANNELS.trackedDescriptors);
      this.channel.onmessage = (event) => {
        const now = Date.now();
        for (const fd of (event as { data: number[] }).data) this.seen.set(fd, now);
      };
      // Never the reason a thread keeps running.
      (this.channel as unknown as { unref(): void }).unref();
    }
    return this.channel;
  }

  note(fds: Int32Array, count: number): void {
    if (count > 0) this.open().postMessage(Array.from(fds.subarray(0, count)));
  }

  has(fd: number, withinMs: number): boolean {
    this.open();
    const at = this.seen.get(fd);
    return at !== undefined && Date.now() - at <= withinMs;
  }
}

let lastLimit = { soft: -1, hard: -1 };

/** RLIMIT_NOFILE from /proc/self/limits; the last answer when it cannot be read (out of descriptors). */
function descriptorLimit(): { soft: number; hard: number } {
  try {
    lastLimit = readDescriptorLimit();
  } catch {
    // keep the last answer
  }
  return lastLimit;
}

function readDescriptorLimit(): { soft: number; hard: number } {
  const line = readFileSync('/proc/self/limits', 'latin1')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const [soft, hard] = (line ?? '').slice('Max open files'.length).trim().split(/\s+/);
  const value = (text: string | undefined) => (text === undefined || text === 'unlimited' ? -1 : Number(text));
  return { soft: value(soft), hard: value(hard) };
}

/** Creates the procfs backend. */
export function createProcfsBackend(): KernelReader {
  const tracked = new TrackedAcrossThreads();
  return {
    SAMPLE_STRIDE,
    scanSockets(fds, count, out) {
      let tables: Map<number, TcpRow>;
      try {
        tables = readTcpTables();
      } catch (error) {
        // The tables cannot be read now (out of descriptors): every socket reads as -errno, judged next time.
        const errno = Math.abs((error as NodeJS.ErrnoException).errno ?? 5);
        for (let i = 0; i < count; i++) out.fill(0, i * SAMPLE_STRIDE, (i + 1) * SAMPLE_STRIDE).fill(-errno, i * SAMPLE_STRIDE, i * SAMPLE_STRIDE + 1);
        return;
      }
      keepForThisTurn(tables);
      const resolver = new DescriptorResolver(tables);
      for (let i = 0; i < count; i++) {
        const { row, state } = resolver.resolve(fds[i]!);
        const base = i * SAMPLE_STRIDE;
        out[base + SAMPLE.state] = state;
        out[base + SAMPLE.lastDataSentMs] = -1; // not in procfs
        out[base + SAMPLE.lastDataRecvMs] = -1; // not in procfs
        out[base + SAMPLE.unacked] = row?.txQueue ?? 0;
        out[base + SAMPLE.notsentBytes] = 0;
        out[base + SAMPLE.unanswered] = row?.unanswered ?? 0;
      }
    },
    inspectSocket(fd): TcpDetail {
      const { row, state } = new DescriptorResolver(tablesForOneSocket()).resolve(fd);
      if (state < 0) {
        const error = new Error(`${state === NOT_TCP ? 'ENOTSOCK' : 'EBADF'}: fd ${fd} is not an open TCP socket`) as NodeJS.ErrnoException & { fd: number };
        Object.assign(error, { code: state === NOT_TCP ? 'ENOTSOCK' : 'EBADF', errno: state, syscall: 'readlink', fd });
        throw error;
      }
      return {
        state,
        retransmits: -1,
        backoff: -1,
        rtoUs: -1,
        rttUs: -1,
        rttvarUs: -1,
        unacked: row?.txQueue ?? 0,
        lastDataSentMs: -1,
        lastDataRecvMs: -1,
        lastAckRecvMs: -1,
        bytesAcked: -1,
        bytesReceived: -1,
        unreadBytes: row?.rxQueue ?? 0,
        unsentBytes: row?.txQueue ?? 0,
        infoLength: 0,
        keepalive: -1,
      };
    },
    getDescriptorLimit: descriptorLimit,
    countDescriptors() {
      try {
        return readdirSync('/proc/self/fd').length - 1; // the listing's own descriptor
      } catch (error) {
        // Not even one descriptor left to list them with: every one is in use.
        return (error as NodeJS.ErrnoException).code === 'EMFILE' ? descriptorLimit().soft : -1;
      }
    },
    listTimeWait: readTimeWait,
    readEndpoints(fd) {
      const { row } = new DescriptorResolver(tablesForOneSocket()).resolve(fd);
      if (!row) return { local: null, remote: null };
      const connected = row.remote.port !== 0;
      return { local: row.local, remote: connected ? row.remote : null };
    },
    noteTracked: (fds, count) => tracked.note(fds, count),
    trackedElsewhere: (fd, withinMs) => tracked.has(fd, withinMs),
    listTcpDescriptors() {
      // Right after a scan (the untracked pass), the tables that scan read.
      const resolver = new DescriptorResolver(tablesForOneSocket());
      const fds: number[] = [];
      const inodes: number[] = [];
      let entries: string[] = [];
      try {
        entries = readdirSync('/proc/self/fd');
      } catch {
        // No /proc: nothing to list.
      }
      for (const entry of entries) {
        const fd = Number(entry);
        const { row, inode } = resolver.resolve(fd);
        // Only sockets the TCP tables list: a socket missing from every table of this network
        // namespace may be a TCP socket whose connection is over, or any socket inherited from
        // another namespace (stdio socketpairs of a parent outside it). For a socket Node tracks
        // the first is sure; for an unknown one it is a guess, and a false report costs more.
        if (row !== undefined && inode !== undefined) {
          fds.push(fd);
          inodes.push(inode);
        }
      }
      return { fds: Int32Array.from(fds), inodes: Float64Array.from(inodes) };
    },
  };
}
