import type { Socket } from 'node:net';
import { isMainThread } from 'node:worker_threads';
import { noticeChannel, scanChannel } from '../common/channels';
import { AgentNotRunningError, SocketLeakError } from '../common/errors';
import type { ResolvedOptions } from '../common/options';
import { packageVersion } from '../common/package-paths';
import type { Leak, SocketSnapshot } from '../common/types';
import { SocketRegistry, type SocketRecord } from '../remembered/registry';
import { SocketSources } from '../seen/socket-sources';
import { useKey } from '../seen/request-uses';
import { StackPolicy } from '../seen/stack-policy';
import type { BackendName } from '../measured/backend';
import type { KernelReader } from '../measured/kernel-reader';
import { Scanner } from '../measured/scanner';
import { Sweep } from '../measured/sweep';
import { judge, judgeSettingsFor, type Finding, type JudgeSettings } from '../judged/detector';
import { stillOpen } from '../judged/left-open';
import { canBeLeaking } from '../judged/suspects';
import { UntrackedSockets } from '../judged/untracked-sockets';
import type { SocketDump } from '../explained/dump';
import { CheckClock } from '../common/clock';
import type { FunctionLocator } from '../explained/function-locations';
import type { SourcePositions } from '../explained/source-positions';
import type { RequestCaller, SocketSite } from '../explained/socket-sites';
import type { LeakTeller } from '../told/leak-teller';
import { AgentMetrics, readingOf, type MetricsReading } from '../told/metrics';
import type { Notice } from '../told/notices';
import type { Output } from '../told/output';
import type { Reporter } from '../told/reporter';
import { resolveCheck, type ResolvedCheck, type VerifyOptions } from './checks';
import { ResourceChecks } from './resource-checks';
import { releaseLongLeaked } from './safety-valve';
import { waitForSettled } from './verify';
import { realIso, realMonotonic, realNow, realTimers } from '../common/real-time';
import { later } from './on-demand';

/** Places listed in a descriptor warning. */
const TOP_SITES = 10;
/**
 * Reports per check (a scan, findLeaks, verifyNoLeaks) that read their listeners' locations
 * through the inspector (about a millisecond each, more the first time): the rest go without.
 */
const LOCATED_PER_CHECK = 10;

/**
 * One running agent: wires the stages together (seen: SocketSources;
 * remembered: SocketRegistry; measured: Scanner; judged: the detector;
 * explained: describeLeak; told: LeakTeller, Reporter) and runs their
 * lifecycle. It also answers the calls made against a running agent
 * (findLeaks, verifyNoLeaks, dump, snapshot): each is a few lines over the same
 * state, the work done in its stage, which is why they live in this one file.
 */
export class Agent {
  /** True between start and stop. */
  running = false;
  /** How many leaks this agent has reported (periodic scans and the exit scan). */
  get leaksReported(): number {
    return this.told?.teller.told ?? 0;
  }

  private readonly registry = new SocketRegistry();
  // Advanced at each check: the time a request is remembered with (see CheckClock).
  private readonly clock = new CheckClock();
  private readonly stackPolicy: StackPolicy;
  private readonly resources: ResourceChecks | undefined;
  // How leaks and notices are told: made with the first one (see on-demand.ts).
  private told: { reporter: Reporter; teller: LeakTeller } | undefined;
  private metrics: AgentMetrics | undefined;
  // The last reading, kept for the rest of one collection (its instruments each ask).
  private lastReading: { at: number; value: MetricsReading } | undefined;
  private readonly dumpListener = () => this.safely(() => this.tell(this.dump()), undefined);
  private readonly sources: SocketSources;
  // The kernel's answers; absent when the agent could not start (no backend, bad setting).
  private readonly kernel: { reader: KernelReader; scanner: Scanner } | undefined;
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
  // Where a listener's function and a transpiled line are: made with the first leak described.
  private lines: { locator: FunctionLocator; positions: SourcePositions } | undefined;
  private locatedThisCheck = 0;
  // A worker's tracked descriptors, for the main thread's untracked check: reused from scan to scan.
  private noted = new Int32Array(16);
  // Which sockets that cannot be leaking now a periodic scan measures anyway.
  private readonly sweep: Sweep;

  /**
   * @param binding the native addon; without it the agent cannot start.
   * @param startError why the agent could not start (bad setting, no addon), kept for callers to inspect.
   * @param backend where kernel state comes from (see selectBackend).
   */
  constructor(
    readonly options: ResolvedOptions,
    binding: KernelReader | undefined,
    private readonly output: Output,
    readonly startError?: Error,
    readonly backend: BackendName = 'native',
  ) {
    this.stackPolicy = new StackPolicy(options.stacks, options.stackSampleEvery, options.stackDepth);
    // Descriptor and TIME_WAIT checks need kernel answers: not on the 'none' backend.
    this.resources = binding && backend !== 'none' ? new ResourceChecks(binding, options, (error) => this.internalError(error)) : undefined;
    const hooks = this.resources?.hooks() ?? {};
    // The longest pause between budgeted looks (for accepted sockets, for untracked ones): 20 scan
    // intervals, at least a second, however much one costs.
    const longestLookPauseMs = Math.max(1000, 20 * options.intervalMs);
    this.sources = new SocketSources(this.registry, this.stackPolicy, (error) => this.internalError(error), this.clock, hooks, longestLookPauseMs);
    this.kernel = binding && { reader: binding, scanner: new Scanner(this.registry, binding) };
    this.untracked = binding && isMainThread ? new UntrackedSockets(binding, longestLookPauseMs) : undefined;
    this.judgeSettings = judgeSettingsFor(options, binding);
    this.sweep = new Sweep(options.sweepMsPerSecond, options.intervalMs, binding?.readsWholeTables === true);
  }

  start(): this {
    if (this.running || !this.kernel || this.startError) return this;
    this.running = true;
    this.clock.set(realNow());
    this.sources.subscribe();
    this.timer = realTimers.setInterval(() => this.scanPeriodically(), this.options.intervalMs);
    // The agent must never be the reason a program keeps running.
    this.timer.unref();
    process.on('exit', this.exitListener);
    process.on('beforeExit', this.beforeExitListener);
    // A signal listener does not keep the process alive (Node unrefs signal handles).
    if (this.options.dumpSignal) process.on(this.options.dumpSignal, this.dumpListener);
    this.metrics = this.safely(() => new AgentMetrics(packageVersion(), () => this.readMetricsNow()), undefined);
    // A JUnit file is written at exit whatever was found: its teller is there from the start.
    if (this.options.junit !== undefined) this.telling();
    return this;
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.sources.unsubscribe();
    this.resources?.stop();
    realTimers.clearInterval(this.timer);
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

  /** The sockets tracked right now, and the "fd:inode" of the untracked ones (for ignoreCurrent). */
  openSockets(): { sockets: Socket[]; untracked: string[] } {
    const sockets: Socket[] = [];
    if (this.live()) this.findLater(true);
    this.registry.forEachOpen((socket) => sockets.push(socket));
    const untracked = this.live() && this.untracked ? this.safely(() => this.untracked!.currentKeys(this.trackedFds(), this.trackedElsewhereWithinMs()), []) : [];
    return { sockets, untracked };
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
  private judgeNow(check: ResolvedCheck, untrackedToo = true): { leaks: Leak[]; sockets: Socket[]; unsettled: number } {
    const none = { leaks: [], sockets: [], unsettled: 0 };
    const kernel = this.live();
    if (!kernel) return none;
    const ours = (record: SocketRecord) => check.test === undefined || record.test === check.test;
    this.locatedThisCheck = 0;
    this.findLater(true);
    return this.safely(() => {
      const { findings, unsettled } = kernel.scanner.measure((m) => {
        const verdict = judge(m, 'now', this.judgeSettings, realNow());
        const found = verdict.leaked.filter((finding) => ours(finding.record));
        if (check.strict) found.push(...stillOpen(m, new Set(found.map((finding) => finding.record)), ours));
        return { findings: found, unsettled: verdict.unsettled.filter(ours).length };
      });
      // Sockets no agent tracks (opened before start(), or where no channel announced them) belong
      // to no test: a check of the whole process (no test named) counts them, as the scans do.
      let untrackedUnsettled = 0;
      if (this.untracked && untrackedToo && check.test === undefined) {
        const untracked = this.untracked.judgeNow(this.trackedFds(), this.judgeSettings, realNow(), this.trackedElsewhereWithinMs());
        findings.push(...untracked.findings);
        untrackedUnsettled = untracked.unsettled;
      }
      const leaks: Leak[] = [];
      const sockets: Socket[] = [];
      for (const finding of findings) {
        const leak = this.describe(finding, false);
        const socket = finding.socket;
        if (check.ignore.some((ignore) => ignore.matches(leak, socket, finding.untrackedKey))) continue;
        leaks.push(leak);
        if (socket) sockets.push(socket);
      }
      return { leaks, sockets, unsettled: unsettled + untrackedUnsettled };
    }, none);
  }

  /**
   * Resolves when no tracked socket is leaked and none is waiting for Node to
   * read its FIN. Retries with backoff for up to `timeoutMs`, so such a socket
   * gets the chance to close (or to show it will not); rejects with
   * SocketLeakError for what remains leaked and sent nothing for the second
   * half of the wait (strict: also what remains open). A check of the whole process (no test
   * named) counts the sockets no agent tracks too, unless `untrackedToo` is false.
   * Rejects with InvalidSettingError on a bad option.
   */
  async verifyNoLeaks(options: VerifyOptions = {}, untrackedToo = true): Promise<void> {
    if (!this.running) throw new AgentNotRunningError();
    const check = resolveCheck(options);
    const leaks = await waitForSettled(() => this.judgeNow(check, untrackedToo), check.timeoutMs);
    if (leaks.length > 0) throw new SocketLeakError(leaks, later().formatLeaks(leaks, 'text').trimEnd());
  }

  /**
   * Every TCP socket of the process, with kernel state, kind (a leak kind, or 'open') and
   * origin, and which places hold the most: for an operator, on demand. The main thread's
   * dump includes sockets no agent tracks (origin 'unknown').
   */
  dump(): SocketDump {
    const empty: SocketDump = { type: 'dump', pid: process.pid, at: realIso(), backend: this.backend, descriptors: { open: -1, limit: -1 }, sites: [], sockets: [] };
    const kernel = this.live();
    if (!kernel) return empty;
    this.findLater(true);
    return this.safely(() => {
      const { sockets, sites, tracked } = kernel.scanner.measure((m) => {
        const leakedNow = new Map<SocketRecord, Leak['kind']>();
        const { kindOf, trackedDumpRows, socketSites } = later();
        for (const finding of judge(m, 'now', this.judgeSettings, realNow()).leaked) leakedNow.set(finding.record, kindOf(finding));
        return {
          sockets: trackedDumpRows(m, leakedNow, this.options.skipNodeModules),
          sites: socketSites(m, this.options.skipNodeModules, 20, this.requestCaller),
          tracked: new Set(m.fds.subarray(0, m.count)),
        };
      });
      if (this.untracked) {
        const { fds, rows } = this.untracked.measure(tracked, this.trackedElsewhereWithinMs());
        const untracked = this.untracked;
        sockets.push(...later().untrackedDumpRows(fds, rows, kernel.reader.SAMPLE_STRIDE, (fd) => untracked.endpoints(fd)));
      }
      return { ...empty, descriptors: this.descriptors(kernel.reader), sites, sockets };
    }, empty);
  }

  /** Another thread's agent notes its sockets at each of its scans; allow a few intervals. */
  private trackedElsewhereWithinMs(): number {
    return 3 * this.options.intervalMs + 1000;
  }

  /** Every TCP socket the agent tracks, with its kernel state and origin. */
  snapshot(): SocketSnapshot[] {
    const kernel = this.live();
    if (!kernel) return [];
    this.findLater(true);
    return this.safely(() => kernel.scanner.measure((m) => later().describeSockets(m, this.options.skipNodeModules)), []);
  }

  private describe(finding: Finding, atExit: boolean): Leak {
    if (finding.socket) this.sources.noteHttpUse(finding.socket, finding.record);
    const policy = this.stackPolicy;
    const lines = this.locatedThisCheck++ < LOCATED_PER_CHECK ? this.lineFinders() : undefined;
    return later().describeLeak(finding, this.options.skipNodeModules, atExit, policy.level === 'all' ? undefined : (lastUse) => policy.describe(lastUse), lines?.locator, lines?.positions);
  }

  private lineFinders(): { locator: FunctionLocator; positions: SourcePositions } {
    if (this.lines === undefined) {
      const { FunctionLocator, SourcePositions } = later();
      this.lines = { locator: new FunctionLocator(), positions: new SourcePositions() };
    }
    return this.lines;
  }

  /** The reporter and the leak teller, made the first time something is told. */
  private telling(): { reporter: Reporter; teller: LeakTeller } {
    if (this.told === undefined) {
      const { Reporter, LeakTeller, CiTeller } = later();
      const options = this.options;
      const reporter = new Reporter(this.output, options.format, options.logger, new CiTeller(process.env, options.annotations, options.junit));
      const teller = new LeakTeller(reporter, options.reportIntervalMs, options.onLeak, (error) => this.internalError(error, 'the onLeak callback threw'), packageVersion());
      this.told = { reporter, teller };
    }
    return this.told;
  }

  /** Tells a scan's leaks; with none, only a teller that exists has something to say (leaks it held back). */
  private tellLeaks(leaks: Leak[], atExit: boolean): void {
    if (leaks.length > 0 || this.told !== undefined) this.telling().teller.tell(leaks, atExit, this.metrics);
  }

  /**
   * After a told client leak: one named ends a hunt begun before it was made; one without a line whose
   * stack was not captured starts a hunt for its key (one whose stack was captured and shows only
   * a library's code would gain nothing from more stacks).
   */
  private followUp(finding: Finding, leak: Leak, now: number): void {
    const record = finding.record;
    const lastUse = record.uses?.[record.uses.length - 1];
    const key = lastUse ? useKey(lastUse) : undefined;
    const captured = lastUse ? lastUse.caller !== undefined : record.creation !== undefined;
    // Hunts are for client sockets and their requests: an accepted socket named at its server's
    // line says nothing of them (it used to end the hunt over new sockets that a leaked client
    // socket with no request had begun).
    if (record.origin !== 'client') return;
    // A request made in a process that serves, with no endpoint found: follow them from now on.
    if (leak.lastUse && !leak.lastUse.served && this.sources.serves) this.sources.followServedRequests();
    if (leak.location) this.stackPolicy.named(key, lastUse?.at ?? record.createdAt);
    else if (!captured) this.stackPolicy.hunt(key, now);
  }

  private scanPeriodically(): void {
    this.safely(() => {
      const { leaks, notices } = this.scanForReport('periodic');
      this.tellLeaks(leaks, false);
      for (const notice of notices) this.tell(notice);
      this.metrics?.refresh();
      if (scanChannel.hasSubscribers) scanChannel.publish({ sockets: this.registry.size, leaks: leaks.length, followed: this.resources?.clientsFollowed ?? 0 });
    }, undefined);
  }

  private onExit(): void {
    this.safely(() => this.tellLeaks(this.scanForReport('exit').leaks, true), undefined);
    this.safely(() => this.told?.reporter.finish(), undefined);
    if (this.options.failOnLeak && this.leaksReported > 0 && !process.exitCode) process.exitCode = 1;
  }

  /**
   * The leaks a periodic or exit scan must tell: tracked sockets, then (main thread) untracked ones.
   * A periodic scan measures the sockets that can be leaking and the sweep's window; the exit
   * scan measures every one.
   */
  private scanForReport(judgement: 'periodic' | 'exit'): { leaks: Leak[]; notices: Notice[] } {
    const now = realNow();
    this.clock.set(now);
    const kernel = this.live();
    if (!kernel) return { leaks: [], notices: [] };
    this.locatedThisCheck = 0;
    const started = realMonotonic();
    const periodic = judgement === 'periodic';
    this.findLater(!periodic);
    if (periodic) this.sweep.plan(this.registry.size, now);
    const sweep = this.sweep;
    const select = periodic ? (socket: Socket, record: SocketRecord, position: number) => sweep.covers(position) || canBeLeaking(socket, record) : undefined;
    let measured = 0;
    const { findings, notices } = kernel.scanner.measure((m) => {
      measured = m.count;
      const verdict = judge(m, judgement, this.judgeSettings, now);
      const released = periodic && this.options.destroyLeakedAfterMs > 0 ? releaseLongLeaked(m, now, this.options.destroyLeakedAfterMs) : [];
      return { findings: verdict.leaked, notices: released };
    }, select);
    if (periodic) {
      this.sweep.done(realMonotonic() - started, measured, now);
      // After the scan: a descriptor warning measures every socket to name their places.
      if (this.resources) {
        notices.unshift(...this.resources.afterScan(this.registry.size, () => this.allSites(kernel.scanner), now, () => this.registry.clientPeers(), this.registry.seen));
        // Short of descriptors, every new socket and request gets its stack, so that the dump at the limit names them.
        this.stackPolicy.pressure = this.resources.descriptorsShort;
      }
    }
    // The main thread looks for untracked sockets; a worker tells it, through the addon, which are its own.
    // (An accepted socket not found yet by a budgeted pass must not be taken for an untracked one.)
    const trackedFds = () => {
      this.findLater(true);
      return this.trackedFds();
    };
    if (this.untracked) findings.push(...this.untracked.judge(trackedFds, judgement, this.judgeSettings, now, this.trackedElsewhereWithinMs()));
    else this.noteTrackedElsewhere(kernel.reader);
    const leaks = findings.map((finding) => {
      finding.record.reported = true;
      const leak = this.describe(finding, judgement === 'exit');
      this.followUp(finding, leak, now);
      if (this.options.destroyLeakedAfterMs > 0 && finding.socket) finding.record.reportedLeak = { leak, at: now };
      return leak;
    });
    return { leaks, notices };
  }

  /**
   * Tracks the sockets servers accepted (and, at stacks "off", client sockets made) since the last
   * look, where they are found at scans (see SocketsFoundLater): before any look at the tracked
   * sockets. `force`: not held back by the budget of the periodic looks.
   */
  private findLater(force: boolean): void {
    this.safely(() => this.sources.findLater(realNow(), force), undefined);
  }

  /** The descriptors of every open tracked socket, for telling tracked from untracked. */
  private trackedFds(): Set<number> {
    const fds = new Set<number>();
    this.registry.forEachOpen((_socket, fd) => fds.add(fd));
    return fds;
  }

  /** A worker's agent notes its descriptors for the main thread's untracked check (which allows a few intervals). */
  private noteTrackedElsewhere(reader: KernelReader): void {
    if (this.noted.length < this.registry.size) this.noted = new Int32Array(this.registry.size * 2);
    const fds = this.noted;
    let count = 0;
    // The registry cannot grow during the visit: it runs synchronously.
    this.registry.forEachOpen((_socket, fd) => {
      fds[count++] = fd;
    });
    reader.noteTracked(fds, count);
  }

  private readonly requestCaller: RequestCaller = (socket, record) => this.sources.requestCaller(socket, record);

  /** Which places hold the tracked sockets (a descriptor warning names them): every socket measured. */
  private allSites(scanner: Scanner): SocketSite[] {
    return scanner.measure((m) => later().socketSites(m, this.options.skipNodeModules, TOP_SITES, this.requestCaller));
  }

  /** Tells a notice (descriptor pressure, TIME_WAIT, a dump, a destroyed socket) like the reports. */
  private tell(notice: Notice): void {
    this.telling().reporter.notice(notice);
    if (noticeChannel.hasSubscribers) noticeChannel.publish({ notice });
  }

  /**
   * What the metrics observe, read when an exporter collects (not at every scan): a scan of the
   * tracked sockets and the descriptor count, kept for a second so one collection reads once.
   */
  private readMetricsNow(): MetricsReading {
    const none: MetricsReading = { socketsByState: new Map(), descriptors: { open: -1, limit: -1 }, timeWait: -1 };
    const now = realNow();
    if (this.lastReading && now - this.lastReading.at < 1000) return this.lastReading.value;
    const kernel = this.live();
    if (!kernel) return none;
    this.findLater(false);
    const value = this.safely(() => kernel.scanner.measure((m) => readingOf(m, this.descriptors(kernel.reader), this.resources?.timeWaitCount ?? -1)), none);
    this.lastReading = { at: now, value };
    return value;
  }

  /** The kernel's answers while running; undefined otherwise. */
  private live(): { reader: KernelReader; scanner: Scanner } | undefined {
    return this.running ? this.kernel : undefined;
  }

  /** Open descriptors and their limit: the resource checks' last count, else asked now. */
  private descriptors(reader: KernelReader): { open: number; limit: number } {
    const counted = this.resources?.descriptors;
    if (counted && counted.open >= 0) return counted;
    return { open: reader.countDescriptors(), limit: reader.getDescriptorLimit().soft };
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
    // Straight to the output the operator chose for the agent, never through its logger: this must not fail too.
    this.output(`tcp-leak-agent: ${what} (shown once; the program is not affected): ${detail}\n`);
  }
}
