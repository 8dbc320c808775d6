/**
 * The slow sweep: which of the sockets that cannot be leaking now a periodic
 * scan measures anyway, within a CPU budget per second. Those sockets are
 * reading and have not reached EOF, so a peer's FIN cannot strand them; what
 * the sweep finds among them needs the kernel's queues (dead peers, idle
 * peers), and it is the safety net under the JavaScript signals.
 *
 * How the budget is spent depends on what a backend pays for:
 * - per socket (the addon: one getsockopt each): a rolling window of as many
 *   sockets as the budget pays for at the measured cost per socket, so every
 *   tracked socket is measured once every ceil(tracked / window) scans;
 * - per read (procfs: every read parses whole tables): all of them at once,
 *   then a pause that keeps the average within budget. Between sweeps a scan
 *   reads the tables only when some socket can be leaking.
 * With few sockets both measure everything at every scan, as a test run needs.
 */
export class Sweep {
  /** The window of this scan, in registry positions: [from, from + count) modulo the size. */
  private from = 0;
  private count = 0;
  private size = 0;
  private cursor = 0;
  /** Cost per measured socket (per-socket backends): a first guess, then a moving average. */
  private perSocketMs = 0.005;
  private nextWholeAt = 0;

  constructor(
    /** CPU time the sweep may take, in ms per second of running time; 0: no sweep. */
    private readonly msPerSecond: number,
    private readonly intervalMs: number,
    private readonly perRead: boolean,
  ) {}

  /** Plans this scan's window over `size` tracked sockets. */
  plan(size: number, now: number): void {
    this.size = size;
    this.from = size === 0 ? 0 : this.cursor % size;
    if (this.msPerSecond === 0 || size === 0) this.count = 0;
    else if (this.perRead) this.count = now >= this.nextWholeAt ? size : 0;
    else this.count = Math.min(size, Math.max(MIN_WINDOW, Math.floor((this.msPerSecond * this.intervalMs) / 1000 / this.perSocketMs)));
  }

  /** Whether the socket at this registry position is in this scan's window. */
  covers(position: number): boolean {
    if (this.count === 0) return false;
    if (this.count >= this.size) return true;
    const offset = position - this.from;
    return (offset < 0 ? offset + this.size : offset) < this.count;
  }

  /** After the scan: what it took and how many sockets it measured (the window and the suspects). */
  done(tookMs: number, measured: number, now: number): void {
    if (this.count === 0) return;
    this.cursor = this.from + this.count;
    if (this.perRead) {
      this.nextWholeAt = now + (tookMs * 1000) / this.msPerSecond;
    } else if (measured > 0) {
      this.perSocketMs = 0.7 * this.perSocketMs + 0.3 * Math.max(tookMs / measured, 0.0005);
    }
  }
}

/** The fewest sockets a window holds while the sweep is on, so its progress never stalls on a costly scan. */
const MIN_WINDOW = 64;
