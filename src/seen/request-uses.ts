import type { RequestUse, SocketRecord } from '../remembered/socket-record';

export type { RequestUse } from '../remembered/socket-record';

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
