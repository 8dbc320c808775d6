import type { DescriptorWarning } from './descriptor-pressure';
import { formatSites } from './socket-sites';
import type { TimeWaitWarning } from './time-wait';
import type { ReportFormat } from './types';

/** What the agent tells besides leak reports. */
export type Notice = DescriptorWarning | TimeWaitWarning;

/** The first line of a notice: what a log line's message is. */
export function noticeHeadline(notice: Notice): string {
  if (notice.type === 'descriptor-pressure') {
    const percent = Math.round((100 * notice.open) / notice.limit);
    return notice.level === 'exhausted'
      ? `tcp-leak-agent: file descriptors exhausted: ${notice.open} of ${notice.limit} open; new connects and accepts fail with EMFILE ("too many open files")`
      : `tcp-leak-agent: ${notice.open} of ${notice.limit} file descriptors open (${percent}%, warning at ${Math.round(notice.warnAt * 100)}%); at the limit, connects and accepts fail with EMFILE`;
  }
  return (
    `tcp-leak-agent: ${notice.count} connections this process closed first wait in TIME_WAIT (warning at ${notice.threshold}; ` +
    `${notice.namespaceTotal} in the network namespace); each holds its 4-tuple for 60 s, and a client running out of them fails with EADDRNOTAVAIL`
  );
}

function descriptorText(notice: DescriptorWarning): string {
  const others = notice.open - notice.trackedSockets;
  return (
    `${noticeHeadline(notice)}.\n` +
    `  TCP sockets by where they were opened (${notice.trackedSockets} tracked):\n` +
    formatSites(notice.sites) +
    `  Other descriptors (files, pipes, sockets the agent does not track): ${Math.max(0, others)}\n`
  );
}

function timeWaitText(notice: TimeWaitWarning): string {
  const lines = notice.sources.map((source) => {
    const who = source.side === 'server' ? `closed by this process's server on ${source.endpoint}` : `closed by this process's clients of ${source.endpoint}`;
    const where = source.place ? `${source.place}: ` : '';
    return `  ${String(source.count).padStart(6)}  ${where}${who}. Why: ${source.hint}.\n`;
  });
  return `${noticeHeadline(notice)}.\n${lines.join('')}`;
}

/** A notice as text (headline, then one line per site or source) or one JSON line. */
export function formatNotice(notice: Notice, format: ReportFormat): string {
  if (format === 'json') return JSON.stringify({ tool: 'tcp-leak-agent', pid: process.pid, ...notice }) + '\n';
  return notice.type === 'descriptor-pressure' ? descriptorText(notice) : timeWaitText(notice);
}
