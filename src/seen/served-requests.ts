import { AsyncLocalStorage, executionAsyncResource } from 'node:async_hooks';
import type { Socket } from 'node:net';
import { requestBeingServed } from '../common/node-internals';

/** The parts of an http.ServerResponse read here. */
interface ResponseLike {
  req?: { method?: string; url?: string; socket?: Socket | null };
  writableFinished?: boolean;
}

/** A request an http server is serving: its method, URL, and the socket it came on. */
export interface BeingServed {
  method?: string;
  url?: string;
  socket: Socket;
}

/**
 * Whether AsyncLocalStorage rides on AsyncContextFrame here (Node 24 and later, unless
 * --no-async-context-frame): entering a store then costs one small frame per request served,
 * and continuations carry it for free. (About 0.1 µs per enterWith in a loop, but about 2 µs per
 * request in a real keep-alive server, measured out of process: SocketSources.followServedRequests
 * says when it is paid.) The older implementation (Node 22) installs async hooks
 * that run for every promise the process makes, a cost no server should pay for a report's
 * detail: it is recognised by the methods only it has.
 */
export function carriedByContextFrames(): boolean {
  const prototype = AsyncLocalStorage.prototype as unknown as Record<string, unknown>;
  return typeof prototype._propagate !== 'function' && typeof prototype._enable !== 'function';
}

/**
 * Which request an http server is serving, wherever the code making a client request runs: in
 * the handler's own synchronous turn (its async resource says so), or after an `await` or in a
 * callback of that handler (gateways whose proxying runs in async code: express 5, koa, fastify,
 * http-proxy-middleware). For the second, the server's response is entered into an
 * AsyncLocalStorage as the server starts the request (`http.server.request.start`, published
 * just before the 'request' event, in the same turn), where context frames carry it.
 *
 * A request made once the response has finished (a job the handler left behind) is not taken
 * for one made while serving: "made while serving" would then say more than is known.
 */
export class ServedRequests {
  // Made once following starts (see follow()): until then a look costs one property read.
  private storage: AsyncLocalStorage<ResponseLike> | undefined;

  /**
   * Starts following served requests through async code. False when it already was, or where it
   * would cost every promise (see carriedByContextFrames): then nothing is to be entered.
   */
  follow(): boolean {
    if (this.storage || !carriedByContextFrames()) return false;
    this.storage = new AsyncLocalStorage<ResponseLike>();
    return true;
  }

  /** The server starts a request: its response is entered for the handler and its continuations. */
  started(response: unknown): void {
    if (response) this.storage?.enterWith(response as ResponseLike);
  }

  /** The request being served where the caller runs, if any. */
  current(): BeingServed | undefined {
    const inTurn = requestBeingServed(executionAsyncResource());
    if (inTurn || !this.storage) return inTurn;
    const response = this.storage.getStore();
    const request = response?.req;
    if (!response || !request?.socket || response.writableFinished) return undefined;
    return { method: request.method, url: request.url, socket: request.socket };
  }

  /** Leaves the current context: a stopped agent must not keep a response alive through it. */
  stop(): void {
    this.storage?.disable();
    this.storage = undefined;
  }
}
