/** Who opened the connection, as far as the agent saw it. */
export type Origin = 'client' | 'server' | 'unknown';

/** The place in user code a socket is attributed to. */
export interface Location {
  /** Absolute path (file: URLs are turned into paths). */
  file: string;
  line: number;
  column: number;
  /** The function at that frame, when V8 names one. */
  function?: string;
  /**
   * The position is in code a loader compiled from this file in memory (tsx, ts-node, babel's
   * require hook), not in the file on disk, and no source map maps it back: the line and column
   * are not the file's. (Where the transpiler left an inline source map, the location is mapped
   * through it instead.)
   */
  compiled?: true;
}

/** One end of a connection. */
export interface Endpoint {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

/**
 * What kind of leak a report is about:
 * - 'close-wait': the peer closed the connection and this process never closed its side;
 * - 'descriptor-without-connection': the connection is over (kernel state CLOSE), yet the
 *   descriptor is still open: invisible to `ss` and /proc/net/tcp, still a leaked fd;
 * - 'stalled-reader': bytes wait unread in the kernel and nothing has read the socket for
 *   stallMs (paused or never consumed); the peer often gave up long ago behind a full window;
 * - 'left-open': strict checks only: a socket its test created was still open when the test ended;
 * - 'dead-peer': connected, but the peer stopped answering (retransmissions unanswered), or
 *   silent both ways for idleMs with TCP keepalive off.
 */
export type LeakKind = 'close-wait' | 'descriptor-without-connection' | 'stalled-reader' | 'left-open' | 'dead-peer';

/** The event whose listener the program was handed a socket (or its response) through. */
export type ListenerEvent = 'upgrade' | 'connect' | 'connection' | 'secureConnection' | 'request' | 'response';

/** A leaked socket, as reported by the text and JSON reporters and `onLeak`. */
export interface Leak {
  kind: LeakKind;
  /** Kernel TCP state when the leak was found: 'CLOSE_WAIT', 'CLOSE', 'ESTABLISHED' (left-open: any state). */
  state: string;
  fd: number;
  local: Endpoint | null;
  remote: Endpoint | null;
  /**
   * How long the agent has seen the socket in its leaked state (0 when first seen at exit or by
   * findLeaks). After the fact (attach): the time since the peer's last data arrived, an upper
   * bound on the time since its FIN.
   */
  closeWaitMs: number;
  /** Milliseconds since this side last sent data, from the kernel. */
  lastDataSentMs: number;
  /** Bytes received and not read by the process (stalled readers). */
  unreadBytes?: number;
  /** Dead peers: retransmissions (or zero-window probes) in a row the peer did not answer. */
  unanswered?: number;
  /** Dead peers: how long nothing was sent or received, with TCP keepalive off. */
  idleMs?: number;
  /** Why it leaked, as far as the JavaScript side shows; absent for sockets of unknown origin. */
  cause?: LeakCause;
  /** When the agent saw the socket made (ISO 8601); for one found later (createdAtLatest), the earliest it can have been made. */
  createdAt: string;
  /**
   * For an accepted socket found at a scan rather than seen as it came (outside test runs; see
   * docs/how-it-works.md): when it was found, the latest it can have been made (ISO 8601).
   */
  createdAtLatest?: string;
  /**
   * Found by `tcp-leak-agent attach` in a process the agent was not started in: there is no
   * creation time (createdAt is when it was found), no stack and no history, only what the
   * process still holds.
   */
  afterTheFact?: true;
  /** When the agent found the leak (ISO 8601): the ages in the report are as of then. */
  detectedAt: string;
  origin: Origin;
  /**
   * Where to fix it: the caller of the last HTTP request sent over the socket; for a socket no
   * request used, the creation site (for accepted sockets, the server's listen() call). Null when
   * that stack was not captured, or for a pooled socket whose last request is not known (stackNote
   * says why): never another line instead.
   */
  location: Location | null;
  /** The creation site: first frame of user code in the creation stack, or the server's listen() call. */
  creation: Location | null;
  /** The last HTTP request sent over the socket, when there was one. */
  lastUse?: RequestUseReport;
  /**
   * The program's function that was handed the socket (a server's 'upgrade' or 'connect'
   * listener; for any other accepted socket, the server's 'connection', 'secureConnection' or
   * 'request' listener) or its response (a request's 'response' callback) and let it go,
   * located by V8 when the report was built. For all but 'response' it is the location too
   * (an accepted socket's listen() call stays its `creation`).
   */
  listener?: { event: ListenerEvent; what: string; location: Location };
  /** The HTTP requests sent over it, oldest first: fetch()'s and undici's last few (at most 4); http's, the one in flight. */
  uses?: RequestUseReport[];
  /** The creation stack (accepted sockets: the listen() stack), agent frames removed. */
  stack: string;
  /** True when found by the final scan as the process exited. */
  atExit: boolean;
  /** The test that created the socket, when a test-runner adapter is in use. */
  test?: string;
  /**
   * How many sockets this report stands for: leaks of the same kind from the same place,
   * found in the same scan, are told once. Absent means 1.
   */
  count?: number;
  /** The other sockets of a grouped report (at most 10). */
  others?: Array<{ fd: number; local: Endpoint | null; remote: Endpoint | null }>;
  /**
   * A client socket http let go of after a request (back in its agent's pool) with no later
   * request noted: its creation site names the request that opened it, not necessarily the one
   * that used it last, so no line is named.
   */
  pooled?: true;
  /** Why no line is named: the stack that would name it was not sampled (and what happens next), or stacks are off. */
  stackNote?: string;
  /** Thread id (0 is the main thread) and pid, so reports from workers and children can be told apart. */
  threadId: number;
  pid: number;
}

/**
 * Leaks held back because their place was reported recently (reports are
 * rate-limited per place), told in one line. JSON lines carry `type: 'leak-summary'`.
 */
export interface LeakSummaryReport {
  type: 'leak-summary';
  kind: LeakKind;
  /** "file:line:column", or the connection's far end when no line is known. */
  place: string;
  location: Location | null;
  /** Leaks held back since the last report of this place. */
  count: number;
  /** Leaks from this place since the agent started. */
  total: number;
  /** When this place was last reported (ISO 8601); null when it never was (too many places leaked at once). */
  lastReportedAt: string | null;
  pid: number;
}

/** An HTTP request sent over a socket, as reports show it. */
export interface RequestUseReport {
  method: string;
  /**
   * Credentials and query values redacted. For http, the origin is the socket's real peer (a
   * proxy's Host header names the proxy, not the upstream the socket is connected to).
   */
  url: string;
  /** The Host header, when it names another place than the socket's peer (a proxied request). */
  host?: string;
  /**
   * The incoming request this process was serving when it made this one (a gateway's endpoint),
   * when made in the server handler's own turn: its method, its URL (query values redacted) and
   * the serving server's listen() line.
   */
  served?: { method: string; url: string; server: Location | null };
  /** The OpenTelemetry trace and span active when the request was made (W3C ids), when the application traces. */
  trace?: { traceId: string; spanId: string; traceFlags: number };
  /** The caller's line, captured when the request was made; null when it could not be. */
  location: Location | null;
  /**
   * When the request was made, to within one check interval (`intervalMs`): the agent's clock
   * advances at each check. Absent for an http request the agent noted nothing of as it was made
   * (no stack captured, no span, no request being served).
   */
  at?: string;
}

/** Why a socket leaked, as far as its JavaScript side shows. */
export interface LeakCause {
  /**
   * 'unread' (data or EOF never read), 'unread-http-response', 'unread-fetch-body', and for
   * recognised libraries 'unread-node-fetch-body', 'unread-undici-body', 'unread-axios-stream',
   * 'unread-got-stream', 'proxy-response-abandoned' (http-proxy), 'upgrade-not-routed' (an
   * 'upgrade' listener that hands some sockets to ws's handleUpgrade() and leaves others);
   * 'eof-not-ended' (allowHalfOpen: 'end' seen, end() never called), 'ended-unread' (end()
   * called with data or the EOF unread, so the socket is never destroyed),
   * 'upgrade-not-closed', 'connect-not-closed', 'upgrade-or-connect-not-closed', or 'unknown'.
   */
  code: string;
  /** What happened, in plain words. */
  summary: string;
  /** What to do, in one line. */
  fix: string;
}

/** One TCP socket of the process as the agent sees it, for `snapshot()`. */
export interface SocketSnapshot {
  fd: number;
  /** Kernel TCP state name, e.g. 'ESTABLISHED' or 'CLOSE_WAIT'. */
  state: string;
  origin: Origin;
  local: Endpoint | null;
  remote: Endpoint | null;
  createdAt: string;
  /** As in Leak: set for a socket found after it was made. */
  createdAtLatest?: string;
  location: Location | null;
  lastDataSentMs: number;
  lastDataRecvMs: number;
}

/** Output format of reports. */
export type ReportFormat = 'text' | 'json';

/**
 * How many creation stacks the agent captures, in the spirit of Netty's leak
 * detector levels. Kernel state is checked for every socket at every level;
 * only the stack (the "where") is sampled.
 * - 'all': every socket and request (tests, CI);
 * - 'sampled': one in `every` (production default): a leak that repeats is
 *   soon caught on a sampled socket, and its reports name the line;
 * - 'off': none; reports name the connection and its requests only (and
 *   the functions V8 locates). Client sockets are found at scans, not noted
 *   as each one is made.
 */
export type StackLevel = 'off' | 'sampled' | 'all';

/** A pino-style logger: `logger.warn(object, message)`. Bunyan, pino and many wrappers take this shape. */
export interface AgentLogger {
  warn(object: object, message: string): unknown;
  info?(object: object, message: string): unknown;
}
