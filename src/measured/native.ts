import { PACKAGE_ROOT } from '../common/package-paths';

/** Kernel detail for one socket, from `inspectSocket`. Fields the kernel does not return are -1. */
export interface TcpDetail {
  state: number;
  retransmits: number;
  backoff: number;
  rtoUs: number;
  rttUs: number;
  rttvarUs: number;
  unacked: number;
  lastDataSentMs: number;
  lastDataRecvMs: number;
  lastAckRecvMs: number;
  bytesAcked: number;
  bytesReceived: number;
  /** Bytes received and not read by the process (SIOCINQ). */
  unreadBytes: number;
  /** Bytes not yet acknowledged by the peer, sent or not (SIOCOUTQ). */
  unsentBytes: number;
  /** Bytes of struct tcp_info the kernel returned. */
  infoLength: number;
  /** SO_KEEPALIVE: 1 on, 0 off, -1 unknown. */
  keepalive: number;
}

/** An address as the addon reads it. */
export interface NativeEndpoint {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

/** The addon's interface (native/addon.cc). */
export interface NativeBinding {
  /** Writes SAMPLE_STRIDE int32s per fd: [state or -errno, lastDataSentMs, lastDataRecvMs, unacked, notsentBytes, unanswered]. */
  scanSockets(fds: Int32Array, count: number, out: Int32Array): void;
  /** Throws an error with code, errno, syscall and fd when the kernel refuses. */
  inspectSocket(fd: number): TcpDetail;
  /** RLIMIT_NOFILE; Infinity (addon) or -1 (procfs) when unlimited or unknown. */
  getDescriptorLimit(): { soft: number; hard: number };
  /** Open descriptors of this process; -1 where the platform cannot tell. */
  countDescriptors(): number;
  /**
   * The network namespace's TIME_WAIT connections: counted per server port (aligned with
   * `serverPorts`), listed one row each on the client ports, and counted in all. Both port lists
   * sorted ascending. Throws where the platform cannot tell.
   */
  listTimeWait(
    serverPorts: Int32Array,
    clientPorts: Int32Array,
  ): { serverCounts: Int32Array; localPorts: Int32Array; remotePorts: Int32Array; remoteAddresses: string[]; total: number };
  /** getsockname / getpeername; remote is null once the connection is gone. */
  readEndpoints(fd: number): { local: NativeEndpoint | null; remote: NativeEndpoint | null };
  /** Notes, process-wide, the descriptors this thread's agent tracks. */
  noteTracked(fds: Int32Array, count: number): void;
  /** Whether any thread's agent noted `fd` within the last `withinMs`. */
  trackedElsewhere(fd: number, withinMs: number): boolean;
  /** Every TCP socket descriptor of this process, with its inode (stable where the fd number is reused). */
  listTcpDescriptors(): { fds: Int32Array; inodes: Float64Array };
  readonly SAMPLE_STRIDE: number;
}

/** Offsets into a scan row. */
export const SAMPLE = { state: 0, lastDataSentMs: 1, lastDataRecvMs: 2, unacked: 3, notsentBytes: 4, unanswered: 5 } as const;
/** Int32s per scan row, for the backends written in JavaScript (the addon reports its own). */
export const SAMPLE_STRIDE = 6;

/** The outcome of loading the addon: the binding, or why it is not there (absent: no binary for this platform). */
export type NativeLoad = { binding: NativeBinding; error?: undefined } | { binding?: undefined; error: Error; absent: boolean };

let loaded: NativeLoad | undefined;

/**
 * Loads the addon once: a local build (build/Release, in a clone) or the
 * prebuilt binary for this platform shipped in the package (prebuilds/),
 * found as node-gyp-build finds it. Never throws. Only a missing binary is
 * `absent`; a binary that exists and fails to load is an error to report.
 */
export function loadNative(): NativeLoad {
  if (loaded) return loaded;
  const root = PACKAGE_ROOT;
  let file: string;
  try {
    file = (require('node-gyp-build') as { path(dir: string): string }).path(root);
  } catch (error) {
    const reason = (error as Error).message.split('\n')[0];
    loaded = { error: new Error(`the native addon is not available (${reason}); build it with "npm run build:native"`), absent: true };
    return loaded;
  }
  try {
    loaded = { binding: require(file) as NativeBinding };
  } catch (error) {
    loaded = { error: new Error(`the native addon at ${file} failed to load: ${(error as Error).message}`), absent: false };
  }
  return loaded;
}
