import * as diagnosticsChannel from 'node:diagnostics_channel';

/**
 * Every diagnostics channel the agent listens to or publishes on, by name.
 * Names, not Node versions, decide what is there: a channel a Node version
 * lacks simply never publishes.
 */

/** Node's and undici's channels the agent listens to (see seen/socket-sources.ts). */
export const NODE_CHANNELS = {
  /** A connecting socket, inside the caller's net.connect / tls.connect: `{ socket }`. */
  clientSocket: 'net.client.socket',
  /** An accepted socket: `{ socket }` (the raw socket under a TLS server). */
  serverSocket: 'net.server.socket',
  /** Inside listen(), where the stack still holds the caller: `{ server }`. */
  listenStart: 'tracing:net.server.listen:asyncStart',
  /** Once bound (the port is known): `{ server }`. */
  listenEnd: 'tracing:net.server.listen:asyncEnd',
  /** An http server starts a request, just before its 'request' event, in the same turn: `{ request, response, socket, server }`. */
  httpServerRequestStart: 'http.server.request.start',
  /** Inside the caller's http.request(): `{ request }`. */
  httpRequestCreated: 'http.client.request.created',
  /** Inside the caller's fetch() / undici call: `{ request }`. */
  undiciRequestCreate: 'undici:request:create',
  /** A connection undici opened: `{ socket }` (the only one that carries https sockets on every version). */
  undiciConnected: 'undici:client:connected',
  /** A request written on a socket: `{ request, socket }`. */
  undiciSendHeaders: 'undici:client:sendHeaders',
  /** A ChildProcess is created (before it spawns): `{ process }` (see cli/spawned-children.ts). */
  childProcess: 'child_process',
} as const;

/** The channels the agent publishes on. */
export const AGENT_CHANNELS = {
  /** Every leak reported: `{ leak }`. */
  leak: 'tcp-leak-agent:leak',
  /** Every notice told (descriptor pressure, TIME_WAIT, a dump, a destroyed socket): `{ notice }`. */
  notice: 'tcp-leak-agent:notice',
  /**
   * After each periodic scan: `{ sockets, leaks, followed }` (counts; `followed`: client sockets
   * followed for TIME_WAIT since start). Lets tests and tools wait for a scan.
   */
  scan: 'tcp-leak-agent:scan',
} as const;

/** BroadcastChannel names shared between the threads of one process. */
export const THREAD_CHANNELS = {
  /** procfs backend: each worker's tracked descriptors, so the main thread does not call them untracked. */
  trackedDescriptors: 'tcp-leak-agent:tracked',
} as const;

/** Every leak the agent reports is also published here, as `{ leak }`. */
export const leakChannel = diagnosticsChannel.channel(AGENT_CHANNELS.leak);
/** Every notice the agent tells is also published here, as `{ notice }`. */
export const noticeChannel = diagnosticsChannel.channel(AGENT_CHANNELS.notice);
/** After each periodic scan: `{ sockets, leaks, followed }`. */
export const scanChannel = diagnosticsChannel.channel(AGENT_CHANNELS.scan);
