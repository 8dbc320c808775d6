import { createHook, type AsyncHook } from 'node:async_hooks';
import * as diagnosticsChannel from 'node:diagnostics_channel';
import * as net from 'node:net';
import type { StackCapture } from './stack';
import type { StackPolicy } from './stack-policy';

/**
 * Does this Node announce every connecting socket, TLS ones included, on
 * 'net.client.socket'? Newer Node publishes from Socket.prototype.connect
 * (so tls.connect is covered); Node 20 publishes only from net.connect(), so
 * tls.connect, https.get and https fetch() go unannounced.
 *
 * Probed by behaviour, not version: connect() with no arguments on a socket
 * that has no handle publishes first (where it publishes at all) and then
 * throws ERR_MISSING_ARGS, without creating a handle or touching the network.
 */
export function connectAnnouncesEverySocket(): boolean {
  const channel = diagnosticsChannel.channel('net.client.socket');
  let announced = false;
  const listener = () => {
    announced = true;
  };
  channel.subscribe(listener);
  try {
    (new net.Socket() as unknown as { connect(): void }).connect();
  } catch {
    // Expected: ERR_MISSING_ARGS.
  } finally {
    channel.unsubscribe(listener);
  }
  return announced;
}

/**
 * Fills the Node 20 gap for TLS client sockets: an async_hooks init hook sees
 * each TLSWRAP handle created, synchronously inside the caller's tls.connect /
 * https.get / fetch() call, so the stack captured there reaches user code.
 * The socket itself shows up later (http.client.request.start,
 * undici:client:connected) and claims its stack by handle.
 *
 * Costs: an init hook turns on V8 promise hooks for every promise, so this is
 * enabled only where the probe above says the channel is missing. The handle
 * is never read inside the hook: reading `resource.fd` there crashes Node.
 */
export class TlsCreationStacks {
  private readonly stacks = new WeakMap<object, StackCapture>();
  private hook: AsyncHook | undefined;

  constructor(private readonly policy: StackPolicy) {}

  enable(): void {
    if (this.hook) return;
    this.hook = createHook({
      init: (_id, type, _trigger, resource) => {
        if (type !== 'TLSWRAP') return;
        const stack = this.policy.capture();
        if (stack) this.stacks.set(resource as object, stack);
      },
    }).enable();
  }

  disable(): void {
    this.hook?.disable();
    this.hook = undefined;
  }

  /** The stack captured when `handle` was created, if the hook saw it. */
  take(handle: object | null | undefined): StackCapture | undefined {
    if (!handle) return undefined;
    const stack = this.stacks.get(handle);
    if (stack) this.stacks.delete(handle);
    return stack;
  }
}
