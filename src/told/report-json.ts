import type { Leak, LeakSummaryReport } from '../common/types';

/** One JSON object on one line, for log pipelines. `tool` marks the line as ours among other logs. */
export function formatJsonReport(leak: Leak): string {
  return JSON.stringify({ tool: 'tcp-leak-agent', ...leak }) + '\n';
}

export function formatJsonSummary(summary: LeakSummaryReport): string {
  return JSON.stringify({ tool: 'tcp-leak-agent', ...summary }) + '\n';
}
