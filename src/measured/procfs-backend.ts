import { THREAD_CHANNELS } from '../common/channels';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { otherSocketInodes, readTcpTables, readTimeWait, type TcpRow } from './proc-net-tables';
import { constants } from 'node:os';
import { BroadcastChannel } from 'node:worker_threads';
import { SAMPLE, SAMPLE_STRIDE, type KernelReader, type TcpDetail } from './kernel-reader';
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
// The tables a scan read, kept until the end of the synchronous turn.
let scannedThisTurn: Map<number, TcpRow> | undefined;

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
    readsWholeTables: true,
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
