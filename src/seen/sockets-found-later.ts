import { AsyncResource } from 'node:async_hooks';
import { Socket, type Server } from 'node:net';
import { activeHandles, handleAsyncIdOf, handleOf, serverOf } from '../common/node-internals';
import { threadCpuMs } from '../common/real-time';
import type { StackCapture } from '../common/stack';
import type { SocketRegistry } from '../remembered/registry';

/** The share of one core the periodic passes over the process's handles may take. */
const PASS_BUDGET = 1 / 500;
/** Passes whose marks are kept (and start()'s): a socket made before the oldest is said to be made after start(). */
const PASSES_KEPT = 64;

/**
 * Sockets found at scan time among the process's active handles rather than noted as each one is
 * made: the sockets plain servers accept (below stacks "all"), and client sockets too at stacks
 * "off". Where a connection lasts one request, the process then pays nothing per connection for
 * the agent.
 *
 * Why: measured out of process (benchmarks/preloaded-cpu.js, a new connection per request), noting
 * each accepted socket (its server's listen() stack looked up, the socket and the time held until
 * the next scan) cost the server 2 to 4% of its CPU beyond returning at once from the same
 * channel's handler, several times what a profile charged its functions (docs/figures.md). At
 * stacks "off" a client socket, with no stack to take, is only counted too (see SocketSources).
 *
 * What is known of a socket found this way: its server (the listen() stack a report names, as
 * for one noted when accepted), or that it is a client socket, and that it was made between a
 * pass and the one that found it: the newest pass whose mark (an async id) is older than its
 * handle, as Node numbers handles in the order it makes them (see madeAfter).
 * Sockets made before start() stay with the untracked look, as before. A socket the program
 * unref'd is not among the active handles: it is not found here, and the untracked look judges it
 * by the kernel's word until it is ref'd again. (A socket waiting in an http.Agent's pool is
 * unref'd, but it is not one that can leak: the agent closes it when its peer does.)
 *
 * Not used where a socket needs its record as it is made: a TLS server's (its handshake joins it
 * to the TLS socket that reads it), a test run's (the test it belongs to is read then), or where
 * every stack is asked for (test runs, the CLI). See SocketSources.onServerSocket and onClientSocket.
 */
export class SocketsFoundLater {
  /** Sockets accepted, and client sockets made, since start() and left to be found here; counted by SocketSources. */
  accepted = 0;
  made = 0;
  // Both as of the last pass: while neither has moved, there is nothing to find.
  private acceptedAtPass = 0;
  private madeAtPass = 0;
  // Each pass's time and the async id of a mark made then, from start() on: Node numbers handles
  // in the order they are made, so a handle with a larger id was made after that time. (Read
  // from the id, not from the last pass: a socket can be missed by passes while it is unref'd.)
  private readonly passes: Array<{ at: number; id: number }> = [];
  // Since the last pass no socket was counted until this time, so none was made in between.
  private quietUntil: number;
  private nextPassAt = 0;

  constructor(
    private readonly registry: SocketRegistry,
    /** What is known of a server: its listen() stack, whether it is a TLS one (noted so: its next sockets are noted as accepted). */
    private readonly serverSeen: (server: Server) => { listenStack: StackCapture | undefined; tls: boolean },
    /** The longest pause between periodic passes, however much one costs. */
    private readonly longestPauseMs: number,
    now: number,
  ) {
    this.passes.push({ at: now, id: newAsyncId() });
    this.quietUntil = now;
  }

  /** Whether Node can list its handles here: without it, accepted sockets are noted as they come. */
  static available(): boolean {
    return activeHandles !== undefined;
  }

  /**
   * Tracks the sockets counted since start() and not tracked yet. A periodic pass (`force` false)
   * keeps within PASS_BUDGET of a core, charged in CPU time; a check, a report's look for
   * untracked sockets or the exit scan forces one. Nothing is listed while no socket was counted
   * since the last pass.
   */
  find(now: number, force: boolean): void {
    const { accepted, made } = this;
    if (accepted === this.acceptedAtPass && made === this.madeAtPass) {
      this.quietUntil = now;
      // Once client sockets are counted, passes go on without new ones: a client socket moves in
      // and out of the active handles (http.Agent unrefs one while it waits in its pool, and refs
      // it again for its next request), so one missed by a pass can be found by a later one.
      if (made === 0) return;
    }
    if (!force && now < this.nextPassAt) return;
    const started = threadCpuMs();
    const idAtStart = this.passes[0]!.id;
    for (const handle of activeHandles!()) {
      if (!(handle instanceof Socket) || this.registry.peek(handle) !== undefined) continue;
      const id = handleAsyncIdOf(handle);
      // One made before start(): not this pass's to find.
      if (id <= idAtStart) continue;
      const server = serverOf(handle);
      if (!server) {
        // A client socket, when they are counted: a TCP one (not a pipe, not a terminal).
        if (made > 0 && isTcp(handle)) this.registry.adopt(handle, 'client', undefined, this.madeAfter(id), now);
        continue;
      }
      const seen = this.serverSeen(server);
      const record = this.registry.adopt(handle, 'server', seen.listenStack, this.madeAfter(id), now);
      // A TLS server not known as one when the socket came: its TLS socket is not known (see SocketRecord.reader).
      if (record && seen.tls) record.reader = null;
    }
    this.acceptedAtPass = accepted;
    this.madeAtPass = made;
    this.passes.push({ at: now, id: newAsyncId() });
    // The oldest after start() go first: a socket made then is said to be made after start().
    if (this.passes.length > PASSES_KEPT) this.passes.splice(1, 1);
    this.quietUntil = now;
    this.nextPassAt = now + Math.min((threadCpuMs() - started) / PASS_BUDGET, this.longestPauseMs);
  }

  /** The time after which the handle with async id `id` (one made after start()) was made. */
  private madeAfter(id: number): number {
    const passes = this.passes;
    let low = 0;
    let high = passes.length - 1;
    // The last pass whose mark is older than the handle.
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (passes[middle]!.id < id) low = middle;
      else high = middle - 1;
    }
    return low === passes.length - 1 ? this.quietUntil : passes[low]!.at;
  }
}

/** The async id Node gives the next resource: a mark, made and destroyed at once. */
function newAsyncId(): number {
  const mark = new AsyncResource('TCPLEAKAGENT_MARK', { requireManualDestroy: true });
  mark.emitDestroy();
  return mark.asyncId();
}

/** Whether a socket's handle is a TCP one, or TLS over one (Node's own class names). */
function isTcp(socket: Socket): boolean {
  const name = (handleOf(socket) as { constructor?: { name?: string } } | undefined)?.constructor?.name;
  return name === 'TCP' || name === 'TLSWrap';
}
