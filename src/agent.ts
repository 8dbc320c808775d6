import * as diagnosticsChannel from 'node:diagnostics_channel';
import { isMainThread } from 'node:worker_threads';
import { judge, type Finding, type Judgement, type JudgeSettings, type Verdict } from './detector';
import { SocketLeakError } from './errors';
import { formatLeaks } from './format';
import { describeLeak } from './leak';
import type { NativeBinding } from './native';
import type { ResolvedOptions } from './options';
import type { Output } from './output';
import { SocketRegistry, type SocketRecord } from './registry';
import { Scanner } from './scanner';
import { describeSockets } from './snapshot';
import { SocketSources } from './socket-sources';
import type { Leak, SocketSnapshot } from './types';
import { UntrackedSockets } from './untracked-sockets';

/** Every leak the agent reports is also published here, as `{ leak }`. */
export const leakChannel = diagnosticsChannel.channel('tcp-leak-agent:leak');
/** After each periodic scan: `{ sockets, leaks }` (counts). Lets tests and tools wait for a scan. */
export const scanChannel = diagnosticsChannel.channel('tcp-leak-agent:scan');

/** Options of `verifyNoLeaks()`. */
export interface VerifyOptions {
  /** How long to keep retrying before calling what remains a leak, in ms. Default 1000. */
  timeoutMs?: number;
  /** Only sockets created by this test count (test adapters; see attributeSocketsTo). */
  test?: string;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * One running agent: sees sockets (SocketSources), remembers them
 * (SocketRegistry), measures them (Scanner), judges them (detector) and
 * tells (reporters, onLeak, the leak channel).
 */
export class Agent {
  /** True between start and stop. */
  running = false;
  /** How many leaks this agent has reported (periodic scans and the exit scan). */
  leaksReported = 0;

  private readonly registry = new SocketRegistry();
  private readonly sources: SocketSources;
  private readonly scanner: Scanner | undefined;
  // One thread is enough to look for sockets nobody tracks; the main thread is always there.
  private readonly untracked: UntrackedSockets | undefined;
  private timer: NodeJS.Timeout | undefined;
  private internalErrorShown = false;
  private readonly exitListener = () => this.onExit();
  // 'beforeExit' runs only when the event loop empties (never on process.exit()).
  private readonly beforeExitListener = () => {
    this.judgeSettings.loopEmptied = true;
  };
  private readonly judgeSettings: JudgeSettings;

  /**
   * @param binding the native addon; without it the agent cannot start.
   * @param startError why the agent could not start (bad setting, no addon), kept for callers to inspect.
   */
  constructor(
    readonly options: ResolvedOptions,
    private readonly binding: NativeBinding | undefined,
    private readonly output: Output,
    readonly startError?: Error,
  ) {
    this.sources = new SocketSources(this.registry, options.stackDepth, (error) => this.internalError(error));
    this.scanner = binding && new Scanner(this.registry, binding);
    this.untracked = binding && isMainThread ? new UntrackedSockets(binding) : undefined;
    this.judgeSettings = {
      closeWaitMs: options.closeWaitMs,
      stallMs: options.stallMs,
      unreadBytes: (fd) => {
        try {
          return binding!.inspectSocket(fd).unreadBytes;
        } catch {
          return 0; // closed in the meantime
        }
      },
    };
  }

  start(): this {
    if (this.running || !this.scanner || this.startError) return this;
    this.running = true;
    this.sources.subscribe();
    this.timer = setInterval(() => this.scanPeriodically(), this.options.intervalMs);
    // The agent must never be the reason a program keeps running.
    this.timer.unref();
    process.on('exit', this.exitListener);
    process.on('beforeExit', this.beforeExitListener);
    return this;
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.sources.unsubscribe();
    clearInterval(this.timer);
    this.timer = undefined;
    process.removeListener('exit', this.exitListener);
    process.removeListener('beforeExit', this.beforeExitListener);
    this.registry.clear();
  }

  /**
   * Names the test each new socket belongs to (test-runner adapters call this with a
   * reader of their async context). Leaks then carry `test`.
   */
  attributeSocketsTo(currentTest: () => string | undefined): void {
    this.registry.attribution = currentTest;
  }

  /** Scans now and returns every tracked socket that is leaked at this moment. Reports nothing. */
  findLeaks(): Leak[] {
    return this.judgeNow(undefined).leaks;
  }

  /** Judges this moment; with `test`, only that test's sockets, filtered before any report is built. */
  private judgeNow(test: string | undefined): { leaks: Leak[]; unsettled: number } {
    if (!this.running) return { leaks: [], unsettled: 0 };
    const ours = (record: SocketRecord) => test === undefined || record.test === test;
    return this.safely(
      () => {
        const verdict = this.judge('now');
        const leaks = verdict.leaked.filter((finding) => ours(finding.record)).map((finding) => this.describe(finding, false));
        return { leaks, unsettled: verdict.unsettled.filter(ours).length };
      },
      { leaks: [], unsettled: 0 },
    );
  }

  /**
   * Resolves when no tracked socket is leaked and none is waiting for Node to
   * read its FIN. Retries with backoff for up to `timeoutMs`, so such a socket
   * gets the chance to close (or to show it will not); rejects with
   * SocketLeakError for what remains leaked and sent nothing for the second
   * half of the wait.
   */
  async verifyNoLeaks(options: VerifyOptions = {}): Promise<void> {
    if (!this.running) throw notRunning();
    const timeoutMs = options.timeoutMs ?? 1000;
    const started = Date.now();
    let wait = 5;
    for (;;) {
      await nextTurn();
      const { leaks, unsettled } = this.judgeNow(options.test);
      if (leaks.length === 0 && unsettled === 0) return;
      const elapsed = Date.now() - started;
      if (elapsed >= timeoutMs) {
        // Still sending (a server streaming to a client that half-closed) is not a leak. The
        // kernel counts in jiffies, and a request sent just before the wait began makes
        // "silent for the whole wait" a coin toss, so ask for silence over its second half.
        const quiet = leaks.filter((leak) => leak.lastDataSentMs >= elapsed / 2);
        if (quiet.length === 0) return;
        throw new SocketLeakError(quiet);
      }
      await delay(Math.min(wait, timeoutMs - elapsed));
      wait *= 2;
    }
  }

  /** Every TCP socket the agent tracks, with its kernel state and origin. */
  snapshot(): SocketSnapshot[] {
    if (!this.running) return [];
    return this.safely(() => this.scanner!.measure((m) => describeSockets(m, this.options.skipNodeModules)), []);
  }

  private judge(judgement: Judgement): Verdict {
    return this.scanner!.measure((m) => judge(m, judgement, this.judgeSettings, Date.now()));
  }

  private describe(finding: Finding, atExit: boolean): Leak {
    return describeLeak(finding, this.options.skipNodeModules, atExit);
  }

  private scanPeriodically(): void {
    this.safely(() => {
      const leaks = this.scanForReport('periodic');
      this.report(leaks);
      if (scanChannel.hasSubscribers) scanChannel.publish({ sockets: this.registry.size, leaks: leaks.length });
    }, undefined);
  }

  private onExit(): void {
    this.safely(() => this.report(this.scanForReport('exit')), undefined);
    if (this.options.failOnLeak && this.leaksReported > 0 && !process.exitCode) process.exitCode = 1;
  }

  /** The leaks a periodic or exit scan must tell: tracked sockets, then (main thread) untracked ones. */
  private scanForReport(judgement: 'periodic' | 'exit'): Leak[] {
    const now = Date.now();
    const { findings, trackedFds } = this.scanner!.measure((m) => {
      const verdict = judge(m, judgement, this.judgeSettings, now);
      // The main thread looks for untracked sockets; a worker tells it, through the addon, which are its own.
      if (!this.untracked) this.binding!.noteTracked(m.fds, m.count);
      return { findings: verdict.leaked, trackedFds: this.untracked ? new Set(m.fds.subarray(0, m.count)) : undefined };
    });
    const leaks = findings.map((finding) => {
      finding.record.reported = true;
      return this.describe(finding, judgement === 'exit');
    });
    if (this.untracked && trackedFds) {
      // Another thread's agent notes its sockets at each of its scans; allow a few intervals.
      const trackedWithinMs = 3 * this.options.intervalMs + 1000;
      leaks.push(...this.untracked.judge(trackedFds, judgement, this.options.closeWaitMs, now, trackedWithinMs));
    }
    return leaks;
  }

  private report(leaks: Leak[]): void {
    if (leaks.length === 0) return;
    this.leaksReported += leaks.length;
    this.output(formatLeaks(leaks, this.options.format));
    for (const leak of leaks) {
      if (leakChannel.hasSubscribers) leakChannel.publish({ leak });
      if (this.options.onLeak) {
        try {
          this.options.onLeak(leak);
        } catch (error) {
          this.internalError(error, 'the onLeak callback threw');
        }
      }
    }
  }

  /** Runs agent work; an unexpected error is told once and never reaches the host. */
  private safely<T>(work: () => T, fallback: T): T {
    try {
      return work();
    } catch (error) {
      this.internalError(error);
      return fallback;
    }
  }

  private internalError(error: unknown, what = 'internal error'): void {
    if (this.internalErrorShown) return;
    this.internalErrorShown = true;
    const detail = error instanceof Error ? error.stack ?? error.message : String(error);
    this.output(`tcp-leak-agent: ${what} (shown once; the program is not affected): ${detail}\n`);
  }
}

/** The error `verifyNoLeaks` rejects with when no agent is running. */
export function notRunning(): Error {
  const error = new Error('tcp-leak-agent is not running: call start() (or preload tcp-leak-agent/register) before verifyNoLeaks()');
  (error as NodeJS.ErrnoException).code = 'ERR_TCP_LEAK_AGENT_NOT_RUNNING';
  return error;
}
