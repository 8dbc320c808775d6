import type { Server } from 'node:net';
import { DescriptorPressure } from '../explained/descriptor-pressure';
import type { KernelReader } from '../measured/kernel-reader';
import type { Notice } from '../told/notices';
import type { ResolvedOptions } from '../common/options';
import type { SocketSite } from '../explained/socket-sites';
import type { SourceHooks } from '../seen/socket-sources';
import { formatLocation, locate, type StackCapture } from '../common/stack';
import { TIME_WAIT_NEAR, TimeWaitWatch, type Peer } from '../measured/time-wait';
import { namespaceTimeWait } from '../measured/proc-net-tables';
import { FollowedClients } from '../measured/followed-clients';
import { realNow, threadCpuMs } from '../common/real-time';

/** TIME_WAIT is counted at most on every this-many scans, */
const TIME_WAIT_EVERY_SCANS = 5;
/**
 * and, while dumps of the namespace find little of this process's own (under a quarter of the
 * threshold, two in a row: the pile is a neighbour's, or its peers close first), twice as far
 * apart after each, up to every this-many. A dump walks the whole namespace whatever it finds;
 * TIME_WAIT lasts 60 s, so a pile that grows in between is still all there at the next count.
 */
const TIME_WAIT_QUIET_EVERY_SCANS = 40;
/**
 * And within this share of one core: the kernel walks every TIME_WAIT connection of the
 * namespace for a dump, and a server closing 9000 connections a second keeps 131072
 * (tcp_max_tw_buckets) of them, a dump of 20 to 40 ms. After each dump, the next waits 200 times
 * the CPU time it took (0.5%), and all of them, the next priced beforehand, fit in 0.5% of the time
 * since start (see affordableAt).
 */
const TIME_WAIT_BUDGET = 1 / 200;
/**
 * What a check that dumps costs per TIME_WAIT connection of the namespace (ms), until one has been
 * timed in this process: the kernel walks every one of them once, whatever the port filter keeps
 * (measured here: 9 ms at 57,000 on an idle machine, 0.16 µs each; under load about twice that,
 * docs/figures.md). Priced high, as a first count can wait: the walks that follow are priced at
 * what the last one took. A backend that reads the whole tables pays about 3 µs a row.
 */
const DUMP_MS_PER_CONNECTION = 0.0005;
const DUMP_MS_PER_ROW_READ = 0.003;
/** How long Linux keeps a connection in TIME_WAIT (TCP_TIMEWAIT_LEN: fixed, whatever tcp_fin_timeout says). */
const TIME_WAIT_LASTS_MS = 60_000;
/**
 * An agent started this long after its process (attached, or started by the program later on)
 * may have missed connections the process closed just before: within TIME_WAIT_LASTS_MS of its
 * start, they could still be in TIME_WAIT. (A preload starts within the process's first tenth of a second.)
 */
const STARTED_LATE_MS = 5000;

/**
 * The checks on what sockets cost the process beyond leaks: descriptors
 * against RLIMIT_NOFILE, and TIME_WAIT connections it caused. They run after
 * the periodic scan and tell through the same output.
 */
export class ResourceChecks {
  private readonly descriptorsCheck: DescriptorPressure | undefined;
  private timeWait: TimeWaitWatch | undefined;
  private readonly followed: FollowedClients | undefined;
  private nextTimeWaitAt = 0;
  /** Scans until TIME_WAIT is counted next, and how many apart counts are now (see TIME_WAIT_QUIET_EVERY_SCANS). */
  private scansToTimeWait = 1;
  private timeWaitEvery = TIME_WAIT_EVERY_SCANS;
  private quietDumps = 0;
  // When the agent started, whether that was late in its process's life, and the descriptors open
  // then (see couldOwnTimeWait; -1: not counted).
  private readonly startedAt = realNow();
  private readonly startedLate = process.uptime() * 1000 > STARTED_LATE_MS;
  private readonly openAtStart: number;
  // What the checks took so far (CPU time of this thread), and what the last one that walked the
  // namespace took per connection in it.
  private spentMs = 0;
  private msPerConnection: number;

  /** @param onInternalError told of an unexpected error in the checks' own timers (once, by the agent). */
  constructor(
    binding: KernelReader,
    private readonly options: ResolvedOptions,
    onInternalError: (error: unknown) => void,
  ) {
    this.descriptorsCheck = options.fdWarnPercent > 0 ? new DescriptorPressure(binding, options.fdWarnPercent / 100) : undefined;
    this.timeWait = options.timeWaitWarn > 0 ? new TimeWaitWatch(binding, options.timeWaitWarn, options.reportIntervalMs, realNow()) : undefined;
    this.followed = this.timeWait && new FollowedClients(this.timeWait, binding, (stack) => this.place(stack), onInternalError);
    // Sockets from before start() are among these; one listing of /proc/self/fd, at start only.
    this.openAtStart = this.timeWait ? openDescriptors(binding) : -1;
    this.msPerConnection = binding.readsWholeTables ? DUMP_MS_PER_ROW_READ : DUMP_MS_PER_CONNECTION;
  }

  /** What the socket sources must tell these checks. */
  hooks(): SourceHooks {
    const watch = this.timeWait;
    const followed = this.followed;
    if (!watch || !followed) return {};
    return {
      listening: (server: Server, listenStack: StackCapture | undefined) => {
        const address = server.address();
        if (address && typeof address === 'object') watch.addListeningPort(address.port, this.place(listenStack));
      },
      // Followed only while TIME_WAIT piles up in the namespace, and one socket in some (see follows()).
      followsClient: () => watch.follows(),
      followClient: (socket, oneIn, creation, usedForHttp) => followed.add(socket, oneIn, creation, usedForHttp),
    };
  }

  /** The agent stopped: nothing is followed any more. */
  stop(): void {
    this.followed?.stop();
  }

  /** Client sockets followed for TIME_WAIT so far (their 4-tuples read). */
  get clientsFollowed(): number {
    return this.followed?.followed ?? 0;
  }

  /** Open descriptors and the limit at the last check (-1: not counted), for metrics. */
  get descriptors(): { open: number; limit: number } {
    return this.descriptorsCheck?.last ?? { open: -1, limit: -1 };
  }

  /** TIME_WAIT connections this process caused, for metrics: the last check's count, else counted now (-1: cannot tell). */
  get timeWaitCount(): number {
    try {
      return this.timeWait?.countNow() ?? -1;
    } catch {
      return -1; // this platform cannot list TIME_WAIT connections
    }
  }

  /** Whether open descriptors are past the warning level (and have not eased since). */
  get descriptorsShort(): boolean {
    return this.descriptorsCheck?.underPressure ?? false;
  }

  /**
   * Runs after a periodic scan: `sites` names where the tracked sockets come from, measuring them
   * all; `peers`, the ends the open client sockets connect to (see TimeWaitWatch.check);
   * `socketsSeen`, how many sockets the agent has seen made or accepted since it started.
   */
  afterScan(trackedSockets: number, sites: () => SocketSite[], now: number, peers?: () => Peer[], socketsSeen?: number): Notice[] {
    const notices: Notice[] = [];
    const pressure = this.descriptorsCheck?.check(trackedSockets, sites, now);
    if (pressure) notices.push(pressure);
    this.timeWait?.pace(now);
    if (this.timeWait && --this.scansToTimeWait <= 0 && now >= this.nextTimeWaitAt && this.couldOwnTimeWait(this.timeWait.threshold, socketsSeen, now)) {
      const warning = this.countTimeWait(this.timeWait, now, peers);
      if (warning) notices.push(warning);
    }
    return notices;
  }

  /** Counts TIME_WAIT now, if that fits the budget since start (else at the first scan it does). */
  private countTimeWait(watch: TimeWaitWatch, now: number, peers: (() => Peer[]) | undefined): Notice | undefined {
    try {
      const total = namespaceTimeWait();
      const affordableAt = this.affordableAt(total, watch);
      if (now < affordableAt) {
        this.nextTimeWaitAt = affordableAt;
        return undefined;
      }
      // CPU time, not wall time: the budget is a share of a core, and on a busy machine a check
      // waiting for one took several times its CPU time, which spaced the checks out for nothing.
      const started = threadCpuMs();
      const warning = watch.check(now, peers, total);
      const tookMs = threadCpuMs() - started;
      this.spentMs += tookMs;
      if (watch.walked && total > 0) this.msPerConnection = tookMs / total;
      this.nextTimeWaitAt = now + tookMs / TIME_WAIT_BUDGET;
      this.quietDumps = watch.lastDumpFarBelow ? this.quietDumps + 1 : 0;
      this.timeWaitEvery = this.quietDumps >= 2 ? Math.min(this.timeWaitEvery * 2, TIME_WAIT_QUIET_EVERY_SCANS) : TIME_WAIT_EVERY_SCANS;
      this.scansToTimeWait = this.timeWaitEvery;
      return warning;
    } catch {
      // This platform cannot list TIME_WAIT connections (the addon says ENOTSUP): stop asking.
      this.timeWait = undefined;
      return undefined;
    }
  }

  /**
   * From when a check fits TIME_WAIT_BUDGET counted from the agent's start: what the checks took
   * so far and what this one would take, the namespace's `total` walked at the cost per connection
   * the last walk took (or DUMP_MS_PER_CONNECTION before one), within 0.5% of the time since start.
   * The spacing after each check (200 times the CPU time it took) cannot bound the first one: a
   * process serving new connections in a namespace of 130,000 TIME_WAIT spent 53 to 84 ms on it
   * (two walks then, one per address family) two seconds after it started, 2 to 3% of its CPU time
   * then (a short-lived process paid that whole; the first count now waits about 13 s there). A
   * check that cannot walk the namespace (see TimeWaitWatch.mayWalk), or whose total cannot be read
   * to price it: no wait then.
   */
  private affordableAt(total: number, watch: TimeWaitWatch): number {
    if (total < 0 || !watch.mayWalk(total)) return 0;
    return this.startedAt + (this.spentMs + total * this.msPerConnection) / TIME_WAIT_BUDGET;
  }

  /**
   * Whether this process could own enough TIME_WAIT connections to count: a connection it closed
   * first, at most TIME_WAIT_LASTS_MS ago. Those are among the sockets the agent has seen made or
   * accepted, and the descriptors open when it started; where the two together are under a
   * quarter of the threshold, no count can find a pile of its own, and the namespace is not
   * dumped (a dump walks every TIME_WAIT connection of the namespace, whoever's: 15 ms at 14,000,
   * which a keep-alive client's first check spent in a pile a neighbour made). The bound only
   * grows, so once it is reached the counts go on as before. Not used where the caller does not
   * say how many sockets were seen, nor while connections closed before a late start could
   * still be in TIME_WAIT.
   */
  private couldOwnTimeWait(threshold: number, socketsSeen: number | undefined, now: number): boolean {
    if (socketsSeen === undefined || !(this.openAtStart >= 0) || (this.startedLate && now - this.startedAt < TIME_WAIT_LASTS_MS)) return true;
    return (socketsSeen + this.openAtStart) * TIME_WAIT_NEAR >= threshold;
  }

  private place(stack: StackCapture | undefined): string | null {
    const location = locate(stack, this.options.skipNodeModules);
    return location ? formatLocation(location) : null;
  }
}

/** The process's open descriptors, or -1 where they cannot be counted. */
function openDescriptors(binding: KernelReader): number {
  try {
    return binding.countDescriptors();
  } catch {
    return -1;
  }
}
