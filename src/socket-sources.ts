import * as diagnosticsChannel from 'node:diagnostics_channel';
import { Socket, type Server } from 'node:net';
import type { SocketRegistry } from './registry';
import { captureStack, type StackCapture } from './stack';
import { connectAnnouncesEverySocket, TlsCreationStacks } from './tls-creation-stacks';

type Listener = (message: unknown) => void;

/**
 * Sees every TCP socket the process creates or accepts, through Node's own
 * diagnostics channels, and hands each to the registry with where it came from.
 *
 * - net.client.socket: a connecting socket, announced synchronously inside the
 *   caller's net.connect (and tls.connect on newer Node), so its stack reaches user code.
 * - net.server.socket: an accepted socket; attributed to its server's listen() call.
 * - tracing:net.server.listen:asyncStart: published inside listen(), where the
 *   stack still holds the caller.
 * - http.client.request.start, undici:client:connected: sockets that no channel
 *   announced (TLS on Node 20); they claim the stack the TLS hook kept.
 *
 * A subscriber that throws would surface as an uncaught exception in the host,
 * so every handler is guarded.
 */
export class SocketSources {
  private readonly listenStacks = new WeakMap<Server, StackCapture>();
  private readonly tls: TlsCreationStacks;
  private readonly subscriptions: Array<[string, Listener]> = [];

  constructor(
    private readonly registry: SocketRegistry,
    private readonly stackDepth: number,
    private readonly onInternalError: (error: unknown) => void,
  ) {
    this.tls = new TlsCreationStacks(stackDepth);
  }

  subscribe(): void {
    if (this.subscriptions.length > 0) return;
    if (!connectAnnouncesEverySocket()) this.tls.enable();
    this.on('net.client.socket', (message) => this.onClientSocket(message));
    this.on('net.server.socket', (message) => this.onServerSocket(message));
    this.on('tracing:net.server.listen:asyncStart', (message) => this.onListen(message));
    this.on('http.client.request.start', (message) => this.adoptClientSocket((message as { request?: { socket?: unknown } }).request?.socket));
    this.on('undici:client:connected', (message) => this.onUndiciSocket((message as { socket?: unknown }).socket));
  }

  unsubscribe(): void {
    for (const [name, listener] of this.subscriptions) diagnosticsChannel.unsubscribe(name, listener);
    this.subscriptions.length = 0;
    this.tls.disable();
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
    if (!(socket instanceof Socket) || this.registry.has(socket)) return;
    this.registry.track(socket, 'client', captureStack(this.stackDepth));
  }

  private onServerSocket(message: unknown): void {
    const socket = (message as { socket?: unknown }).socket;
    if (!(socket instanceof Socket)) return;
    const server = (socket as unknown as { server?: Server }).server;
    this.registry.track(socket, 'server', server ? this.listenStacks.get(server) : undefined);
  }

  private onListen(message: unknown): void {
    const server = (message as { server?: Server }).server;
    if (server && !this.listenStacks.has(server)) this.listenStacks.set(server, captureStack(this.stackDepth));
  }

  private onUndiciSocket(socket: unknown): void {
    this.adoptClientSocket(socket);
    const record = socket instanceof Socket ? this.registry.recordOf(socket) : undefined;
    if (record) record.client = 'fetch';
  }

  private adoptClientSocket(socket: unknown): void {
    if (!(socket instanceof Socket) || this.registry.has(socket)) return;
    const handle = (socket as unknown as { _handle?: object | null })._handle;
    this.registry.track(socket, 'client', this.tls.take(handle));
  }
}
