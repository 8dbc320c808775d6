import * as fs from 'node:fs';
import type { Location } from '../common/types';

const MAX_FILE_BYTES = 4 * 1024 * 1024;
const MAX_LINE_CHARS = 160;

/**
 * The source line at `location` with a caret under its column, for the text
 * report; undefined when the file cannot be read (deleted, bundled, remote).
 * Read only when a report is written, never on the hot path.
 */
export function codeFrame(location: Location | null, indent = '    '): string | undefined {
  if (!location) return undefined;
  let text: string;
  try {
    if (fs.statSync(location.file).size > MAX_FILE_BYTES) return undefined;
    text = fs.readFileSync(location.file, 'utf8');
  } catch {
    return undefined;
  }
  const line = text.split(/\r?\n/)[location.line - 1];
  if (line === undefined) return undefined;
  const number = String(location.line);
  const shown = line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line;
  // Tabs before the column keep the caret aligned in terminals that expand them.
  const lead = line.slice(0, Math.max(0, location.column - 1)).replace(/[^\t]/g, ' ');
  const gutter = ' '.repeat(number.length);
  return `${indent}${number} | ${shown}\n${indent}${gutter} | ${lead}^`;
}
