import * as diagnosticsChannel from 'node:diagnostics_channel';
import { NODE_CHANNELS } from '../common/channels';
import { activeHandles, builtinLoaded, httpRequestOf, isTlsServer, keepResponseHandlers, parentOf, serverOf, type ClientRequestLike } from '../common/node-internals';
import { activeSpanContext } from '../common/opentelemetry';
import { Socket, type Server } from 'node:net';
import type { SocketRecord, SocketRegistry } from '../remembered/registry';
import { hostOf, httpUse, nextUse, type RequestMade, type RequestUse } from './request-uses';
import { ServedRequests } from './served-requests';
import { SocketsFoundLater } from './sockets-found-later';
import { realNow } from '../common/real-time';
import { captureStack, type StackCapture } from '../common/stack';
import { socketListener } from '../common/socket-listener';
import type { StackPolicy } from './stack-policy';
import type { CheckClock } from '../common/clock';

type Listener = (message: unknown) => void;

/** What the agent's other checks want to hear of as sockets appear. */
export interface SourceHooks {
  /** Whether to follow the next client socket (see followClient): 0 for no, else one in how many are. */
  followsClient?(): number;
  /**
   * A client socket to follow, one in `oneIn` of those seen, with its creation stack when one was
   * captured; `usedForHttp` says, when asked later, whether it carried HTTP requests.
   */
  followClient?(socket: Socket, oneIn: number, creation: StackCapture | undefined, usedForHttp: (socket: Socket) => boolean): void;
  /** A server is listening; its listen() stack, when captured. */
  listening?(server: Server, listenStack: StackCapture | undefined): void;
}
/** What is known of a server: its listen() stack, whether it is a TLS one, whether its handshakes are followed. */
interface ServerSeen {
  listenStack: StackCapture | undefined;
  tls: boolean;
  handshakesFollowed: boolean;
}
interface UndiciSend {
  request?: { method?: string; origin?: unknown; path?: string; headers?: unknown };
  socket?: unknown;
}

/** fetch() sends the Fetch standard's headers (sec-fetch-mode among them); undici's request() and stream() do not. */
function sentByFetch(headers: unknown): boolean {
  return Array.isArray(headers) ? headers.includes('sec-fetch-mode') : typeof headers === 'string' && headers.includes('sec-fetch-mode');
}

/**
 * Sees every TCP socket the process creates or accepts, through Node's own
 * diagnostics channels, and hands each to the registry with where it came from.
 *
 * - net.client.socket: a connecting socket, announced synchronously inside the
 *   caller's net.connect or tls.connect, so its stack reaches user code.
 * - net.server.socket: an accepted socket; attributed to its server's listen() call.
 * - tracing:net.server.listen:asyncStart: published inside listen(), where the
 *   stack still holds the caller.
 * - http.server.request.start: a server starts a request; its response is carried
 *   through the handler's async code, so a client request made there names the
 *   endpoint being served (see ServedRequests).
 * - http.client.request.created, undici:request:create: inside the caller's
 *   request call, where its stack is captured (when sampled).
 * - undici:client:sendHeaders: each undici request as it is written, on its socket.
 *   An http request is read from its socket when a report needs it instead
 *   (http.client.request.start is not listened to: nothing runs at dispatch).
 * - undici:client:connected, and the global http(s) agents' pools at start():
 *   sockets that no channel announced (older than start()), tracked without a
 *   creation stack.
 *
 * A subscriber that throws would surface as an uncaught exception in the host,
 * so every handler is guarded.
 */
export class SocketSources {
  // Each server once: one lookup per accepted socket says its listen() stack and whether it is TLS.
  private readonly servers = new WeakMap<Server, ServerSeen>();
  // What was noted as each request was made (see RequestMade), kept only when there was something.
  // Weak by request: an entry lasts as long as its request, which its socket holds while in flight.
  private readonly made = new WeakMap<object, RequestMade>();
  // Whether this process has a server: until it has, no request can be made while serving one.
  // (A server listening since before start() counts from its first connection accepted after it.)
  private serving = false;
  // Which request a server is serving where a client request is made, through async code too.
  private readonly served = new ServedRequests();
  // undici requests noted and not yet sent: while none is, a send's lookup is skipped. (A request
  // never sent leaves its count behind: later lookups are then made, as they all used to be.)
  private undiciPending = 0;
  private readonly subscriptions: Array<[string, Listener]> = [];
  // The sockets plain servers accept (and client sockets, at stacks "off"), found at scans (see
  // SocketsFoundLater); undefined where each is noted as it comes (stacks "all", or Node cannot
  // list its handles).
  private foundLater: SocketsFoundLater | undefined;
  /**
   * At stacks "off": client sockets are found at scans too (see SocketsFoundLater), only counted as
   * they are made. What is noted of each request stays (its response callback, its trace, the
   * request being served: no stack at that level), so a report says what it said before; the
   * moment a socket was made is then a window.
   * Why: at "off" nothing of a client socket is worth noting as it is made; measured out of
   * process, a keep-alive client pays about 2 points less at "off" than at "sampled", a
   * new-connection one the same (docs/figures.md).
   */
  private clientsFoundLater = false;
  // Once a TLS server is known, every accepted socket is noted as it comes (see onServerSocket).
  private tlsServerKnown = false;
  // One function for every socket, so unsubscribe() can take it back.
  private readonly onAgentRemove = socketListener((socket) => this.noteHandover(socket));
  // A TLS server's handshakes are followed, to join each accepted socket to its TLS socket.
  private readonly onSecureConnection = (tlsSocket: Socket) => {
    const raw = parentOf(tlsSocket);
    const record = raw instanceof Socket ? this.registry.recordOf(raw) : undefined;
    if (record) record.reader = tlsSocket;
  };

  constructor(
    private readonly registry: SocketRegistry,
    private readonly stacks: StackPolicy,
    private readonly onInternalError: (error: unknown) => void,
    private readonly clock: CheckClock,
    private readonly hooks: SourceHooks = {},
    /** The longest pause between periodic looks for accepted sockets (see SocketsFoundLater). */
    private readonly longestFindPauseMs = 20_000,
  ) {}

  subscribe(): void {
    if (this.subscriptions.length > 0) return;
    // Where every stack is asked for (test runs, the CLI), each accepted socket is noted as it comes.
    if (this.stacks.level !== 'all' && SocketsFoundLater.available()) {
      this.foundLater = new SocketsFoundLater(this.registry, (server) => this.serverSeen(server), this.longestFindPauseMs, realNow());
      this.clientsFoundLater = this.stacks.level === 'off';
      // A TLS server listening since before start(): its sockets must be noted as they come.
      for (const handle of activeHandles!()) if (isTlsServer(handle)) this.serverSeen(handle as Server);
    }
    this.on(NODE_CHANNELS.clientSocket, (message) => this.onClientSocket(message));
    this.on(NODE_CHANNELS.serverSocket, (message) => this.onServerSocket(message));
    this.on(NODE_CHANNELS.listenStart, (message) => this.onListen(message));
    // Where precision is worth microseconds (stacks: "all": test runs, the CLI), from the start.
    if (this.stacks.level === 'all') this.followServedRequests();
    if (this.hooks.listening) {
      // Bound by now: the port is known.
      this.on(NODE_CHANNELS.listenEnd, (message) => {
        const server = (message as { server?: Server }).server;
        if (server) this.hooks.listening!(server, this.servers.get(server)?.listenStack);
      });
    }
    // Published inside the caller's http.request(), where the stack still holds the caller.
    this.on(NODE_CHANNELS.httpRequestCreated, (message) => this.onRequestMade((message as { request?: ClientRequestLike }).request, false));
    this.on(NODE_CHANNELS.undiciRequestCreate, (message) => this.onRequestMade((message as { request?: { origin?: unknown } }).request, true));
    this.on(NODE_CHANNELS.undiciConnected, (message) => this.onUndiciSocket((message as { socket?: unknown }).socket));
    this.on(NODE_CHANNELS.undiciSendHeaders, (message) => this.onUndiciSend(message as UndiciSend));
    this.adoptPooledSockets();
  }

  /**
   * The global http and https agents' sockets, in use or pooled, from before start(): tracked now
   * (no creation stack), as no channel will announce them. (Other agents' sockets from then are
   * found among the process's descriptors.) Each is looked at only when the program has loaded it
   * (a preload, which runs first, finds neither).
   */
  private adoptPooledSockets(): void {
    const agents: unknown[] = [];
    if (builtinLoaded('http')) agents.push((require('node:http') as typeof import('node:http')).globalAgent);
    if (builtinLoaded('https')) agents.push((require('node:https') as typeof import('node:https')).globalAgent);
    for (const agent of agents) {
      const { sockets, freeSockets } = agent as { sockets?: Record<string, unknown[]>; freeSockets?: Record<string, unknown[]> };
      for (const pool of [sockets, freeSockets]) {
        for (const list of Object.values(pool ?? {})) for (const socket of list ?? []) this.adoptClientSocket(socket);
      }
    }
  }

  unsubscribe(): void {
    for (const [name, listener] of this.subscriptions) diagnosticsChannel.unsubscribe(name, listener);
    this.subscriptions.length = 0;
    for (const socket of this.registry.trackedSockets()) socket.removeListener('agentRemove', this.onAgentRemove);
    this.served.stop();
    this.foundLater = undefined;
    this.clientsFoundLater = false;
  }

  /**
   * Tracks the sockets plain servers accepted (and, at stacks "off", client sockets made) since the
   * last look (see SocketsFoundLater): before each look at the tracked sockets. `force`: a check or
   * the exit scan, which the budget of the periodic looks does not hold back.
   */
  findLater(now: number, force: boolean): void {
    this.foundLater?.find(now, force);
  }

  private on(name: string, handler: Listener): void {
    const listener: Listener = (message) => {
      try {
        handler(message);
      } catch (error) {
        this.onInternalError(error);
      }
    };
    diagnosticsChannel.subscribe(name, listener);
    this.subscriptions.push([name, listener]);
  }

  private onClientSocket(message: unknown): void {
    const socket = (message as { socket?: unknown }).socket;
    if (!(socket instanceof Socket)) return;
    const creation = this.stacks.forSocket();
    // Following for TIME_WAIT needs no record: its 4-tuple is read once it has connected.
    const oneIn = this.hooks.followsClient ? this.hooks.followsClient() : 0;
    if (oneIn > 0) this.hooks.followClient!(socket, oneIn, creation, this.usedForHttp);
    // Found at the next scan, if still open (see clientsFoundLater), unless a test is to be named.
    if (this.clientsFoundLater && this.registry.attribution === undefined) {
      this.foundLater!.made++;
      this.registry.seen++;
      return;
    }
    // Nothing to remember of it yet: tracked later if it is still open then (see the registry).
    if (creation === undefined && this.registry.attribution === undefined) {
      this.registry.defer(socket, 'client', undefined);
      return;
    }
    // track() returns nothing for a socket already tracked: one lookup, not two.
    const record = this.registry.track(socket, 'client', creation);
    if (record === undefined) return;
    // A creation stack names the request that opened the socket. Should http hand the socket to
    // a request's 'upgrade' or 'connect' listener, that request (a later one, on a pooled socket)
    // is noted then: http keeps no trace of it afterwards. Only where a line could be named.
    if (creation !== undefined) socket.once('agentRemove', this.onAgentRemove);
  }

  /**
   * http emits 'agentRemove' on a client socket just before it hands the socket to a request's
   * 'upgrade' or 'connect' listener, while the socket still holds that request: noted as its use.
   * (A pooled socket's error emits it too, with no request: nothing is noted then.)
   */
  private noteHandover(socket: Socket): void {
    try {
      const request = httpRequestOf(socket);
      const record = this.registry.recordOf(socket);
      if (!request?.upgradeOrConnect || typeof request.getHeader !== 'function' || record === undefined) return;
      record.handedTo = request.method === 'CONNECT' ? 'connect' : 'upgrade';
      record.uses = [httpUse(request, this.made.get(request), record)];
    } catch (error) {
      this.onInternalError(error);
    }
  }

  private onServerSocket(message: unknown): void {
    this.serving = true;
    // Found at the next scan, if still open (see SocketsFoundLater), unless a test is to be named.
    const later = this.foundLater;
    if (later !== undefined && !this.tlsServerKnown && this.registry.attribution === undefined) {
      later.accepted++;
      this.registry.seen++;
      return;
    }
    const socket = (message as { socket?: unknown }).socket;
    if (!(socket instanceof Socket)) return;
    const server = serverOf(socket);
    const seen = server ? this.serverSeen(server) : undefined;
    const listenStack = seen?.listenStack;
    // A TLS server's socket needs its record now (see onSecureConnection); a test's, its name.
    if (seen?.tls !== true && this.registry.attribution === undefined) {
      this.registry.defer(socket, 'server', listenStack);
      return;
    }
    const record = this.registry.track(socket, 'server', listenStack);
    if (record && seen?.tls === true) record.reader = null;
  }

  private onListen(message: unknown): void {
    const server = (message as { server?: Server }).server;
    this.serving = true;
    if (!server) return;
    const seen = this.serverSeen(server);
    // One stack per server, whatever the sampling: every socket it accepts shares it.
    if (seen.listenStack === undefined && this.stacks.level !== 'off') seen.listenStack = captureStack(this.stacks.depth);
    // One listener per TLS server: each handshake joins the accepted socket to the TLS socket reading it.
    if (seen.tls && !seen.handshakesFollowed) {
      seen.handshakesFollowed = true;
      server.on('secureConnection', this.onSecureConnection);
    }
  }

  /** What is known of a server, noted the first time it listens or accepts a socket (one listening since before start()). */
  private serverSeen(server: Server): ServerSeen {
    let seen = this.servers.get(server);
    if (seen === undefined) {
      seen = { listenStack: undefined, tls: isTlsServer(server), handshakesFollowed: false };
      this.servers.set(server, seen);
      // Its sockets, and every server's from now on, are noted as accepted (see SocketsFoundLater).
      if (seen.tls) this.tlsServerKnown = true;
    }
    return seen;
  }

  /** Whether a client socket carried HTTP requests: http's request on it, or undici's noted. */
  private readonly usedForHttp = (socket: Socket): boolean => httpRequestOf(socket) !== undefined || this.registry.peek(socket)?.uses !== undefined;

  /** Whether this process has a server. */
  get serves(): boolean {
    return this.serving;
  }

  /**
   * Follows the request each server is serving through its handler's async code (see
   * ServedRequests). Entering it costs every request served about 2 µs here (4-5% of a minimal
   * keep-alive server's CPU), so out of test runs it starts only once a leak was told whose
   * request's endpoint was not found, as stacks are hunted: the next one names it.
   */
  followServedRequests(): void {
    if (this.subscriptions.length === 0 || !this.served.follow()) return;
    this.on(NODE_CHANNELS.httpServerRequestStart, (message) => this.served.started((message as { response?: unknown }).response));
  }

  private onRequestMade(request: (ClientRequestLike & { origin?: unknown }) | undefined, undici: boolean): void {
    // The client socket tracked since the last request was made, if any: this request's own when
    // it connected one, as a request does inside its own call, before Node announces the request.
    const tracked = this.registry.takeLastClient();
    if (!request) return;
    // The response callback, evidence of where the response is handled when no stack names the caller.
    if (!undici) keepResponseHandlers(request);
    // (At stacks "off" no host is looked up: no stack is taken for any.)
    const caller = this.stacks.level === 'off' ? undefined : this.stacks.forRequest(typeof request.origin === 'string' ? request.origin : hostOf(request));
    const trace = activeSpanContext();
    // Nothing to look up in a process that serves nothing: the usual client.
    const being = this.serving ? this.served.current() : undefined;
    let served: RequestUse['served'];
    if (being) {
      const server = serverOf(being.socket);
      served = { method: being.method ?? 'GET', url: being.url ?? '/', listen: server ? this.servers.get(server)?.listenStack : undefined };
    }
    // The socket tracked in this call is this request's only if it connected one; a report checks
    // that the request on the socket is this one before its creation stack stands for the caller.
    const madeSocket = !undici && tracked?.creation !== undefined ? tracked : undefined;
    if (caller === undefined && trace === undefined && served === undefined && madeSocket === undefined) return;
    this.made.set(request, { caller, served, trace, madeSocket, at: this.clock.now });
    if (undici) this.undiciPending++;
  }

  /**
   * Notes on `record` the http request in flight on `socket`, if any, as its last use: read when
   * a report is made rather than as each request is dispatched. A socket http has let go of (back
   * in a pool, handed to an 'upgrade' listener) shows no request.
   */
  noteHttpUse(socket: Socket, record: SocketRecord): void {
    // (An accepted socket's _httpMessage is the server's response. A handed-over socket's use is noted already.)
    if (record.uses !== undefined || record.origin !== 'client') return;
    const request = httpRequestOf(socket);
    if (request && typeof request.getHeader === 'function') record.uses = [httpUse(request, this.made.get(request), record)];
  }

  /**
   * The stack of the caller of the request on `socket` (the one in flight, or the newest undici
   * one), when it was captured: where a socket with no creation stack was last put to use.
   */
  requestCaller(socket: Socket, record: SocketRecord): StackCapture | undefined {
    const undici = record.uses?.at(-1)?.caller;
    if (undici) return undici;
    const request = httpRequestOf(socket);
    return request ? this.made.get(request)?.caller : undefined;
  }

  private onUndiciSend(message: UndiciSend): void {
    const { request, socket } = message;
    if (!request || !(socket instanceof Socket)) return;
    const record = this.registry.recordOf(socket) ?? this.adoptClientSocket(socket);
    if (!record) return;
    record.client = sentByFetch(request.headers) ? 'fetch' : 'undici';
    const use = nextUse(record);
    use.method = request.method ?? 'GET';
    use.origin = request.origin ?? '';
    use.protocol = undefined;
    use.host = undefined;
    use.path = request.path ?? '/';
    // Looked up only while a noted undici request is unsent.
    const made = this.undiciPending > 0 ? this.made.get(request) : undefined;
    if (made !== undefined) {
      this.made.delete(request);
      this.undiciPending--;
    }
    use.caller = made?.caller;
    use.served = made?.served;
    use.trace = made?.trace;
    use.at = made?.at ?? this.clock.now;
  }

  private onUndiciSocket(socket: unknown): void {
    this.adoptClientSocket(socket);
    const record = socket instanceof Socket ? this.registry.recordOf(socket) : undefined;
    if (record) record.client = 'fetch';
  }

  /** Tracks a client socket no channel announced (sockets older than start()): no creation stack. */
  private adoptClientSocket(socket: unknown): SocketRecord | undefined {
    if (!(socket instanceof Socket) || this.registry.has(socket)) return undefined;
    return this.registry.track(socket, 'client', undefined);
  }
}
