import * as fs from 'node:fs';
import type { Location } from '../common/types';

const MAX_FILE_BYTES = 4 * 1024 * 1024;
const MAX_LINE_CHARS = 160;

/**
 * The line of the file on disk at `location`: undefined when the file cannot be read (deleted,
 * bundled, remote), null when the position cannot be in it (a line past its end, a column past
 * its line's end: what ran was not this text).
 */
function lineAt(location: Location): string | null | undefined {
  let text: string;
  try {
    if (fs.statSync(location.file).size > MAX_FILE_BYTES) return undefined;
    text = fs.readFileSync(location.file, 'utf8');
  } catch {
    return undefined;
  }
  const line = text.split(/\r?\n/)[location.line - 1];
  return line === undefined || location.column > line.length + 1 ? null : line;
}

/**
 * The source line at `location` with a caret under its column, for the text report; undefined
 * when the file cannot be read, when the position is in compiled code, or when it cannot be in
 * the file (see compiledNote). Read only when a report is written, never on the hot path.
 */
export function codeFrame(location: Location | null, indent = '    '): string | undefined {
  if (!location || location.compiled) return undefined;
  const line = lineAt(location);
  if (typeof line !== 'string') return undefined;
  const number = String(location.line);
  const shown = line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line;
  // Tabs before the column keep the caret aligned in terminals that expand them.
  const lead = line.slice(0, Math.max(0, location.column - 1)).replace(/[^\t]/g, ' ');
  const gutter = ' '.repeat(number.length);
  return `${indent}${number} | ${shown}\n${indent}${gutter} | ${lead}^`;
}

/**
 * Words for a location whose line and column are not the file's on disk (marked compiled, or a
 * position the file cannot hold), or undefined: no line of the file is shown for it.
 */
export function compiledNote(location: Location | null): string | undefined {
  if (!location || (!location.compiled && lineAt(location) !== null)) return undefined;
  return (
    `Line ${location.line}, column ${location.column} are in the code a loader compiled from ${location.file} (tsx, ts-node, a require hook), ` +
    'not in that file as it is on disk, and no source map came with it, so no line of the file is shown. ' +
    'Run with --enable-source-maps (NODE_OPTIONS=--enable-source-maps), or have the loader emit source maps, to name the source line.'
  );
}
