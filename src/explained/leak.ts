import type { Socket } from 'node:net';
import { threadId } from 'node:worker_threads';
import { classifyLeak } from './cause';
import { clientLibraryOf, inLibraryTerms } from './client-library';
import type { FunctionLocator } from './function-locations';
import type { SourcePositions } from './source-positions';
import { listenerEvidence } from './listener-evidence';
import type { Finding } from '../judged/detector';
import type { SocketRecord } from '../remembered/registry';
import { TCP_CLOSE, TCP_ESTABLISHED, tcpStateName } from '../common/tcp-states';
import { formatLocation, framesOf, isDependency, locate, trimFrames, userLocation } from '../common/stack';
import { hostBesidesPeer, redactUrl, useUrl, type RequestUse } from '../seen/request-uses';
import { formatEndpoint } from '../common/endpoints';
import { httpRequestOf } from '../common/node-internals';
import type { Endpoint, Leak, Location, RequestUseReport } from '../common/types';
import { realIso } from '../common/real-time';

function endpoint(address: string | undefined, port: number | undefined): Endpoint | null {
  if (!address || port === undefined) return null;
  return { address, port, family: address.includes(':') ? 'IPv6' : 'IPv4' };
}

/**
 * The socket's addresses: as the kernel gave them to a scan while the socket was connected (see
 * rememberPeer in judged/detector.ts), else as Node reads them (getsockname / getpeername, which
 * still answer in CLOSE_WAIT; Node caches the answer on the socket).
 */
export function endpointsOf(socket: Socket, record: Pick<SocketRecord, 'endpoints'> | undefined): { local: Endpoint | null; remote: Endpoint | null } {
  if (record?.endpoints?.remote) return record.endpoints;
  try {
    return {
      local: endpoint(socket.localAddress, socket.localPort),
      remote: endpoint(socket.remoteAddress, socket.remotePort),
    };
  } catch {
    return { local: null, remote: null };
  }
}

/**
 * Turns a detector finding into the report object. Formats the stack, so it runs only when reporting.
 * `noteWithoutLine` says why no line is named (a stack not sampled, stacks off), given the last use.
 *
 * The location is a line the evidence supports, or none: the caller of the last request sent
 * over the socket when there was one (a pooled socket is leaked by the request that used it
 * last, not by the one that opened it), else the creation site. A last request whose caller
 * was not captured leaves the location empty rather than falling back to the creation site, as
 * does a pooled socket whose last request is not known.
 *
 * `positions` (with `locator`, when the check may use the inspector) puts positions a loader
 * compiled in memory back into the source, or marks them compiled (see SourcePositions).
 */
export function describeLeak(
  finding: Finding,
  skipNodeModules: boolean,
  atExit: boolean,
  noteWithoutLine?: (lastUse: RequestUseReport | undefined) => string,
  locator?: FunctionLocator,
  positions?: SourcePositions,
): Leak {
  const { socket, record } = finding;
  const frames = trimFrames(framesOf(record.creation));
  const { local, remote } = socket ? endpointsOf(socket, record) : (finding.endpoints ?? { local: null, remote: null });
  const inSource = (location: Location | null, from: 'stack' | 'function' = 'stack') => (positions ? positions.inSource(location, from) : location);
  const creation = inSource(userLocation(frames, skipNodeModules));
  const peer = remote ? formatEndpoint(remote) : undefined;
  const uses = record.uses?.map((use) => describeUse(use, skipNodeModules, peer, inSource));
  const lastUse = uses?.[uses.length - 1];
  const plainCause = !socket || finding.leftOpen || finding.deadPeer ? undefined : classifyLeak(socket, record);
  const evidence = socket && locator ? listenerEvidence(socket, plainCause, locator, skipNodeModules) : { listener: undefined, located: [] };
  const { located } = evidence;
  // A function's location is V8's, in the code that ran: compiled, when a loader compiled it.
  const listener = evidence.listener && { ...evidence.listener, location: inSource(evidence.listener.location, 'function') ?? evidence.listener.location };
  const lastCaller = record.uses?.[record.uses.length - 1]?.caller;
  const library = listener?.routesWebSockets ? 'ws' : socket ? clientLibraryOf(socket, record, located, [...framesOf(lastCaller), ...frames]) : undefined;
  const cause = plainCause && inLibraryTerms(plainCause, library);
  // A client socket http let go of (back in its agent's pool) with no request noted: its creation
  // stack names the request that opened it, which need not be the one that used it last.
  const pooled = !lastUse && record.origin === 'client' && socket !== undefined && httpRequestOf(socket) === null;
  // The listener that dropped an upgraded socket is the place to fix; a response callback is
  // the evidence left when the request's caller was not captured.
  const fromStacks = lastUse ? lastUse.location : pooled ? null : creation;
  // A stack that shows only a library's frames names no line of the program: not a place to fix.
  const programLine = fromStacks && !(skipNodeModules && isDependency(fromStacks.file)) ? fromStacks : null;
  const location = listener && listener.event !== 'response' ? listener.location : (programLine ?? listener?.location ?? null);
  return {
    kind: kindOf(finding),
    state: tcpStateName(finding.state),
    fd: finding.fd,
    local,
    remote,
    closeWaitMs: finding.closeWaitMs,
    lastDataSentMs: finding.lastDataSentMs,
    ...(finding.unreadBytes !== undefined ? { unreadBytes: finding.unreadBytes } : {}),
    createdAt: realIso(record.createdAt),
    ...(record.createdAtLatest !== 0 ? { createdAtLatest: realIso(record.createdAtLatest) } : {}),
    detectedAt: realIso(),
    origin: record.origin,
    ...(cause ? { cause } : {}),
    ...(finding.deadPeer?.unanswered !== undefined ? { unanswered: finding.deadPeer.unanswered } : {}),
    ...(finding.deadPeer?.idleMs !== undefined ? { idleMs: finding.deadPeer.idleMs } : {}),
    location,
    creation,
    ...(lastUse ? { lastUse, uses } : {}),
    ...(listener ? { listener } : {}),
    stack: frames.map((frame) => `    ${frame.text}`).join('\n'),
    atExit,
    ...(record.test !== undefined ? { test: record.test } : {}),
    ...(pooled && creation ? { pooled: true as const } : {}),
    ...(location || record.origin === 'unknown'
      ? {}
      : pooled && creation
        ? { stackNote: `http let go of this socket after a request (it went back to its agent's pool), and no later request of it was noted: the line that opened it (${formatLocation(creation)}) need not be the one that used it last` }
        : fromStacks
        ? { stackNote: `its stack shows only a library's code (${formatLocation(fromStacks)}), no line of the program` }
        : noteWithoutLine
          ? { stackNote: noteWithoutLine(lastUse) }
          : {}),
    threadId,
    pid: process.pid,
  };
}

/** The kind of leak a finding is. */
export function kindOf(finding: Finding): Leak['kind'] {
  if (finding.leftOpen) return 'left-open';
  if (finding.deadPeer) return 'dead-peer';
  if (finding.state === TCP_CLOSE) return 'descriptor-without-connection';
  return finding.state === TCP_ESTABLISHED ? 'stalled-reader' : 'close-wait';
}

function describeUse(use: RequestUse, skipNodeModules: boolean, peer: string | undefined, inSource: (location: Location | null) => Location | null): RequestUseReport {
  const host = hostBesidesPeer(use, peer);
  return {
    method: use.method,
    url: useUrl(use, peer),
    ...(host !== undefined ? { host } : {}),
    ...(use.trace ? { trace: { ...use.trace } } : {}),
    ...(use.served ? { served: { method: use.served.method, url: redactUrl('', use.served.url), server: locate(use.served.listen, skipNodeModules) } } : {}),
    location: inSource(locate(use.caller, skipNodeModules)),
    ...(use.at !== undefined ? { at: realIso(use.at) } : {}),
  };
}
