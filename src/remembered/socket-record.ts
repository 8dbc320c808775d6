import type { Socket } from 'node:net';
import type { StackCapture } from '../common/stack';
import type { Endpoint, Leak, Origin } from '../common/types';

/**
 * The record the agent keeps of one socket, and the shapes of its fields.
 * Which stage writes which field: seen, through the registry (origin,
 * createdAt, creation, test, client, undici's uses, handedTo and the use that came with it);
 * judged (closeWaitSince, consumption, stall*, written*, peerKnown); the agent once a leak is told
 * (reported, reportedLeak, an http request's use).
 */

/** What the agent remembers about one socket, from when it is seen until it closes. */
export interface SocketRecord {
  readonly origin: Origin;
  /**
   * Date.now() when the agent saw the socket made; for one found later (createdAtLatest set), the
   * earliest it can have been made.
   */
  readonly createdAt: number;
  /** For a socket found after it was made (an accepted socket found at a scan): when it was found, the latest it can have been made. 0 otherwise. */
  createdAtLatest: number;
  /** Creation stack (client sockets) or the server's listen() stack (accepted sockets). */
  readonly creation: StackCapture | undefined;
  /** When a scan first saw CLOSE_WAIT; 0 while none has. */
  closeWaitSince: number;
  /** Whether the program is still taking in what arrived before the peer's FIN (closed states only). */
  consumption?: ConsumptionClock;
  /** Reported already: each leak is told once. */
  reported: boolean;
  /**
   * The HTTP requests sent over it, oldest first: undici's (fetch()) as each is sent, the last
   * few; http's, the one in flight, read from the socket when a report is made (the agent does
   * nothing on an http request's dispatch).
   */
  uses?: RequestUse[];
  /**
   * The listener http handed this client socket to: a request's 'upgrade' (or, for CONNECT,
   * 'connect') listener, seen on sockets whose creation stack was captured. That request is then
   * kept in `uses`, as http no longer holds it.
   */
  handedTo?: 'upgrade' | 'connect';
  /** The test that was running (in async context) when the socket was seen, when a test adapter says. */
  test?: string;
  /** Which client made it, when known: fetch(), or undici's own API (request(), stream()), by its last request. */
  client?: 'fetch' | 'undici';
  /** When a scan first saw the socket paused with unread bytes; 0 while none has. */
  stallSince: number;
  /** socket.bytesRead at stallSince: any progress ends the stall. */
  stallBytesRead: number;
  /** socket.bytesWritten when last looked at, and when it last moved (for backends without kernel send times). */
  writtenSeen: number;
  writtenAt: number;
  /** The peer's address has been read while connected (it cannot be read once the connection is gone). */
  peerKnown: boolean;
  /** Its addresses as the kernel gave them then (where the backend reads them; else Node caches them on the socket). */
  endpoints?: { local: Endpoint | null; remote: Endpoint | null };
  /** The report made of it and when (periodic scans), for the safety valve. */
  reportedLeak?: { leak: Leak; at: number };
  /**
   * For a socket accepted by a TLS server: the TLS socket that reads its stream (Node's own
   * reading state of the accepted socket goes stale once TLS takes the stream over); null until
   * the handshake has completed. Absent for a socket JavaScript reads itself.
   */
  reader?: Socket | null;
}

/**
 * A new record, every field present from the start (the optional ones undefined): records then
 * share one shape, and a field written later (a request's uses, a TLS reader) neither changes
 * it nor allocates room for it, on the path every new connection takes.
 */
export function newRecord(origin: Origin, createdAt: number, creation: StackCapture | undefined, peerKnown: boolean): SocketRecord {
  return {
    origin,
    createdAt,
    createdAtLatest: 0,
    creation,
    closeWaitSince: 0,
    consumption: undefined,
    reported: false,
    uses: undefined,
    handedTo: undefined,
    test: undefined,
    client: undefined,
    stallSince: 0,
    stallBytesRead: 0,
    writtenSeen: 0,
    writtenAt: 0,
    peerKnown,
    endpoints: undefined,
    reportedLeak: undefined,
    reader: undefined,
  };
}

/** One HTTP request sent over a socket: what it asked for, who asked, when. */
export interface RequestUse {
  method: string;
  /**
   * Where it went, as the request object gave it: undici's origin, or http's protocol and Host.
   * Kept raw: the URL is built and redacted only when a report needs it.
   */
  origin?: unknown;
  protocol?: string;
  host?: string;
  path: string;
  /** The caller's stack, captured when the request was made (not when it was dispatched). */
  caller: StackCapture | undefined;
  /**
   * The incoming request this process was serving when it made this one (a gateway, a proxy),
   * when it was made in the server's handler's own turn: its method and URL as received, and
   * its server's listen() stack.
   */
  served?: { method: string; url: string; listen: StackCapture | undefined };
  /** The OpenTelemetry span active when the request was made, when the application traces. */
  trace?: { traceId: string; spanId: string; traceFlags: number };
  /** When it was made, by the agent's clock; undefined for an http request the agent noted nothing of then. */
  at: number | undefined;
}

/** What the consumption clock remembers of a socket in a closed state. */
export interface ConsumptionClock {
  /** socket.bytesRead at the last look. */
  read: number;
  /** bufferedBytes at the last look. */
  buffered: number;
  /** When a look last saw progress, or the first look when none has. */
  quietSince: number;
  /** Whether any look saw progress. */
  progressSeen: boolean;
}
