import { formatLeaks, formatSummaries } from './format';
import { formatNotice, noticeHeadline, type Notice } from './notices';
import type { Output } from './output';
import type { CiTeller } from './ci-teller';
import type { AgentLogger, Leak, LeakSummaryReport, ReportFormat } from '../common/types';

/**
 * Where everything the agent tells goes: the output (text or JSON lines), or
 * the application's logger, one call per report with the report as the
 * object and its first line as the message. A logger that throws is the
 * host's business, not a reason to stop: the error is dropped.
 */
export class Reporter {
  constructor(
    private readonly output: Output,
    private readonly format: ReportFormat,
    private readonly logger: AgentLogger | undefined,
    /** Where CI users look (annotations, job summary, JUnit), besides the output. */
    private readonly ci?: CiTeller,
  ) {}

  leaks(leaks: Leak[]): void {
    if (leaks.length === 0) return;
    this.ci?.leaks(leaks);
    if (!this.logger) return this.output(formatLeaks(leaks, this.format));
    for (const leak of leaks) this.log('warn', { tool: 'tcp-leak-agent', ...leak }, formatLeaks([leak], 'text').split('\n', 1)[0]!);
  }

  summaries(summaries: LeakSummaryReport[]): void {
    if (summaries.length === 0) return;
    this.ci?.summaries(summaries);
    if (!this.logger) return this.output(formatSummaries(summaries, this.format));
    for (const summary of summaries) this.log('warn', { tool: 'tcp-leak-agent', ...summary }, formatSummaries([summary], 'text').trimEnd());
  }

  notice(notice: Notice): void {
    this.ci?.notice(notice);
    if (!this.logger) return this.output(formatNotice(notice, this.format));
    this.log(notice.type === 'dump' ? 'info' : 'warn', { tool: 'tcp-leak-agent', ...notice }, noticeHeadline(notice));
  }

  /** The process is exiting: the files CI reads at the end of a run. */
  finish(): void {
    this.ci?.finish();
  }

  private log(level: 'warn' | 'info', object: object, message: string): void {
    try {
      if (level === 'info' && typeof this.logger!.info === 'function') this.logger!.info(object, message);
      else this.logger!.warn(object, message);
    } catch {
      // The application's logger failed: nothing the agent can do that would not make it worse.
    }
  }
}
