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

/**
 * Parses /proc/self/net/tcp or tcp6 into rows by inode; with `wanted`, only those inodes' rows
 * (found ones are taken out of it). Missing file (no IPv6): no rows.
 *
 * The kernel writes about 150 bytes per connection of the namespace, and reading them costs
 * about 3 µs per row whatever is done with it; what is done is kept small: lines are walked in
 * place (no split), a row's state is read at its fixed offset and its inode found by walking
 * three short fields, and only a wanted row is split and parsed.
 */
function readTable(file: string, family: 'IPv4' | 'IPv6', into: Map<number, TcpRow>, wanted?: Set<number>): void {
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // no IPv6
    throw error; // EMFILE and the like: no answer is not "every socket closed"
  }
  // "sl: local remote st tx:rx tr:when retrnsmt uid timeout inode ...": everything up to
  // retrnsmt has a fixed width, addresses included.
  const addressWidth = family === 'IPv4' ? 13 : 37;
  let start = text.indexOf('\n') + 1; // past the header
  while (start > 0 && start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const stateAt = text.indexOf(':', start) + 2 + 2 * (addressWidth + 1);
    const next = end + 1;
    // TIME_WAIT rows (no descriptor, often most of a busy host's table) are skipped first.
    if (stateAt <= start + 1 || stateAt >= end || text.startsWith('06', stateAt)) {
      start = next;
      continue;
    }
    if (wanted) {
      const inode = inodeAt(text, stateAt + 41, end);
      if (!wanted.has(inode)) {
        start = next;
        continue;
      }
      wanted.delete(inode);
    }
    const row = parseRow(text.slice(start, end), family);
    if (row) into.set(row.inode, row.row);
    start = next;
  }
}

/** The inode of a row: the third whitespace-separated field from `at` (uid, timeout, inode). */
function inodeAt(text: string, at: number, end: number): number {
  let i = at;
  for (let field = 0; field < 2; field++) {
    while (i < end && text.charCodeAt(i) === 32) i++;
    while (i < end && text.charCodeAt(i) !== 32) i++;
  }
  while (i < end && text.charCodeAt(i) === 32) i++;
  let inode = 0;
  for (let c = text.charCodeAt(i); i < end && c >= 48 && c <= 57; c = text.charCodeAt(++i)) inode = inode * 10 + (c - 48);
  return inode;
}

function parseRow(line: string, family: 'IPv4' | 'IPv6'): { inode: number; row: TcpRow } | undefined {
  const fields = line.trim().split(/\s+/);
  if (fields.length < 10) return undefined;
  const [tx, rx] = fields[4]!.split(':') as [string, string];
  const state = parseInt(fields[3]!, 16);
  const rxQueue = parseInt(rx, 16);
  return {
    inode: Number(fields[9]),
    row: {
      state,
      txQueue: parseInt(tx, 16),
      // rcv_nxt - copied_seq counts the peer's FIN once it arrived; SIOCINQ (the addon) does not.
      rxQueue: FIN_RECEIVED.has(state) && rxQueue > 0 ? rxQueue - 1 : rxQueue,
      unanswered: Math.max(parseInt(fields[6]!, 16), Number(fields[8])),
      local: endpoint(fields[1]!, family),
      remote: endpoint(fields[2]!, family),
    },
  };
}

/**
 * TIME_WAIT connections, as the addon's listTimeWait gives them (they have no inode, so readTable
 * skips them). Without the kernel's filter, the whole tables are read: the cost follows the namespace.
 */
export function readTimeWait(serverPorts: Int32Array, peerPorts: Int32Array): ReturnType<KernelReader['listTimeWait']> {
  const serverIndex = new Map<number, number>();
  serverPorts.forEach((port, i) => serverIndex.set(port, i));
  const peers = new Set(peerPorts);
  const serverCounts = new Int32Array(serverPorts.length);
  const localPorts: number[] = [];
  const remotePorts: number[] = [];
  const remoteAddresses: string[] = [];
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
      const localPort = parseInt(line.slice(localAt + addressWidth - 4, localAt + addressWidth), 16);
      const server = serverIndex.get(localPort);
      if (server !== undefined) {
        serverCounts[server]!++;
        continue;
      }
      const remotePort = parseInt(line.slice(localAt + 2 * addressWidth - 3, localAt + 2 * addressWidth + 1), 16);
      if (!peers.has(remotePort)) continue;
      const remote = endpoint(line.slice(localAt + addressWidth + 1, localAt + 2 * addressWidth + 1), family);
      localPorts.push(localPort);
      remotePorts.push(remote.port);
      remoteAddresses.push(remote.address);
    }
  }
  return { serverCounts, localPorts: Int32Array.from(localPorts), remotePorts: Int32Array.from(remotePorts), remoteAddresses };
}

/**
 * Every TIME_WAIT connection of the network namespace (IPv4 and IPv6), from the "tw" count of
 * /proc/net/sockstat: one short read, whatever the namespace holds. -1 when it cannot be read.
 */
export function namespaceTimeWait(): number {
  try {
    const match = / tw (\d+)/.exec(readFileSync('/proc/self/net/sockstat', 'latin1'));
    return match ? Number(match[1]) : -1;
  } catch {
    return -1;
  }
}

/**
 * The TCP tables (IPv4 and IPv6), read now, by inode. With `inodes`, only their rows, and
 * tcp6 is read only when some of them were not in tcp.
 */
export function readTcpTables(inodes?: ReadonlySet<number>): Map<number, TcpRow> {
  const rows = new Map<number, TcpRow>();
  const wanted = inodes && new Set(inodes);
  readTable('/proc/self/net/tcp', 'IPv4', rows, wanted);
  if (!wanted || wanted.size > 0) readTable('/proc/self/net/tcp6', 'IPv6', rows, wanted);
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
