import { readFileSync } from 'node:fs';
import type { KernelReader, NativeEndpoint } from './kernel-reader';

/**
 * Reading Linux's /proc/self/net tables: the TCP rows by inode (state,
 * queues, addresses, unanswered retransmissions), the TIME_WAIT rows, and the
 * inodes of every other kind of socket. The columns are fixed-width, so a row's
 * state is read by offset and the rows not wanted (TIME_WAIT, often most of a
 * busy host's table) are skipped without splitting them.
 */

// TIME_WAIT, CLOSE_WAIT, LAST_ACK, CLOSING: states in which the peer's FIN has arrived.
const FIN_RECEIVED = new Set([6, 8, 9, 11]);

/** One row of /proc/net/tcp or tcp6. */
export interface TcpRow {
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
export function readTimeWait(serverPorts: Int32Array, clientPorts: Int32Array): ReturnType<KernelReader['listTimeWait']> {
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

/** The TCP tables (IPv4 and IPv6), read now, by inode. */
export function readTcpTables(): Map<number, TcpRow> {
  const rows = new Map<number, TcpRow>();
  readTable('/proc/self/net/tcp', 'IPv4', rows);
  readTable('/proc/self/net/tcp6', 'IPv6', rows);
  return rows;
}

/**
 * Inodes of every socket that is not TCP (unix, udp, raw, netlink, packet), so
 * that a socket inode missing from the TCP tables can be told to be a closed
 * TCP socket rather than, say, a pipe or a UDP socket.
 */
export function otherSocketInodes(): Set<number> {
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
