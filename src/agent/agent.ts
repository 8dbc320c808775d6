import type { Socket } from 'node:net';
import { isMainThread } from 'node:worker_threads';
import { leakChannel, noticeChannel, scanChannel } from '../common/channels';
import { packageVersion } from '../common/package-paths';
import type { BackendName } from '../measured/backend';
import { resolveCheck, type ResolvedCheck, type VerifyOptions } from './checks';
import { judge, type Finding, type JudgeSettings } from '../judged/detector';
import { AgentNotRunningError, SocketLeakError } from '../common/errors';
import type { DumpedSocket, SocketDump } from '../explained/dump';
import { describeLeak, kindOf } from '../explained/leak';
import { slotOf, type KernelReader } from '../measured/kernel-reader';
import type { ResolvedOptions } from '../common/options';
import { formatLeaks } from '../told/format';
import type { Output } from '../told/output';
import { SocketRegistry, type SocketRecord } from '../remembered/registry';
import { AgentMetrics, type MetricsReading } from '../told/metrics';
import type { Notice } from '../told/notices';
import { groupReport, ReportLimiter } from '../told/report-limiter';
import { Reporter } from '../told/reporter';
import { ResourceChecks } from './resource-checks';
import { socketSites } from '../explained/socket-sites';
import { TCP_CLOSE_WAIT, tcpStateName } from '../common/tcp-states';
import { Scanner, type Measurement } from '../measured/scanner';
import { StackPolicy } from '../seen/stack-policy';
import { describeSockets } from '../explained/snapshot';
import { SocketSources } from '../seen/socket-sources';
import type { Leak, SocketSnapshot } from '../common/types';
import { UntrackedSockets } from '../judged/untracked-sockets';


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
  private readonly stackPolicy: StackPolicy;
  private readonly limiter: ReportLimiter;
  private readonly resources: ResourceChecks | undefined;
  private readonly reporter: Reporter;
  private metrics: AgentMetrics | undefined;
  private reading: MetricsReading = { socketsByState: new Map(), descriptors: { open: -1, limit: -1 }, timeWait: -1 };
  private readonly dumpListener = () => this.safely(() => this.tell(this.dump()), undefined);
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
   * @param backend where kernel state comes from (see selectBackend).
   */
  constructor(
    readonly options: ResolvedOptions,
    private readonly binding: KernelReader | undefined,
    output: Output,
    readonly startError?: Error,
    readonly backend: BackendName = 'native',
  ) {
    this.reporter = new Reporter(output, options.format, options.logger);
    this.limiter = new ReportLimiter(options.reportIntervalMs);
    this.stackPolicy = new StackPolicy(options.stacks, options.stackSampleEvery, options.stackDepth);
    // Descriptor and TIME_WAIT checks need kernel answers: not on the 'none' backend.
    this.resources = binding && backend !== 'none' ? new ResourceChecks(binding, options) : undefined;
    const hooks = this.resources?.hooks() ?? {};
    this.registry.onClosed = hooks.closed;
    this.sources = new SocketSources(this.registry, this.stackPolicy, (error) => this.internalError(error), hooks);
    this.scanner = binding && new Scanner(this.registry, binding);
    this.untracked = binding && isMainThread ? new UntrackedSockets(binding) : undefined;
    this.judgeSettings = {
      closeWaitMs: options.closeWaitMs,
      stallMs: options.stallMs,
      deadPeerRetries: options.deadPeerRetries,
      idleMs: options.idleMs,
      keepalive: (fd) => {
        try {
          return binding!.inspectSocket(fd).keepalive;
        } catch {
          return -1; // closed in the meantime
        }
      },
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
    // A signal listener does not keep the process alive (Node unrefs signal handles).
    if (this.options.dumpSignal) process.on(this.options.dumpSignal, this.dumpListener);
    this.metrics = this.safely(() => AgentMetrics.create(packageVersion(), () => this.reading), undefined);
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
    if (this.options.dumpSignal) process.removeListener(this.options.dumpSignal, this.dumpListener);
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
  findLeaks(options?: Pick<VerifyOptions, 'ignore' | 'strict' | 'test'>): Leak[] {
    return this.judgeNow(resolveCheck(options, 'findLeaks')).leaks;
  }

  /** The sockets tracked right now (for ignoreCurrent). */
  openSockets(): Socket[] {
    const sockets: Socket[] = [];
    this.registry.forEachOpen((socket) => sockets.push(socket));
    return sockets;
  }

  /**
   * Destroys the sockets a check finds leaked right now, and returns their
   * reports. For test adapters, once a test has failed on them: a leaked
   * socket keeps the event loop alive, and a test process that cannot end
   * would hide the failure behind a hung run.
   */
  destroyLeaked(options: Pick<VerifyOptions, 'ignore' | 'strict' | 'test'>): Leak[] {
    const found = this.judgeNow(resolveCheck(options, 'destroyLeaked'));
    for (const socket of found.sockets) socket.destroy();
    return found.leaks;
  }

  /**
   * Judges this moment. Only the check's test's sockets count (filtered before
   * any report is built); strict adds every such socket still open; ignored
   * ones are dropped.
   */
  private judgeNow(check: ResolvedCheck): { leaks: Leak[]; sockets: Socket[]; unsettled: number } {
    const none = { leaks: [], sockets: [], unsettled: 0 };
    if (!this.running) return none;
    const ours = (record: SocketRecord) => check.test === undefined || record.test === check.test;
    return this.safely(() => {
      const { findings, unsettled } = this.scanner!.measure((m) => {
        const verdict = judge(m, 'now', this.judgeSettings, Date.now());
        const found = verdict.leaked.filter((finding) => ours(finding.record));
        if (check.strict) found.push(...stillOpen(m, new Set(found.map((finding) => finding.record)), ours));
        return { findings: found, unsettled: verdict.unsettled.filter(ours).length };
      });
      const leaks: Leak[] = [];
      const sockets: Socket[] = [];
      for (const finding of findings) {
        const leak = this.describe(finding, false);
        if (check.ignore.some((ignore) => ignore.matches(leak, finding.socket))) continue;
        leaks.push(leak);
        sockets.push(finding.socket);
      }
      return { leaks, sockets, unsettled };
    }, none);
  }

  /**
   * Resolves when no tracked socket is leaked and none is waiting for Node to
   * read its FIN. Retries with backoff for up to `timeoutMs`, so such a socket
   * gets the chance to close (or to show it will not); rejects with
   * SocketLeakError for what remains leaked and sent nothing for the second
   * half of the wait (strict: also what remains open).
   * Rejects with InvalidSettingError on a bad option.
   */
  async verifyNoLeaks(options: VerifyOptions = {}): Promise<void> {
    if (!this.running) throw new AgentNotRunningError();
    const check = resolveCheck(options);
    const started = Date.now();
    let wait = 5;
    for (;;) {
      await nextTurn();
      const { leaks, unsettled } = this.judgeNow(check);
      if (leaks.length === 0 && unsettled === 0) return;
      const elapsed = Date.now() - started;
      if (elapsed >= check.timeoutMs) {
        // Still sending (a server streaming to a client that half-closed) is not a leak. The
        // kernel counts in jiffies, and a request sent just before the wait began makes
        // "silent for the whole wait" a coin toss, so ask for silence over its second half.
        const quiet = leaks.filter((leak) => leak.kind === 'left-open' || leak.lastDataSentMs >= elapsed / 2);
        if (quiet.length === 0) return;
        throw new SocketLeakError(quiet, formatLeaks(quiet, 'text').trimEnd());
      }
      await delay(Math.min(wait, check.timeoutMs - elapsed));
      wait *= 2;
    }
  }

  /**
   * Every TCP socket of the process, with kernel state, kind (a leak kind, or 'open') and
   * origin, and which places hold the most: for an operator, on demand. The main thread's
   * dump includes sockets no agent tracks (origin 'unknown').
   */
  dump(): SocketDump {
    const empty: SocketDump = { type: 'dump', pid: process.pid, at: new Date().toISOString(), backend: this.backend, descriptors: { open: -1, limit: -1 }, sites: [], sockets: [] };
    if (!this.running) return empty;
    return this.safely(() => {
      const { sockets, sites, tracked } = this.scanner!.measure((m) => {
        const kinds = new Map<SocketRecord, Leak['kind']>();
        for (const finding of judge(m, 'now', this.judgeSettings, Date.now()).leaked) kinds.set(finding.record, kindOf(finding));
        const snapshots = describeSockets(m, this.options.skipNodeModules);
        const dumped: DumpedSocket[] = [];
        let row = 0;
        for (let i = 0; i < m.count; i++) {
          if (slotOf(m.rows, m.stride, i, 'state') < 0) continue;
          dumped.push({ ...snapshots[row++]!, kind: kinds.get(m.records[i]!) ?? 'open' });
        }
        return { sockets: dumped, sites: socketSites(m, this.options.skipNodeModules, 20), tracked: new Set(m.fds.subarray(0, m.count)) };
      });
      if (this.untracked) sockets.push(...this.untrackedForDump(tracked));
      const limit = this.binding!.getDescriptorLimit().soft;
      return { ...empty, descriptors: { open: this.binding!.countDescriptors(), limit }, sites, sockets };
    }, empty);
  }

  /** Another thread's agent notes its sockets at each of its scans; allow a few intervals. */
  private trackedElsewhereWithinMs(): number {
    return 3 * this.options.intervalMs + 1000;
  }

  /** Sockets of the process that no agent tracks, as dump rows. */
  private untrackedForDump(tracked: Set<number>): DumpedSocket[] {
    const { fds, rows } = this.untracked!.measure(tracked, this.trackedElsewhereWithinMs());
    const stride = this.binding!.SAMPLE_STRIDE;
    const dumped: DumpedSocket[] = [];
    for (let i = 0; i < fds.length; i++) {
      const state = slotOf(rows, stride, i, 'state');
      if (state < 0) continue;
      dumped.push({
        fd: fds[i]!,
        state: tcpStateName(state),
        origin: 'unknown',
        ...this.untracked!.endpoints(fds[i]!),
        createdAt: '',
        location: null,
        lastDataSentMs: slotOf(rows, stride, i, 'lastDataSentMs'),
        lastDataRecvMs: slotOf(rows, stride, i, 'lastDataRecvMs'),
        kind: state === TCP_CLOSE_WAIT ? 'close-wait' : 'open',
      });
    }
    return dumped;
  }

  /** Every TCP socket the agent tracks, with its kernel state and origin. */
  snapshot(): SocketSnapshot[] {
    if (!this.running) return [];
    return this.safely(() => this.scanner!.measure((m) => describeSockets(m, this.options.skipNodeModules)), []);
  }

  private describe(finding: Finding, atExit: boolean): Leak {
    const stackNote = this.stackPolicy.level === 'all' ? undefined : this.stackPolicy.describe();
    return describeLeak(finding, this.options.skipNodeModules, atExit, stackNote);
  }

  private scanPeriodically(): void {
    this.safely(() => {
      const { leaks, notices } = this.scanForReport('periodic');
      this.report(leaks, false);
      for (const notice of notices) this.tell(notice);
      this.metrics?.refresh();
      if (scanChannel.hasSubscribers) scanChannel.publish({ sockets: this.registry.size, leaks: leaks.length });
    }, undefined);
  }

  private onExit(): void {
    this.safely(() => this.report(this.scanForReport('exit').leaks, true), undefined);
    if (this.options.failOnLeak && this.leaksReported > 0 && !process.exitCode) process.exitCode = 1;
  }

  /** The leaks a periodic or exit scan must tell: tracked sockets, then (main thread) untracked ones. */
  private scanForReport(judgement: 'periodic' | 'exit'): { leaks: Leak[]; notices: Notice[] } {
    const now = Date.now();
    const { findings, trackedFds, notices } = this.scanner!.measure((m) => {
      const verdict = judge(m, judgement, this.judgeSettings, now);
      // The main thread looks for untracked sockets; a worker tells it, through the addon, which are its own.
      if (!this.untracked) this.binding!.noteTracked(m.fds, m.count);
      const notices: Notice[] = [];
      if (judgement === 'periodic') {
        if (this.resources) notices.push(...this.resources.afterScan(m, now));
        if (this.options.destroyLeakedAfterMs > 0) notices.push(...this.releaseLongLeaked(m, now));
        if (this.metrics) this.reading = this.readMetrics(m);
      }
      return { findings: verdict.leaked, trackedFds: this.untracked ? new Set(m.fds.subarray(0, m.count)) : undefined, notices };
    });
    const leaks = findings.map((finding) => {
      finding.record.reported = true;
      const leak = this.describe(finding, judgement === 'exit');
      if (this.options.destroyLeakedAfterMs > 0) finding.record.reportedLeak = { leak, at: now };
      return leak;
    });
    if (this.untracked && trackedFds) {
      leaks.push(...this.untracked.judge(trackedFds, judgement, this.options.closeWaitMs, now, this.trackedElsewhereWithinMs()));
    }
    return { leaks, notices };
  }

  /** Tells a notice (descriptor pressure, TIME_WAIT, a dump, a destroyed socket) like the reports. */
  private tell(notice: Notice): void {
    this.reporter.notice(notice);
    if (noticeChannel.hasSubscribers) noticeChannel.publish({ notice });
  }

  /**
   * The safety valve: destroys sockets reported leaked at least destroyLeakedAfterMs ago,
   * each told with its report. Off unless asked for: destroying a socket is the program's
   * business, and a valve is only a way to keep serving until the fix ships.
   */
  private releaseLongLeaked(m: Measurement, now: number): Notice[] {
    const notices: Notice[] = [];
    for (let i = 0; i < m.count; i++) {
      const reported = m.records[i]!.reportedLeak;
      if (!reported || now - reported.at < this.options.destroyLeakedAfterMs) continue;
      m.sockets[i]!.destroy();
      m.records[i]!.reportedLeak = undefined;
      notices.push({ type: 'destroyed', leakedMs: now - reported.at, afterMs: this.options.destroyLeakedAfterMs, leak: reported.leak });
    }
    return notices;
  }

  /** What the metrics observe until the next scan. */
  private readMetrics(m: Measurement): MetricsReading {
    const socketsByState = new Map<string, number>();
    for (let i = 0; i < m.count; i++) {
      const state = slotOf(m.rows, m.stride, i, 'state');
      if (state < 0) continue;
      const name = tcpStateName(state);
      socketsByState.set(name, (socketsByState.get(name) ?? 0) + 1);
    }
    let descriptors = this.resources?.descriptors ?? { open: -1, limit: -1 };
    if (descriptors.open < 0) descriptors = { open: this.binding!.countDescriptors(), limit: this.binding!.getDescriptorLimit().soft };
    return { socketsByState, descriptors, timeWait: this.resources?.timeWaitCount ?? -1 };
  }

  /**
   * Tells a scan's leaks: grouped by place, rate-limited per place (ReportLimiter).
   * onLeak and the leak channel still hear of every socket.
   */
  private report(leaks: Leak[], atExit: boolean): void {
    const now = Date.now();
    const { groups, summaries } = this.limiter.admit(leaks, now);
    if (atExit) summaries.push(...this.limiter.flush(now));
    this.reporter.leaks(groups.map(groupReport));
    this.reporter.summaries(summaries);
    this.leaksReported += leaks.length;
    for (const leak of leaks) {
      this.metrics?.leaked(leak.kind, 1);
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
    this.reporter.internal(`tcp-leak-agent: ${what} (shown once; the program is not affected): ${detail}\n`);
  }
}

/** Strict checks: the sockets of the check still open and not already found leaked. */
function stillOpen(m: Measurement, found: Set<SocketRecord>, ours: (record: SocketRecord) => boolean): Finding[] {
  const open: Finding[] = [];
  for (let i = 0; i < m.count; i++) {
    const record = m.records[i]!;
    const state = slotOf(m.rows, m.stride, i, 'state');
    if (state < 0 || found.has(record) || !ours(record)) continue;
    open.push({ socket: m.sockets[i]!, record, fd: m.fds[i]!, state, closeWaitMs: 0, lastDataSentMs: slotOf(m.rows, m.stride, i, 'lastDataSentMs'), leftOpen: true });
  }
  return open;
}
