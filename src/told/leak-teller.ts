import { leakChannel } from '../common/channels';
import type { Leak } from '../common/types';
import { emitLeakRecords } from './leak-log-records';
import type { AgentMetrics } from './metrics';
import { groupReport, ReportLimiter } from './report-limiter';
import type { Reporter } from './reporter';
import { realNow } from '../common/real-time';

/**
 * Tells a scan's leaks: grouped by place and rate-limited per place
 * (ReportLimiter) in the output; every socket still reaches the metrics, the
 * leak channel and onLeak.
 */
export class LeakTeller {
  /** How many leaks were told (periodic scans and the exit scan). */
  told = 0;
  private readonly limiter: ReportLimiter;

  constructor(
    private readonly reporter: Reporter,
    reportIntervalMs: number,
    private readonly onLeak: ((leak: Leak) => void) | undefined,
    private readonly onLeakThrew: (error: unknown) => void,
    /** The agent's version, for the OpenTelemetry logger's scope. */
    private readonly version: string,
  ) {
    this.limiter = new ReportLimiter(reportIntervalMs);
  }

  tell(leaks: Leak[], atExit: boolean, metrics: AgentMetrics | undefined): void {
    const now = realNow();
    const { groups, summaries } = this.limiter.admit(leaks, now);
    if (atExit) summaries.push(...this.limiter.flush(now));
    this.reporter.leaks(groups.map(groupReport));
    this.reporter.summaries(summaries);
    this.told += leaks.length;
    // Every socket, like the metrics: a backend counts and groups them itself.
    emitLeakRecords(leaks, this.version);
    for (const leak of leaks) {
      metrics?.leaked(leak.kind, 1);
      if (leakChannel.hasSubscribers) leakChannel.publish({ leak });
      if (!this.onLeak) continue;
      try {
        this.onLeak(leak);
      } catch (error) {
        this.onLeakThrew(error);
      }
    }
  }
}
