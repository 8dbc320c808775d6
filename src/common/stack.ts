import * as path from 'node:path';
import { DIST_DIR } from './package-paths';
import { fileURLToPath } from 'node:url';
import type { Location } from './types';

/**
 * A captured, not yet formatted, stack. V8 records the frames when
 * Error.captureStackTrace runs (a few µs) and formats them only when `.stack`
 * is first read, which the agent does only when it reports. Formatting is
 * where source maps apply, so a lazily read stack gets them too.
 *
 * The captured frames hold their receivers (often the socket itself), so a
 * capture must only ever be stored where the socket is a weak key.
 */
export interface StackCapture {
  stack?: unknown;
}

/** Records the current stack, `depth` frames deep, without formatting it. */
export function captureStack(depth: number): StackCapture {
  const holder: StackCapture = {};
  const limit = Error.stackTraceLimit;
  try {
    Error.stackTraceLimit = depth;
    Error.captureStackTrace(holder, captureStack);
  } finally {
    Error.stackTraceLimit = limit;
  }
  return holder;
}

/** One parsed "at ..." line. */
export interface Frame {
  text: string;
  function?: string;
  file?: string;
  line?: number;
  column?: number;
}

// "fn (file:1:2)", "file:1:2", "async fn (file:1:2)", "new Foo (file:1:2)".
const FRAME = /^(?:(.+?) \()?(.+?):(\d+):(\d+)\)?$/;

/** Reads the frames of a capture. Formats it on first use. */
export function framesOf(capture: StackCapture | undefined): Frame[] {
  if (!capture) return [];
  let stack: unknown;
  try {
    stack = capture.stack;
  } catch {
    return [];
  }
  if (typeof stack !== 'string') return [];
  const frames: Frame[] = [];
  for (const raw of stack.split('\n')) {
    const text = raw.trim();
    if (!text.startsWith('at ')) continue;
    const match = FRAME.exec(text.slice(3));
    if (!match) {
      frames.push({ text });
      continue;
    }
    const fn = match[1]?.replace(/^async /, '');
    frames.push({ text, function: fn, file: match[2], line: Number(match[3]), column: Number(match[4]) });
  }
  return frames;
}

const AGENT_DIR = DIST_DIR + path.sep;

function isInternal(file: string | undefined): boolean {
  if (!file) return true;
  if (file.startsWith('node:') || file.startsWith('internal/')) return true;
  return !file.includes('/') && !file.includes('\\');
}

function isAgent(file: string): boolean {
  return toPath(file).startsWith(AGENT_DIR);
}

/** A file: URL as a path (V8 names ES modules by URL); anything else as it is. */
export function toPath(file: string): string {
  if (!file.startsWith('file://')) return file;
  try {
    return fileURLToPath(file);
  } catch {
    return file;
  }
}

/** Whether a file is a dependency's (under node_modules). */
export function isDependency(file: string): boolean {
  return file.includes('/node_modules/') || file.includes('\\node_modules\\');
}

/**
 * The frames worth showing: everything below the agent's own frames and the
 * diagnostics_channel / async_hooks machinery that called them.
 */
export function trimFrames(frames: Frame[]): Frame[] {
  let start = 0;
  while (start < frames.length) {
    const file = frames[start]!.file;
    const plumbing =
      file === undefined ||
      isAgent(file) ||
      file.startsWith('node:diagnostics_channel') ||
      file.startsWith('node:internal/async_hooks') ||
      file.startsWith('node:internal/dc');
    if (!plumbing) break;
    start++;
  }
  return frames.slice(start);
}

/**
 * The first frame of the user's code: not a Node internal, not the agent, and
 * (unless `skipNodeModules` is false) not a dependency. When every frame is a
 * dependency, the first dependency frame is better than nothing.
 */
export function userLocation(frames: Frame[], skipNodeModules: boolean): Location | null {
  let fallback: Frame | undefined;
  for (const frame of frames) {
    if (isInternal(frame.file) || isAgent(frame.file!)) continue;
    if (skipNodeModules && isDependency(frame.file!)) {
      fallback ??= frame;
      continue;
    }
    return toLocation(frame);
  }
  return fallback ? toLocation(fallback) : null;
}

function toLocation(frame: Frame): Location {
  const location: Location = { file: toPath(frame.file!), line: frame.line!, column: frame.column! };
  if (frame.function && frame.function !== '<anonymous>') location.function = frame.function;
  return location;
}

/** The program's line in a capture: its first frame of user code, past the agent and Node (see userLocation). */
export function locate(capture: StackCapture | undefined, skipNodeModules: boolean): Location | null {
  return userLocation(trimFrames(framesOf(capture)), skipNodeModules);
}

/**
 * "file:line:column", the way editors and terminals link it. A position in compiled code (see
 * Location.compiled) is not the file's line, and is not written as one: "file (compiled 9:10)".
 */
export function formatLocation(location: Location | null): string {
  if (!location) return '<unknown location>';
  return location.compiled ? `${location.file} (compiled ${location.line}:${location.column})` : `${location.file}:${location.line}:${location.column}`;
}
