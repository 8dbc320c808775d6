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

/**
 * What the agent asks the kernel, whichever backend answers: the addon
 * (native/addon.cc), the procfs reader (procfs-backend.ts), or the 'none'
 * backend of other platforms.
 */
export interface KernelReader {
  /** Writes SAMPLE_STRIDE int32s per fd: [state or -errno, lastDataSentMs, lastDataRecvMs, unacked, notsentBytes, unanswered]. */
  scanSockets(fds: Int32Array, count: number, out: Int32Array): void;
  /** Throws an error with code, errno, syscall and fd when the kernel refuses. */
  inspectSocket(fd: number): TcpDetail;
  /** RLIMIT_NOFILE; Infinity (addon) or -1 (procfs) when unlimited or unknown. */
  getDescriptorLimit(): { soft: number; hard: number };
  /** Open descriptors of this process; -1 where the platform cannot tell. */
  countDescriptors(): number;
  /**
   * The network namespace's TIME_WAIT connections on these ports: counted per server (local)
   * port, aligned with `serverPorts`, and listed one row each when the remote port is one of
   * `remotePorts` (the peers of client sockets seen closing). Both lists sorted ascending.
   * Throws where the platform cannot tell.
   */
  listTimeWait(
    serverPorts: Int32Array,
    remotePorts: Int32Array,
  ): { serverCounts: Int32Array; localPorts: Int32Array; remotePorts: Int32Array; remoteAddresses: string[] };
  /** getsockname / getpeername; remote is null once the connection is gone. */
  readEndpoints(fd: number): { local: NativeEndpoint | null; remote: NativeEndpoint | null };
  /** Notes, process-wide, the descriptors this thread's agent tracks. */
  noteTracked(fds: Int32Array, count: number): void;
  /** Whether any thread's agent noted `fd` within the last `withinMs`. */
  trackedElsewhere(fd: number, withinMs: number): boolean;
  /**
   * Every TCP socket descriptor of this process, with its inode (stable where the fd number is
   * reused), except those in `skip` (sorted ascending), which cost nothing to pass over.
   */
  listTcpDescriptors(skip?: Int32Array): { fds: Int32Array; inodes: Float64Array };
  readonly SAMPLE_STRIDE: number;
  /**
   * True when a scan costs a read of whole tables whatever the number of sockets asked about
   * (procfs); false or absent when it costs per socket (the addon). The slow sweep plans by it.
   */
  readonly readsWholeTables?: boolean;
  /** The addon's row layout (name -> slot); the JavaScript backends use SAMPLE. */
  readonly SAMPLE?: Readonly<Record<string, number>>;
}

/**
 * Offsets into a scan row. The layout is the addon's (native/addon.cc, exported as SAMPLE): this
 * copy serves the JavaScript backends and is checked against the addon's when it loads.
 */
export const SAMPLE = { state: 0, lastDataSentMs: 1, lastDataRecvMs: 2, unacked: 3, notsentBytes: 4, unanswered: 5 } as const;
/** Int32s per scan row, for the backends written in JavaScript. */
export const SAMPLE_STRIDE = 6;

/** Reads one slot of row `index`: `rows[index * stride + SAMPLE[slot]]`. */
export function slotOf(rows: Int32Array, stride: number, index: number, slot: keyof typeof SAMPLE): number {
  return rows[index * stride + SAMPLE[slot]]!;
}

/** Why an addon's row layout cannot be read with SAMPLE, or undefined when it can. */
export function layoutMismatch(reader: KernelReader): string | undefined {
  const theirs = reader.SAMPLE;
  if (!theirs) return undefined;
  for (const [slot, offset] of Object.entries(SAMPLE)) {
    if (theirs[slot] !== offset) return `its scan row has ${slot} at ${String(theirs[slot])}, this JavaScript expects ${offset}`;
  }
  return reader.SAMPLE_STRIDE < SAMPLE_STRIDE ? `its scan row has ${reader.SAMPLE_STRIDE} slots, fewer than ${SAMPLE_STRIDE}` : undefined;
}

