import type { ClientRequestLike } from '../common/node-internals';
import type { StackCapture } from '../common/stack';
import type { RequestUse, SocketRecord } from '../remembered/socket-record';

export type { RequestUse } from '../remembered/socket-record';

/**
 * What the agent noted as a request was made, kept (by request, weakly) only when there was
 * something to note: its caller's stack when one was captured, the span and the request being
 * served, and the socket record made for it in the same call when that record has a creation
 * stack (which then holds this request's caller). `at` is the agent's clock then.
 */
export interface RequestMade {
  caller: StackCapture | undefined;
  served: RequestUse['served'];
  trace: RequestUse['trace'];
  madeSocket: SocketRecord | undefined;
  at: number;
}

/** Where an http request goes: its Host header, which carries the port when it is not the default (`host` alone does not). */
export function hostOf(request: ClientRequestLike): string | undefined {
  const header = request.getHeader?.('host');
  return typeof header === 'string' ? header : request.host;
}

/**
 * The use an http request in flight on the socket of `record` makes of it, read from the request
 * when a report needs it, with what was noted as it was made (`made`). Without a caller captured
 * then, the socket's creation stack stands in only when the socket was made for this very
 * request: a pooled socket's creation stack belongs to an earlier request.
 */
export function httpUse(request: ClientRequestLike, made: RequestMade | undefined, record: SocketRecord | undefined): RequestUse {
  return {
    method: request.method ?? 'GET',
    origin: undefined,
    protocol: request.protocol,
    host: hostOf(request),
    path: request.path ?? '/',
    caller: made?.caller ?? (made !== undefined && made.madeSocket === record ? record?.creation : undefined),
    served: made?.served,
    trace: made?.trace,
    at: made?.at,
  };
}

/** How many uses a socket remembers: enough to see a pattern, bounded so a long-lived socket costs nothing more. */
export const USES_KEPT = 4;

/**
 * The use object for a socket's newest request, to fill in place: a new one while the socket
 * has fewer than USES_KEPT, else its oldest, moved to the end. A request on a keep-alive socket
 * therefore allocates nothing here.
 */
export function nextUse(record: SocketRecord): RequestUse {
  const uses = (record.uses ??= []);
  if (uses.length < USES_KEPT) {
    const use: RequestUse = { method: '', origin: undefined, protocol: undefined, host: undefined, path: '', caller: undefined, served: undefined, trace: undefined, at: 0 };
    uses.push(use);
    return use;
  }
  const oldest = uses.shift()!;
  uses.push(oldest);
  return oldest;
}

/** The place a use went to, as the stack policy keys it: a fetch() origin, or an http request's host. */
export function useKey(use: RequestUse): string | undefined {
  return typeof use.origin === 'string' ? use.origin : use.origin === undefined ? use.host : undefined;
}

/**
 * The URL a use went to, redacted (see redactUrl): built only when a report needs it. An http
 * request's origin is `peer` when given (the socket's remote end: where the request really went),
 * else its Host header.
 */
export function useUrl(use: RequestUse, peer?: string): string {
  const origin = use.origin !== undefined ? String(use.origin) : `${use.protocol ?? 'http:'}//${peer ?? use.host ?? ''}`;
  return redactUrl(origin, use.path);
}

/** An http request's Host header when it names another place than `peer` ("host:port" or "[v6]:port"). */
export function hostBesidesPeer(use: RequestUse, peer: string | undefined): string | undefined {
  if (use.origin !== undefined || !use.host || !peer) return undefined;
  const defaultPort = use.protocol === 'https:' ? 443 : 80;
  const host = use.host.includes(':') && !use.host.endsWith(']') ? use.host : `${use.host}:${defaultPort}`;
  return host === peer ? undefined : use.host;
}

/**
 * "http://host:port/path?key=…": credentials removed, query values replaced,
 * so a report can be shared without leaking tokens.
 */
export function redactUrl(origin: string, path: string): string {
  let base = origin;
  try {
    const url = new URL(origin);
    url.username = '';
    url.password = '';
    base = url.origin;
  } catch {
    // Not a URL: keep it as given.
  }
  const query = path.indexOf('?');
  if (query < 0) return base + path;
  const keys = path
    .slice(query + 1)
    .split('&')
    .filter(Boolean)
    .map((pair) => `${pair.split('=')[0]}=…`);
  return `${base}${path.slice(0, query)}?${keys.join('&')}`;
}
