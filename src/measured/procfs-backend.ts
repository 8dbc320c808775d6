import { THREAD_CHANNELS } from '../common/channels';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { otherSocketInodes, readTcpTables, readTimeWait, type TcpRow } from './proc-net-tables';
import { constants } from 'node:os';
import { BroadcastChannel } from 'node:worker_threads';
import { SAMPLE, SAMPLE_STRIDE, type KernelReader, type TcpDetail } from './kernel-reader';
import { TCP_CLOSE } from '../common/tcp-states';
import { realNow } from '../common/real-time';

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
 * Cost: a scan reads the TCP tables of the whole network namespace (the kernel
 * has no per-socket file), about 3 µs per connection in them, so it grows with
 * every socket of the host's namespace, not only this process's. What this
 * file adds is kept to the sockets asked about: their inodes are remembered per
 * descriptor (a readlink only for a descriptor not seen before, or whose inode
 * left the tables), only their rows are parsed, and tcp6 is read only for
 * sockets tcp did not have. The periodic scan asks only when some socket can
 * be leaking, or for the slow sweep (measured/sweep.ts: readsWholeTables).
 */

const ENOENT_ROW = -constants.errno.EBADF; // the descriptor is closed
const NOT_TCP = -constants.errno.ENOTSOCK; // the scanner forgets such sockets
// The rows a scan read (only its sockets' rows), kept until the end of the synchronous turn.
let scannedThisTurn: Map<number, TcpRow> | undefined;

/**
 * For questions about one socket (unread bytes, addresses): the row the scan
 * just read, when asked in the same synchronous turn, as the detector does for
 * each paused socket right after a scan; otherwise a fresh read of its row.
 * Without this, every such question would read the tables again.
 */
function tablesForOneSocket(inode: number | undefined | null): Map<number, TcpRow> {
  if (typeof inode !== 'number') return new Map();
  return scannedThisTurn?.has(inode) ? scannedThisTurn : readTcpTables(new Set([inode]));
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
 * The socket inode behind each descriptor asked about, remembered: a descriptor keeps its
 * socket until it is closed, and a closed socket's inode leaves the tables, so an inode found
 * in the tables is still the descriptor's; one not found is read again.
 */
const inodeByFd = new Map<number, number>();

function rememberedInode(fd: number): number | undefined | null {
  const known = inodeByFd.get(fd);
  if (known !== undefined) return known;
  const inode = socketInode(fd);
  if (typeof inode === 'number') inodeByFd.set(fd, inode);
  return inode;
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

/**
 * Socket inodes found to be other kinds than TCP (unix socketpairs on stdio, UDP): not looked
 * up in the TCP tables again. Socket inodes come from a counter, so a number is not soon reused;
 * the set is emptied past 10,000.
 */
const notTcpSockets = new Set<number>();

/** What one descriptor is: a TCP row, a closed TCP socket (CLOSE), or an errno. */
class DescriptorResolver {
  private others: Set<number> | undefined;
  constructor(private readonly tables: Map<number, TcpRow>) {}

  resolve(fd: number, knownInode: number | undefined | null = socketInode(fd)): { row?: TcpRow; state: number; inode?: number } {
    let inode = knownInode;
    let row = typeof inode === 'number' ? this.tables.get(inode) : undefined;
    if (!row && inodeByFd.has(fd)) {
      // Not in the tables: the connection is over, or the descriptor now holds another socket.
      inodeByFd.delete(fd);
      const now = rememberedInode(fd);
      // Another socket: the tables were read for the old one, so its row is read now.
      if (typeof now === 'number' && now !== inode) row = readTcpTables(new Set([now])).get(now);
      inode = now;
    }
    if (inode === null) return { state: ENOENT_ROW };
    if (inode === undefined) return { state: NOT_TCP };
    if (row) return { row, state: row.state, inode };
    this.others ??= otherSocketInodes();
    if (!this.others.has(inode)) return { state: TCP_CLOSE, inode };
    if (notTcpSockets.size >= 10_000) notTcpSockets.clear();
    notTcpSockets.add(inode);
    return { state: NOT_TCP };
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
        const now = realNow();
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
    return at !== undefined && realNow() - at <= withinMs;
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
    readsWholeTables: true,
    scanSockets(fds, count, out) {
      if (count === 0) return;
      let tables: Map<number, TcpRow>;
      const inodes = new Array<number | undefined | null>(count);
      const wanted = new Set<number>();
      for (let i = 0; i < count; i++) {
        const inode = (inodes[i] = rememberedInode(fds[i]!));
        if (typeof inode === 'number') wanted.add(inode);
      }
      try {
        tables = readTcpTables(wanted);
      } catch (error) {
        // The tables cannot be read now (out of descriptors): every socket reads as -errno, judged next time.
        const errno = Math.abs((error as NodeJS.ErrnoException).errno ?? 5);
        for (let i = 0; i < count; i++) out.fill(0, i * SAMPLE_STRIDE, (i + 1) * SAMPLE_STRIDE).fill(-errno, i * SAMPLE_STRIDE, i * SAMPLE_STRIDE + 1);
        return;
      }
      keepForThisTurn(tables);
      const resolver = new DescriptorResolver(tables);
      for (let i = 0; i < count; i++) {
        const { row, state } = resolver.resolve(fds[i]!, inodes[i]);
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
      const inode = rememberedInode(fd);
      const { row, state } = new DescriptorResolver(tablesForOneSocket(inode)).resolve(fd, inode);
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
      const inode = rememberedInode(fd);
      const { row } = new DescriptorResolver(tablesForOneSocket(inode)).resolve(fd, inode);
      if (!row) return { local: null, remote: null };
      const connected = row.remote.port !== 0;
      return { local: row.local, remote: connected ? row.remote : null };
    },
    noteTracked: (fds, count) => tracked.note(fds, count),
    trackedElsewhere: (fd, withinMs) => tracked.has(fd, withinMs),
    listTcpDescriptors(skip) {
      const passed = new Set(skip);
      const fds: number[] = [];
      const inodes: number[] = [];
      let entries: string[] = [];
      try {
        entries = readdirSync('/proc/self/fd');
      } catch {
        // No /proc: nothing to list.
      }
      // The sockets among the descriptors passed in: only their rows are read, and no table
      // at all when there is none (the usual case: every socket is tracked).
      const sockets = new Map<number, number>();
      for (const entry of entries) {
        const fd = Number(entry);
        if (passed.has(fd)) continue;
        const inode = socketInode(fd);
        if (typeof inode === 'number' && !notTcpSockets.has(inode)) sockets.set(fd, inode);
      }
      if (sockets.size === 0) return { fds: new Int32Array(0), inodes: new Float64Array(0) };
      const resolver = new DescriptorResolver(readTcpTables(new Set(sockets.values())));
      for (const [fd, known] of sockets) {
        const { row, inode } = resolver.resolve(fd, known);
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
