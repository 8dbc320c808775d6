import { AsyncResource } from 'node:async_hooks';
import { Socket, type Server } from 'node:net';
import { activeHandles, handleAsyncIdOf, serverOf } from '../common/node-internals';
import { threadCpuMs } from '../common/real-time';
import type { StackCapture } from '../common/stack';
import type { SocketRegistry } from '../remembered/registry';

/** The share of one core the periodic passes over the process's handles may take. */
const PASS_BUDGET = 1 / 500;

/**
 * The sockets plain servers accept, found at scan time among the process's active handles rather
 * than noted as each one is accepted: where a connection lasts one request, a server then pays
 * nothing per connection for the agent.
 *
 * Why: measured out of process (benchmarks/preloaded-cpu.js, a new connection per request), noting
 * each accepted socket (its server's listen() stack looked up, the socket and the time held until
 * the next scan) cost the server 2 to 4% of its CPU beyond returning at once from the same
 * channel's handler, several times what a profile charged its functions (docs/figures.md).
 *
 * What is known of a socket found this way: its server (the listen() stack a report names, as
 * for one noted when accepted) and that it was accepted between the pass before (or the start)
 * and this one, by the ids Node gives handles as it makes them. Sockets accepted before start()
 * stay with the untracked look, as before. A socket the program unref'd is not among the active
 * handles: it is not found here, and the untracked look judges it by the kernel's word.
 *
 * Not used where a socket needs its record as it is accepted: a TLS server's (its handshake joins
 * it to the TLS socket that reads it), a test run's (the test it belongs to is read then), or
 * where every stack is asked for (test runs, the CLI). See SocketSources.onServerSocket.
 */
export class AcceptedSockets {
  /** Sockets accepted since start() and left to be found here; counted by SocketSources. */
  accepted = 0;
  // `accepted` as of the last pass: while it has not moved, there is nothing to find.
  private acceptedAtPass = 0;
  // A handle made after start() has a larger async id than this.
  private readonly idAtStart: number;
  // Every socket accepted since start() and not found yet was accepted after this time.
  private openedAfter: number;
  private nextPassAt = 0;

  constructor(
    private readonly registry: SocketRegistry,
    /** What is known of a server: its listen() stack, whether it is a TLS one (noted so: its next sockets are noted as accepted). */
    private readonly serverSeen: (server: Server) => { listenStack: StackCapture | undefined; tls: boolean },
    /** The longest pause between periodic passes, however much one costs. */
    private readonly longestPauseMs: number,
    now: number,
  ) {
    const mark = new AsyncResource('TCPLEAKAGENT_START', { requireManualDestroy: true });
    this.idAtStart = mark.asyncId();
    mark.emitDestroy();
    this.openedAfter = now;
  }

  /** Whether Node can list its handles here: without it, accepted sockets are noted as they come. */
  static available(): boolean {
    return activeHandles !== undefined;
  }

  /**
   * Tracks the sockets accepted since start() and not tracked yet. A periodic pass (`force` false)
   * keeps within PASS_BUDGET of a core, charged in CPU time; a check, a report's look for
   * untracked sockets or the exit scan forces one. Nothing is listed while no socket was accepted
   * since the last pass.
   */
  find(now: number, force: boolean): void {
    const accepted = this.accepted;
    if (accepted === this.acceptedAtPass) {
      this.openedAfter = now;
      return;
    }
    if (!force && now < this.nextPassAt) return;
    const started = threadCpuMs();
    for (const handle of activeHandles!()) {
      if (!(handle instanceof Socket) || this.registry.peek(handle) !== undefined) continue;
      const server = serverOf(handle);
      // A client socket, or one accepted before start(): not this pass's to find.
      if (!server || handleAsyncIdOf(handle) <= this.idAtStart) continue;
      const seen = this.serverSeen(server);
      const record = this.registry.adopt(handle, 'server', seen.listenStack, this.openedAfter, now);
      // A TLS server not known as one when the socket came: its TLS socket is not known (see SocketRecord.reader).
      if (record && seen.tls) record.reader = null;
    }
    this.acceptedAtPass = accepted;
    this.openedAfter = now;
    this.nextPassAt = now + Math.min((threadCpuMs() - started) / PASS_BUDGET, this.longestPauseMs);
  }
}
