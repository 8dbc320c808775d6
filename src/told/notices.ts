import { formatEndpoint } from '../common/endpoints';
import type { DescriptorWarning } from '../explained/descriptor-pressure';
import type { SocketDump } from '../explained/dump';
import { formatDuration, formatTextReport } from './report-text';
import { formatSites } from '../explained/socket-sites';
import { formatLocation } from '../common/stack';
import type { TimeWaitWarning } from '../measured/time-wait';
import type { Leak, ReportFormat } from '../common/types';

/** A leaked socket the safety valve destroyed, with its report. */
export interface DestroyedNotice {
  type: 'destroyed';
  /** How long it had been reported leaked. */
  leakedMs: number;
  /** The valve's setting (destroyLeakedAfterMs). */
  afterMs: number;
  leak: Leak;
}

/** What the agent tells besides leak reports. */
export type Notice = DescriptorWarning | TimeWaitWarning | SocketDump | DestroyedNotice;

/** Socket lines in a text dump at most; the JSON dump has them all. */
const DUMP_LINES = 1000;

/** The first line of a notice: what a log line's message is. */
export function noticeHeadline(notice: Notice): string {
  if (notice.type === 'dump') {
    const { open, limit } = notice.descriptors;
    const fds = open >= 0 ? `, ${open} of ${limit > 0 ? limit : '?'} file descriptors open` : '';
    return `tcp-leak-agent: dump of ${notice.sockets.length} TCP sockets at ${notice.at} (pid ${notice.pid}, backend ${notice.backend}${fds})`;
  }
  if (notice.type === 'destroyed') {
    return (
      `tcp-leak-agent: destroyed a leaked TCP socket (fd ${notice.leak.fd}) after ${formatDuration(notice.leakedMs)} ` +
      `(safety valve: destroyLeakedAfterMs ${notice.afterMs}); the program keeps serving, the bug is still there`
    );
  }
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
    const sampled = source.sampledOneIn ? ` (about: one socket in ${source.sampledOneIn} is followed)` : '';
    const who = source.side === 'server' ? `closed by this process's server on ${source.endpoint}` : `closed by this process's clients of ${source.endpoint}${sampled}`;
    const where = source.place ? `${source.place}: ` : '';
    return `  ${String(source.count).padStart(6)}  ${where}${who}. Why: ${source.hint}.\n`;
  });
  return `${noticeHeadline(notice)}.\n${lines.join('')}`;
}

function dumpText(dump: SocketDump): string {
  const lines = dump.sockets.slice(0, DUMP_LINES).map((socket) => {
    const arrow = socket.origin === 'server' ? '<-' : '->';
    const where = socket.location ? formatLocation(socket.location) : '(no creation stack)';
    return `  fd ${String(socket.fd).padEnd(5)} ${socket.state.padEnd(11)} ${socket.kind.padEnd(11)} ${socket.origin.padEnd(7)} ${formatEndpoint(socket.local)} ${arrow} ${formatEndpoint(socket.remote)}  ${where}\n`;
  });
  const more = dump.sockets.length > DUMP_LINES ? `  ... and ${dump.sockets.length - DUMP_LINES} more (the JSON dump lists them all)\n` : '';
  return `${noticeHeadline(dump)}.\n  By where they were opened:\n${formatSites(dump.sites)}  Each socket:\n${lines.join('')}${more}`;
}

/** A notice as text (headline, then one line per site or source) or one JSON line. */
export function formatNotice(notice: Notice, format: ReportFormat): string {
  if (format === 'json') return JSON.stringify({ tool: 'tcp-leak-agent', pid: process.pid, ...notice }) + '\n';
  switch (notice.type) {
    case 'descriptor-pressure':
      return descriptorText(notice);
    case 'time-wait':
      return timeWaitText(notice);
    case 'dump':
      return dumpText(notice);
    case 'destroyed':
      return `${noticeHeadline(notice)}. Its report:\n${formatTextReport(notice.leak)}`;
  }
}
