import type { Socket } from 'node:net';
import { httpParserOf, httpRequestOf, httpResponseOf, isHttpServer, isTlsServer, keptResponseHandlers, serverOf } from '../common/node-internals';
import type { LeakCause, ListenerEvent, Location } from '../common/types';
import type { FunctionLocator } from './function-locations';
import { handedOverTo } from './cause';

/** A function of the program that was handed the leaked socket (or its response) and let it go. */
export interface ListenerEvidence {
  /**
   * 'upgrade' or 'connect' (a server's listener), 'connection', 'secureConnection' or 'request'
   * (the listener a server gave any other accepted socket to), or 'response' (a request's
   * callback, or a listener on its response).
   */
  event: ListenerEvent;
  /** Which function, in words: "the server's 'upgrade' listener", "a 'data' listener on the response". */
  what: string;
  location: Location;
  /** The listener hands sockets to a WebSocketServer (its code calls ws's handleUpgrade()). */
  routesWebSockets?: true;
}

/**
 * The event whose listeners a server handed an accepted socket to, for a socket no more specific
 * listener took: an http(s) server's 'request' (its 'connection' listener is Node's own), a TLS
 * server's 'secureConnection', a net server's 'connection'. Undefined for a client socket.
 */
function acceptedBy(socket: Socket): 'connection' | 'secureConnection' | 'request' | undefined {
  const server = serverOf(socket);
  if (!server) return undefined;
  // One the http server handed over (its parser gone) went to 'upgrade' or 'connect', not to a request handler.
  if (isHttpServer(server)) return httpParserOf(socket) === null ? undefined : 'request';
  if (isTlsServer(server)) return 'secureConnection';
  return 'connection';
}

/** A response's events whose listeners are the program's handling of its body. */
const RESPONSE_EVENTS = ['data', 'readable', 'end', 'close', 'error'] as const;

function isProgramCode(location: Location, skipNodeModules: boolean): boolean {
  if (location.file.startsWith('node:') || !/^(\/|[A-Za-z]:\\|file:)/.test(location.file)) return false;
  return !skipNodeModules || !/[\\/]node_modules[\\/]/.test(location.file);
}

/**
 * The program's function that held the socket last, by the cause: the
 * server's 'upgrade' or 'connect' listener for a socket the http server handed
 * over and nobody closed (or that listener ended with data unread); for any
 * other accepted socket, the listener its server gave it to (a raw server's
 * 'connection' callback, a TLS server's 'secureConnection', an http server's
 * 'request' handler), whose location V8 knows at no cost; the request's 'response' callback for a response
 * body nobody read. Read from the functions V8 knows (FunctionLocator), the
 * first one in the program's own code: none when there is none, or it cannot
 * be told (two listeners for an ambiguous cause). `located`: every listener
 * located, dependencies' included (they tell which library made the request).
 */
export function listenerEvidence(
  socket: Socket,
  cause: LeakCause | undefined,
  locator: FunctionLocator,
  skipNodeModules: boolean,
): { listener?: ListenerEvidence; located: Location[] } {
  let event: ListenerEvidence['event'];
  // Each candidate function with its description, in the order they are preferred.
  const candidates: Array<{ fn: unknown; what: string }> = [];
  const handedTo = cause?.code === 'upgrade-not-closed' ? 'upgrade' : cause?.code === 'connect-not-closed' ? 'connect' : cause?.code === 'ended-unread' ? handedOverTo(socket) : undefined;
  if (handedTo) {
    event = handedTo;
    for (const fn of serverOf(socket)?.listeners(event) ?? []) candidates.push({ fn, what: `the server's '${event}' listener` });
  } else if (cause !== undefined && (cause.code === 'unread-http-response' || cause.code.startsWith('unread-') || cause.code === 'proxy-response-abandoned')) {
    event = 'response';
    // The callback goes once the response arrived (http.get's is a once listener); listeners on the response stay.
    const request = httpRequestOf(socket);
    for (const fn of request?.listeners?.('response') ?? []) candidates.push({ fn, what: "the request's 'response' callback" });
    // The callback once() dropped as the response arrived, kept as the request was made.
    if (request) for (const fn of keptResponseHandlers(request)) candidates.push({ fn, what: "the request's 'response' callback" });
    const response = httpResponseOf(socket) as { listeners?(event: string): unknown[] } | null | undefined;
    for (const name of RESPONSE_EVENTS) {
      for (const fn of response?.listeners?.(name) ?? []) candidates.push({ fn, what: `a '${name}' listener on the response` });
    }
  } else {
    const accepted = acceptedBy(socket);
    if (!accepted) return { located: [] };
    event = accepted;
    for (const fn of serverOf(socket)?.listeners(event) ?? []) candidates.push({ fn, what: `the server's '${event}' listener` });
  }
  if (candidates.length === 0) return { located: [] };
  const found = locator.locate(candidates.map((candidate) => candidate.fn));
  const located = found.filter((location): location is Location => location !== null);
  const index = found.findIndex((location) => location !== null && isProgramCode(location, skipNodeModules));
  if (index < 0) return { located };
  const fn = candidates[index]!.fn;
  const routesWebSockets = event !== 'response' && typeof fn === 'function' && Function.prototype.toString.call(fn).includes('handleUpgrade');
  return { listener: { event, what: candidates[index]!.what, location: found[index]!, ...(routesWebSockets ? { routesWebSockets: true as const } : {}) }, located };
}
