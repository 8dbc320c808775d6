import * as diagnosticsChannel from 'node:diagnostics_channel';
import { NODE_CHANNELS } from '../common/channels';
import { executionAsyncResource } from 'node:async_hooks';
import { parentOf, requestBeingServed, serverOf } from '../common/node-internals';
import { activeSpanContext, type SpanContext } from '../common/opentelemetry';
import { Socket, type Server } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import type { SocketRecord, SocketRegistry } from '../remembered/registry';
import { nextUse, type RequestUse } from './request-uses';
import { captureStack, type StackCapture } from '../common/stack';
import type { StackPolicy } from './stack-policy';
import type { CheckClock } from '../common/clock';

type Listener = (message: unknown) => void;

/** What the agent's other checks want to hear of as sockets appear. */
export interface SourceHooks {
  /** A client socket was tracked (with or without a creation stack). */
  clientTracked?(socket: Socket, record: SocketRecord): void;
  /** A server is listening; its listen() stack, when captured. */
  listening?(server: Server, listenStack: StackCapture | undefined): void;
}
interface HttpRequest {
  socket?: unknown;
  method?: string;
  protocol?: string;
  host?: string;
  path?: string;
  getHeader?(name: string): unknown;
}
interface UndiciSend {
  request?: { method?: string; origin?: unknown; path?: string; headers?: unknown };
  socket?: unknown;
}

/** fetch() sends the Fetch standard's headers (sec-fetch-mode among them); undici's request() and stream() do not. */
function sentByFetch(headers: unknown): boolean {
  return Array.isArray(headers) ? headers.includes('sec-fetch-mode') : typeof headers === 'string' && headers.includes('sec-fetch-mode');
}

/** Where an http request goes: its Host header, which carries the port when it is not the default (`host` alone does not). */
function hostOf(request: HttpRequest): string | undefined {
  const header = request.getHeader?.('host');
  return typeof header === 'string' ? header : request.host;
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
 * - http.client.request.start, undici:client:connected: sockets that no channel
 *   announced (sockets older than start()), tracked without a creation stack.
 *
 * A subscriber that throws would surface as an uncaught exception in the host,
 * so every handler is guarded.
 */
export class SocketSources {
  private readonly listenStacks = new WeakMap<Server, StackCapture>();
  // The caller of each request, captured when it was made; joined to the socket when one is assigned.
  private readonly requestCallers = new WeakMap<object, StackCapture>();
  // The incoming request being served when each request was made, when there was one.
  private readonly requestsServed = new WeakMap<object, NonNullable<RequestUse['served']>>();
  // The OpenTelemetry span active when each request was made, when the application traces.
  private readonly requestSpans = new WeakMap<object, SpanContext>();
  // Whether any request was made while serving one, or inside a span: until then, nothing to look up.
  private anyServed = false;
  private anySpan = false;
  // Whether this process has a server: until it has, no request can be made while serving one.
  // (A server listening since before start() counts from its first connection accepted after it.)
  private serves = false;
  // Callers captured and not yet joined to a socket: while none is, a request's lookup is skipped.
  // (A request that never gets a socket leaves its count behind: later lookups are then made, as
  // they all used to be.)
  private callersPending = 0;
  private readonly subscriptions: Array<[string, Listener]> = [];
  // TLS servers whose handshakes are followed, to join each accepted socket to its TLS socket.
  private readonly tlsServers = new WeakSet<Server>();
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
  ) {}

  subscribe(): void {
    if (this.subscriptions.length > 0) return;
    this.on(NODE_CHANNELS.clientSocket, (message) => this.onClientSocket(message));
    this.on(NODE_CHANNELS.serverSocket, (message) => this.onServerSocket(message));
    this.on(NODE_CHANNELS.listenStart, (message) => this.onListen(message));
    if (this.hooks.listening) {
      // Bound by now: the port is known.
      this.on(NODE_CHANNELS.listenEnd, (message) => {
        const server = (message as { server?: Server }).server;
        if (server) this.hooks.listening!(server, this.listenStacks.get(server));
      });
    }
    // Published inside the caller's http.request(), where the stack still holds the caller.
    this.on(NODE_CHANNELS.httpRequestCreated, (message) => this.onRequestMade((message as { request?: HttpRequest }).request));
    this.on(NODE_CHANNELS.httpRequestStart, (message) => this.onHttpRequestStart((message as { request?: HttpRequest }).request));
    this.on(NODE_CHANNELS.undiciRequestCreate, (message) => this.onRequestMade((message as { request?: { origin?: unknown } }).request));
    this.on(NODE_CHANNELS.undiciConnected, (message) => this.onUndiciSocket((message as { socket?: unknown }).socket));
    this.on(NODE_CHANNELS.undiciSendHeaders, (message) => this.onUndiciSend(message as UndiciSend));
  }

  unsubscribe(): void {
    for (const [name, listener] of this.subscriptions) diagnosticsChannel.unsubscribe(name, listener);
    this.subscriptions.length = 0;
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
    // track() returns nothing for a socket already tracked: one lookup, not two.
    if (!(socket instanceof Socket)) return;
    const record = this.registry.track(socket, 'client', this.stacks.forSocket());
    if (record && this.hooks.clientTracked) this.hooks.clientTracked(socket, record);
  }

  private onServerSocket(message: unknown): void {
    const socket = (message as { socket?: unknown }).socket;
    if (!(socket instanceof Socket)) return;
    const server = serverOf(socket);
    this.serves = true;
    const record = this.registry.track(socket, 'server', server ? this.listenStacks.get(server) : undefined);
    if (record && server instanceof TlsServer) record.reader = null;
  }

  private onListen(message: unknown): void {
    const server = (message as { server?: Server }).server;
    this.serves = true;
    // One stack per server, whatever the sampling: every socket it accepts shares it.
    if (server && !this.listenStacks.has(server) && this.stacks.level !== 'off') {
      this.listenStacks.set(server, captureStack(this.stacks.depth));
    }
    // One listener per TLS server: each handshake joins the accepted socket to the TLS socket reading it.
    if (server instanceof TlsServer && !this.tlsServers.has(server)) {
      this.tlsServers.add(server);
      server.on('secureConnection', this.onSecureConnection);
    }
  }

  private onRequestMade(request: (HttpRequest & { origin?: unknown }) | undefined): void {
    if (!request) return;
    const caller = this.stacks.forRequest(typeof request.origin === 'string' ? request.origin : hostOf(request));
    if (caller) {
      this.requestCallers.set(request, caller);
      this.callersPending++;
    }
    const span = activeSpanContext();
    if (span) {
      this.requestSpans.set(request, span);
      this.anySpan = true;
    }
    // One property read when the request is made outside a server's handler: the usual case.
    const served = this.serves ? requestBeingServed(executionAsyncResource()) : undefined;
    if (served) {
      const server = serverOf(served.socket);
      this.requestsServed.set(request, { method: served.method ?? 'GET', url: served.url ?? '/', listen: server ? this.listenStacks.get(server) : undefined });
      this.anyServed = true;
    }
  }

  private onHttpRequestStart(request: HttpRequest | undefined): void {
    const socket = request?.socket;
    if (!(socket instanceof Socket)) return;
    const record = this.registry.recordOf(socket) ?? this.adoptClientSocket(socket);
    if (!record) return;
    // Without a caller captured when the request was made (not sampled), the socket's first
    // request is the one it was created for, so its creation stack holds the caller.
    const caller = this.takeCaller(request!) ?? (record.uses === undefined ? record.creation : undefined);
    // Raw pieces only: the URL is built and redacted when a report needs it.
    const use = nextUse(record);
    use.method = request!.method ?? 'GET';
    use.origin = undefined;
    use.protocol = request!.protocol;
    use.host = hostOf(request!);
    use.path = request!.path ?? '/';
    use.caller = caller;
    this.complete(use, request!);
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
    use.caller = this.takeCaller(request);
    this.complete(use, request);
  }

  /** Completes `use` with what was going on when the request was made (the request served, the span), and when. */
  private complete(use: RequestUse, request: object): void {
    use.served = this.anyServed ? this.requestsServed.get(request) : undefined;
    use.trace = this.anySpan ? this.requestSpans.get(request) : undefined;
    use.at = this.clock.now;
  }

  /** The caller captured when `request` was made, if one was: looked up only while any is pending. */
  private takeCaller(request: object): StackCapture | undefined {
    if (this.callersPending === 0) return undefined;
    const caller = this.requestCallers.get(request);
    if (caller !== undefined) {
      this.requestCallers.delete(request);
      this.callersPending--;
    }
    return caller;
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
