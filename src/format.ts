import { formatJsonReport } from './report-json';
import { formatTextReport } from './report-text';
import type { Leak, ReportFormat } from './types';

/** Formats leaks as text (a report per leak, separated by a blank line) or JSON lines. */
export function formatLeaks(leaks: readonly Leak[], format: ReportFormat = 'text'): string {
  if (format === 'json') return leaks.map(formatJsonReport).join('');
  return leaks.map(formatTextReport).join('\n');
}
