import { formatJsonReport, formatJsonSummary } from './report-json';
import { formatTextReport, formatTextSummary } from './report-text';
import type { Leak, LeakSummaryReport, ReportFormat } from '../common/types';

/** Formats leaks as text (a report per leak, separated by a blank line) or JSON lines. */
export function formatLeaks(leaks: readonly Leak[], format: ReportFormat = 'text'): string {
  if (format === 'json') return leaks.map(formatJsonReport).join('');
  return leaks.map(formatTextReport).join('\n');
}

/** Formats the one-line summaries of leaks held back by the rate limit. */
export function formatSummaries(summaries: readonly LeakSummaryReport[], format: ReportFormat = 'text'): string {
  return summaries.map(format === 'json' ? formatJsonSummary : formatTextSummary).join('');
}
