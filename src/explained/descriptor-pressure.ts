import type { KernelReader } from '../measured/kernel-reader';
import type { SocketSite } from './socket-sites';
import { realMonotonic } from '../common/real-time';

/** What the descriptor check found worth telling. */
export interface DescriptorWarning {
  type: 'descriptor-pressure';
  /** 'warning': past the threshold; 'exhausted': at the limit, where connects and accepts fail with EMFILE. */
  level: 'warning' | 'exhausted';
  open: number;
  limit: number;
  /** The threshold, as a fraction of the limit. */
  warnAt: number;
  /** Tracked TCP sockets among the open descriptors. */
  trackedSockets: number;
  sites: SocketSite[];
}

/**
 * Counting lists /proc/self/fd, about 1.4 µs per descriptor (25 ms at 18,000): counted within
 * this share of one core, and sooner when the tracked sockets alone could have crossed half the
 * way to the next line since the last count.
 */
const COUNT_BUDGET = 1 / 1000;

/** Leave this many below the limit: a process a descriptor or two short cannot accept or connect for long. */
const EXHAUSTED_MARGIN = 2;

/**
 * Watches open descriptors against RLIMIT_NOFILE. Tells once when usage
 * crosses the threshold, and again when it reaches the limit; each is told
 * again only after usage has dropped back below the threshold (by a margin,
 * so a count hovering at the line is not told at every scan).
 */
export class DescriptorPressure {
  private warned = false;
  private exhausted = false;
  /** The last count, for metrics. */
  last = { open: -1, limit: -1 };
  private nextCountAt = 0;
  private trackedAtCount = 0;

  constructor(
    private readonly binding: KernelReader,
    /** Fraction of the soft limit, 0 < warnAt <= 1. */
    private readonly warnAt: number,
  ) {}

  /** Counts when due; returns what to tell, if anything. `sites` is called only then. */
  check(trackedSockets: number, sites: () => SocketSite[], now: number): DescriptorWarning | undefined {
    if (!this.due(trackedSockets, now)) return undefined;
    const started = realMonotonic();
    const limit = this.binding.getDescriptorLimit().soft;
    if (!(limit > 0) || !Number.isFinite(limit)) return undefined;
    const open = this.binding.countDescriptors();
    this.last = { open, limit };
    this.trackedAtCount = trackedSockets;
    this.nextCountAt = now + (realMonotonic() - started) / COUNT_BUDGET;
    if (open < 0) return undefined;
    if (open < limit * this.warnAt * 0.95) {
      this.warned = false;
      this.exhausted = false;
      return undefined;
    }
    let level: DescriptorWarning['level'] | undefined;
    if (open >= limit - EXHAUSTED_MARGIN && !this.exhausted) level = 'exhausted';
    else if (open >= limit * this.warnAt && !this.warned) level = 'warning';
    if (!level) return undefined;
    this.warned = true;
    if (level === 'exhausted') this.exhausted = true;
    return { type: 'descriptor-pressure', level, open, limit, warnAt: this.warnAt, trackedSockets, sites: sites() };
  }

  /** Whether the last count was past the warning level, and has not eased below it since. */
  get underPressure(): boolean {
    return this.warned;
  }

  private due(trackedSockets: number, now: number): boolean {
    const { open, limit } = this.last;
    if (now >= this.nextCountAt || open < 0) return true;
    const nextLine = open < limit * this.warnAt ? limit * this.warnAt : limit - EXHAUSTED_MARGIN;
    return trackedSockets - this.trackedAtCount >= (nextLine - open) / 2;
  }
}
