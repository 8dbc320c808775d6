import type { Server, Socket } from 'node:net';

/**
 * The one place that reads Node's private fields of a socket. They are not
 * public API, so every reader goes through here: a Node release that renames
 * one is fixed in one file. Each read tolerates the field being absent.
 */
interface Internals {
  /** The libuv handle: `reading` while Node reads it, `fd` once open; null once closed. */
  _handle?: { reading?: boolean; fd?: unknown; getAsyncId?(): number } | null;
  _readableState?: { ended?: boolean; endEmitted?: boolean; length?: number; flowing?: boolean | null };
  /** The HTTP parser bound to the socket (client and server); `incoming` is the message it feeds. */
  parser?: { incoming?: { readableLength?: number } | null } | null;
  /** A client socket's request (its `res`), or a server socket's response. */
  _httpMessage?: { res?: { complete?: boolean; readableFlowing?: boolean | null; readableLength?: number } | null } | null;
  /** The server that accepted the socket. */
  server?: Server | null;
  /** A TLS socket's underlying socket, whose stream it reads. */
  _parent?: unknown;
}

const internals = (socket: Socket) => socket as unknown as Internals;

/** The socket's libuv handle (its `fd`, whether Node is reading it), or null/undefined once closed. */
export function handleOf(socket: Socket): Internals['_handle'] {
  return internals(socket)._handle;
}

/**
 * The async id of the socket's libuv handle, given when the handle was made (as a connection was
 * accepted, for an accepted socket): ids only grow, so it orders sockets by when they were made.
 * -1 without a handle.
 */
export function handleAsyncIdOf(socket: Socket): number {
  const id = internals(socket)._handle?.getAsyncId?.();
  return typeof id === 'number' ? id : -1;
}

/**
 * The objects owning the libuv handles that keep the event loop alive (sockets, servers, timers'
 * owners): `process._getActiveHandles()`, undocumented but in every supported Node. A handle the
 * program unref'd is not among them. Undefined where Node no longer has it.
 */
export const activeHandles: (() => unknown[]) | undefined = (() => {
  const get = (process as { _getActiveHandles?: () => unknown[] })._getActiveHandles;
  return typeof get === 'function' ? () => get.call(process) : undefined;
})();

/** Node is reading the handle (not paused, not stopped by backpressure). */
export function isReading(socket: Socket): boolean {
  return internals(socket)._handle?.reading === true;
}

/** The readable side's state: EOF read (`ended`), 'end' delivered (`endEmitted`), bytes buffered, flowing. */
export function readableStateOf(socket: Socket): NonNullable<Internals['_readableState']> {
  return internals(socket)._readableState ?? {};
}

/** Whether Node has read the EOF: true, false, or undefined when the stream does not say. */
export function eofRead(socket: Socket): boolean | undefined {
  return internals(socket)._readableState?.ended;
}

/** The HTTP parser bound to the socket: undefined when there never was one, null once an http server let go of it. */
export function httpParserOf(socket: Socket): Internals['parser'] {
  return internals(socket).parser;
}

/** The parts of an http.ClientRequest the agent reads. */
export interface ClientRequestLike {
  method?: string;
  protocol?: string;
  host?: string;
  path?: string;
  getHeader?(name: string): unknown;
  listeners?(event: string): unknown[];
  /** Set just before http hands the socket to this request's 'upgrade' or 'connect' listener. */
  upgradeOrConnect?: boolean;
}

/** Where the functions a request was handed for its response are kept (see keepResponseHandlers). */
const RESPONSE_HANDLERS = Symbol('tcp-leak-agent.responseHandlers');

/**
 * Keeps, on the request itself, the functions it holds for its 'response' event as it is made
 * (http.get(url, callback) registers the callback with once(), which drops it as the response
 * arrives, before any report could read it): one field store, no copy, no stack. They live as
 * long as the request does: while its socket holds it, and while the program keeps it.
 */
export function keepResponseHandlers(request: object): void {
  const handlers = (request as { _events?: Record<string, unknown> })._events?.response;
  // Several listeners are kept in an array that removeListener() splices in place: copied then.
  if (handlers !== undefined) (request as Record<symbol, unknown>)[RESPONSE_HANDLERS] = Array.isArray(handlers) ? handlers.slice() : handlers;
}

/** The functions kept by keepResponseHandlers, unwrapped from once()'s wrapper. */
export function keptResponseHandlers(request: object): unknown[] {
  const kept = (request as Record<symbol, unknown>)[RESPONSE_HANDLERS];
  const list = Array.isArray(kept) ? kept : kept === undefined ? [] : [kept];
  return list.map((fn) => (fn as { listener?: unknown }).listener ?? fn);
}

/**
 * A client socket's current request (an http.ClientRequest), if any: set while a request is in
 * flight and until its response has been read; null once http let go of the socket (back in a
 * pool, or handed to an 'upgrade' / 'connect' listener); undefined on a socket http never used.
 */
export function httpRequestOf(socket: Socket): ClientRequestLike | null | undefined {
  return internals(socket)._httpMessage as ClientRequestLike | null | undefined;
}

/** The response of a client socket's current request, if any. */
export function httpResponseOf(socket: Socket): NonNullable<Internals['_httpMessage']>['res'] {
  return internals(socket)._httpMessage?.res;
}

/** The socket a TLS socket reads its stream from, if any. */
export function parentOf(socket: Socket): unknown {
  return internals(socket)._parent;
}

/**
 * The request an http server is serving in this synchronous turn, if any: the async resource of
 * a server's request handler ('HTTPINCOMINGMESSAGE') holds its socket, whose current response
 * holds the request. Code running later (after an await, in a callback) has other resources.
 */
export function requestBeingServed(resource: unknown): { method?: string; url?: string; socket: Socket } | undefined {
  const served = resource as { type?: unknown; socket?: Socket & { _httpMessage?: { req?: { method?: string; url?: string } } | null } } | undefined;
  if (served?.type !== 'HTTPINCOMINGMESSAGE' || !served.socket) return undefined;
  const request = served.socket._httpMessage?.req;
  return request ? { method: request.method, url: request.url, socket: served.socket } : undefined;
}

/** The server that accepted the socket (server sockets only). */
export function serverOf(socket: Socket): Server | null | undefined {
  return internals(socket).server;
}

/**
 * Whether the program (or anything in the process) has loaded the built-in module `name`, read from
 * `process.moduleLoadList`: the agent looks at tls and https only when they are there, and does
 * not load them itself (tls and the crypto it brings are a good part of a preload's cost).
 */
export function builtinLoaded(name: string): boolean {
  return (process as { moduleLoadList?: string[] }).moduleLoadList?.includes(`NativeModule ${name}`) === true;
}

// tls.Server, once tls is loaded: until then no server can be a TLS server.
let tlsServerClass: (new (...args: never[]) => unknown) | undefined;

/** Whether `server` is a TLS server (https ones are), without loading tls where the program has not. */
export function isTlsServer(server: unknown): boolean {
  if (tlsServerClass === undefined) {
    if (!builtinLoaded('tls')) return false;
    tlsServerClass = (require('node:tls') as typeof import('node:tls')).Server;
  }
  return server instanceof tlsServerClass;
}

/** Whether `server` is an http or https server (the servers that hand sockets to 'upgrade' / 'connect'), loading neither. */
export function isHttpServer(server: unknown): boolean {
  if (builtinLoaded('http') && server instanceof (require('node:http') as typeof import('node:http')).Server) return true;
  return builtinLoaded('https') && server instanceof (require('node:https') as typeof import('node:https')).Server;
}
