import type { Socket } from 'node:net';
import { InvalidSettingError } from '../common/errors';
import { formatLocation } from '../common/stack';
import type { Leak } from '../common/types';

/**
 * Something a leak check should not count, in the spirit of goleak's
 * IgnoreTopFunction / IgnoreCurrent: made by ignoreLocation, ignoreRemote or
 * ignoreCurrent and passed in `ignore` to verifyNoLeaks or configureTestChecks.
 */
export interface SocketIgnore {
  /** What it ignores, in words (shown when a check is described). */
  readonly description: string;
  /**
   * True when this leak must not be counted. `socket` is absent for a socket no agent tracks
   * (found among the process's descriptors), which `untrackedKey` ("fd:inode") names instead.
   */
  matches(leak: Leak, socket: Socket | undefined, untrackedKey?: string): boolean;
}

/**
 * Ignores sockets whose report location, or any frame of whose creation stack
 * (node_modules included), contains `pattern` (a string) or matches it (a
 * RegExp). For example a connection pool a test suite keeps on purpose:
 * `ignoreLocation('test/support/db.js')` or `ignoreLocation(/node_modules\/ioredis\//)`.
 */
export function ignoreLocation(pattern: string | RegExp): SocketIgnore {
  if (!(typeof pattern === 'string' && pattern.length > 0) && !(pattern instanceof RegExp)) {
    throw new InvalidSettingError('ignoreLocation', pattern, 'expected a non-empty string or a RegExp');
  }
  const test = typeof pattern === 'string' ? (text: string) => text.includes(pattern) : (text: string) => pattern.test(text);
  return {
    description: `sockets created at ${String(pattern)}`,
    matches(leak) {
      if (leak.location && test(formatLocation(leak.location))) return true;
      if (leak.creation && test(formatLocation(leak.creation))) return true;
      return leak.stack.split('\n').some((frame) => test(frame.trim()));
    },
  };
}

/** The peer `ignoreRemote` matches: a port, a host (IP address or 'localhost'), or both. */
export interface RemoteMatch {
  host?: string;
  port?: number;
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

/**
 * Ignores connections to (or, for accepted sockets, from) a peer:
 * `ignoreRemote({ port: 5432 })`, `ignoreRemote({ host: '10.0.0.7', port: 6379 })`.
 * A host is an IP address as the kernel reports it, or 'localhost' for any
 * loopback address.
 */
export function ignoreRemote(remote: RemoteMatch): SocketIgnore {
  const { host, port } = remote ?? {};
  if (host === undefined && port === undefined) {
    throw new InvalidSettingError('ignoreRemote', remote, 'expected { host?, port? } with at least one of them');
  }
  if (host !== undefined && (typeof host !== 'string' || host.length === 0)) {
    throw new InvalidSettingError('ignoreRemote.host', host, 'expected an IP address or "localhost"');
  }
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
    throw new InvalidSettingError('ignoreRemote.port', port, 'expected a whole number from 1 to 65535');
  }
  const hostMatches = (address: string) =>
    host === undefined || (host === 'localhost' ? LOOPBACK.test(address) : address === host || address === `::ffff:${host}`);
  return {
    description: `connections with ${host ?? '*'}:${port ?? '*'}`,
    matches(leak) {
      const peer = leak.remote;
      return peer !== null && hostMatches(peer.address) && (port === undefined || peer.port === port);
    },
  };
}

/** Ignores exactly these sockets (ignoreCurrent passes the agent's open sockets, and the "fd:inode" of untracked ones). */
export function ignoreSockets(sockets: Iterable<Socket>, description: string, untracked: Iterable<string> = []): SocketIgnore {
  const known = new WeakSet<Socket>(sockets);
  const knownUntracked = new Set(untracked);
  return { description, matches: (_leak, socket, untrackedKey) => (socket ? known.has(socket) : untrackedKey !== undefined && knownUntracked.has(untrackedKey)) };
}

/** Checks an `ignore` list; throws InvalidSettingError naming the setting. */
export function checkIgnoreList(setting: string, ignore: unknown): readonly SocketIgnore[] {
  if (ignore === undefined) return [];
  const list = Array.isArray(ignore) ? ignore : [ignore];
  for (const entry of list) {
    if (typeof entry !== 'object' || entry === null || typeof (entry as SocketIgnore).matches !== 'function') {
      throw new InvalidSettingError(setting, entry, 'expected what ignoreLocation(), ignoreRemote() or ignoreCurrent() return');
    }
  }
  return list as SocketIgnore[];
}
