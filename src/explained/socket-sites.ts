import type { Measurement } from '../measured/scanner';
import { formatLocation, locate, type StackCapture } from '../common/stack';
import { slotOf } from '../measured/kernel-reader';
import { tcpStateName } from '../common/tcp-states';
import type { Location } from '../common/types';
import type { Socket } from 'node:net';
import type { SocketRecord } from '../remembered/registry';
import { formatEndpoint } from '../common/endpoints';
import { httpRequestOf } from '../common/node-internals';
import { httpUse, useUrl, type RequestUse } from '../seen/request-uses';

/** Tracked sockets opened at one place, by kernel state. */
export interface SocketSite {
  /** "file:line:column", or why no line is known. */
  place: string;
  location: Location | null;
  origin: 'client' | 'server' | 'unknown';
  count: number;
  /** Sockets by kernel state name, e.g. { CLOSE_WAIT: 2890, ESTABLISHED: 10 }. */
  states: Record<string, number>;
}

/** The captured caller of the request a socket carries, if any (see SocketSources.requestCaller). */
export type RequestCaller = (socket: Socket, record: SocketRecord) => StackCapture | undefined;

/** Stacks formatted per call at most: formatting costs 10-40 µs each, and this runs while descriptors run out. */
const MAX_STACKS_FORMATTED = 5000;

/**
 * Which places hold the most open sockets, and in which states: the answer an
 * operator needs when descriptors run out. Sockets accepted by one server
 * share one listen() stack, so they cost one format.
 */
export function socketSites(m: Measurement, skipNodeModules: boolean, top: number, requestCaller?: RequestCaller): SocketSite[] {
  const sites = new Map<string, SocketSite>();
  const formatted = new Map<object, Location | null>();
  const locateOnce = (stack: StackCapture): Location | null => {
    if (!formatted.has(stack) && formatted.size < MAX_STACKS_FORMATTED) formatted.set(stack, locate(stack, skipNodeModules));
    return formatted.get(stack) ?? null;
  };
  for (let i = 0; i < m.count; i++) {
    const record = m.records[i]!;
    const state = slotOf(m.rows, m.stride, i, 'state');
    if (state < 0) continue;
    let location = record.creation ? locateOnce(record.creation) : null;
    // Where the creation stack names no line of the program (or none was captured), the captured
    // caller of the request using the socket may: where it was put to use.
    const caller = location ? undefined : requestCaller?.(m.sockets[i]!, record);
    if (caller) location = locateOnce(caller);
    let place: string;
    if (location) place = formatLocation(location);
    else if (record.creation || caller) place = 'where no user code was on the stack';
    else place = `no creation stack (not sampled)${whatIsKnown(m.sockets[i]!, record)}`;
    const key = `${record.origin} ${place}`;
    let site = sites.get(key);
    if (!site) {
      site = { place, location, origin: record.origin, count: 0, states: {} };
      sites.set(key, site);
    }
    site.count++;
    const name = tcpStateName(state);
    site.states[name] = (site.states[name] ?? 0) + 1;
  }
  return [...sites.values()].sort((a, b) => b.count - a.count).slice(0, top);
}

/**
 * For a socket with no creation stack, what else groups it with its like: the request that last
 * used it (method and URL, the query left out so that one endpoint is one row), else, for a
 * client, the peer it connected to. Read only for a dump or a descriptor warning.
 */
function whatIsKnown(socket: Socket, record: SocketRecord): string {
  const request = record.uses?.at(-1) ?? requestUseOf(socket);
  // As a scan read it from the kernel, else from Node (which then caches it on the socket).
  const remote = record.endpoints?.remote ?? (socket.remoteAddress && socket.remotePort ? { address: socket.remoteAddress, port: socket.remotePort } : undefined);
  const peer = remote ? formatEndpoint(remote) : undefined;
  if (request) return `: ${request.method} ${useUrl({ ...request, path: request.path.split('?')[0]! }, peer)}`;
  return record.origin === 'client' && peer ? `: connected to ${peer}` : '';
}

/** The http request in flight on a client socket, if any, as a use. */
function requestUseOf(socket: Socket): RequestUse | undefined {
  const request = httpRequestOf(socket);
  return request && typeof request.getHeader === 'function' ? httpUse(request, undefined, undefined) : undefined;
}

/** The sites as indented lines: count, place, states. */
export function formatSites(sites: SocketSite[]): string {
  return sites
    .map((site) => {
      const states = Object.entries(site.states)
        .sort((a, b) => b[1] - a[1])
        .map(([state, count]) => `${state} ${count}`)
        .join(', ');
      const accepted = site.origin === 'server' ? ' (accepted by the server listening there)' : '';
      return `  ${String(site.count).padStart(6)}  ${site.place}${accepted}: ${states}\n`;
    })
    .join('');
}
