import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { toPath } from '../common/stack';
import type { Location } from '../common/types';
import { postSync, type InspectorSession } from './function-locations';

/** Files larger than this are not compared (nor framed). */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

/** What V8 ran for a file, against what is on disk. */
type Verdict =
  /** The positions are the file's (the same text, or a loader that kept every line's length, as Node's type stripping does). */
  | { kind: 'as-is' }
  /** Compiled, with the transpiler's inline source map. */
  | { kind: 'mapped'; map: SourceMapLike }
  /** Compiled, and nothing maps it back. */
  | { kind: 'compiled' };

interface SourceMapLike {
  findEntry(line: number, column: number): { originalSource?: string; originalLine?: number; originalColumn?: number; name?: string } | Record<string, never>;
}

/**
 * Where a stack position is in the program's source. A loader that compiles a file in memory
 * (tsx, ts-node, babel's require hook) leaves V8 naming the file on disk with positions in the
 * compiled text; unless Node applied a source map, those positions are not that file's, and
 * a code frame read from disk would show an unrelated line. Asked only when a report is built:
 * the debugger lists the scripts V8 ran (as FunctionLocator does), their text is compared with
 * the file's, and where they differ, the transpiler's inline source map (a `sourceMappingURL`
 * data: URL in the compiled text) maps the position back; without one, the location is marked
 * `compiled` and no line of the file is shown. One verdict per file, kept.
 */
export class SourcePositions {
  private readonly verdicts = new Map<string, Verdict>();

  /**
   * `location` in the source, or marked compiled; unchanged when nothing says otherwise. `from`:
   * a stack's position, which a source-map hook may have mapped already, or a function's
   * location as V8 keeps it, always in the code that ran.
   */
  inSource(location: Location | null, from: 'stack' | 'function'): Location | null {
    if (!location || location.compiled) return location;
    // Mapped while the stack was formatted (Node's source maps, or a hook such as vitest's or
    // source-map-support's): the position is the source's already, and must not be mapped twice.
    if (from === 'stack' && stacksAreMapped()) return location;
    const verdict = this.verdictFor(location.file);
    if (verdict.kind === 'as-is') return location;
    if (verdict.kind === 'compiled') return { ...location, compiled: true };
    const entry = verdict.map.findEntry(location.line - 1, location.column - 1) as { originalSource?: string; originalLine?: number; originalColumn?: number };
    if (!entry.originalSource || entry.originalLine === undefined || entry.originalColumn === undefined) return { ...location, compiled: true };
    const file = sourcePath(entry.originalSource, location.file);
    return { file, line: entry.originalLine + 1, column: entry.originalColumn + 1, ...(location.function ? { function: location.function } : {}) };
  }

  private verdictFor(file: string): Verdict {
    let verdict = this.verdicts.get(file);
    if (!verdict) {
      verdict = this.judge(file);
      this.verdicts.set(file, verdict);
    }
    return verdict;
  }

  private judge(file: string): Verdict {
    let disk: string;
    try {
      if (fs.statSync(file).size > MAX_FILE_BYTES) return { kind: 'as-is' };
      disk = fs.readFileSync(file, 'utf8');
    } catch {
      return { kind: 'as-is' };
    }
    const ran = scriptsOf(file);
    // Not found among the scripts (or no inspector): nothing says the positions are not the file's.
    if (ran.length === 0) return { kind: 'as-is' };
    if (ran.some((script) => script.source !== undefined && sameLines(script.source, disk))) return { kind: 'as-is' };
    for (const script of ran) {
      const map = inlineMap(script.sourceMapURL);
      if (map) return { kind: 'mapped', map };
    }
    return { kind: 'compiled' };
  }
}

/** Node's own Error.prepareStackTrace: any other is a hook that may map positions. */
const NODE_PREPARE_STACK_TRACE = 'ErrorPrepareStackTrace';

/** Whether stacks are formatted with source maps applied (Node's, or a hook's). */
function stacksAreMapped(): boolean {
  const prepare = (Error as { prepareStackTrace?: unknown }).prepareStackTrace;
  return (process as { sourceMapsEnabled?: boolean }).sourceMapsEnabled === true || (typeof prepare === 'function' && prepare.name !== NODE_PREPARE_STACK_TRACE);
}

/** The same text, or every line the same length (Node's type stripping blanks types out in place). */
function sameLines(ran: string, disk: string): boolean {
  if (ran === disk) return true;
  const a = ran.split(/\r?\n/);
  const b = disk.split(/\r?\n/);
  // CommonJS modules run as they are; a trailing source-map comment may add a line.
  if (a.length < b.length) return false;
  return b.every((line, i) => line.length === a[i]!.length);
}

/** The scripts V8 ran for `file` (by path or file: URL): their text and source map URL. */
function scriptsOf(file: string): Array<{ source: string | undefined; sourceMapURL: string | undefined }> {
  const urls = new Set([file, pathToFileURL(file).href]);
  const found: Array<{ scriptId: string; sourceMapURL: string | undefined }> = [];
  let session: InspectorSession | undefined;
  try {
    const { Session } = require('node:inspector') as { Session: new () => InspectorSession };
    session = new Session();
    session.connect();
    const post = postSync(session);
    session.on('Debugger.scriptParsed', ({ params }) => {
      if (urls.has(params.url)) found.push({ scriptId: params.scriptId, sourceMapURL: params.sourceMapURL || undefined });
    });
    post('Debugger.enable', {});
    const scripts = found.map((script) => {
      try {
        const answer = post('Debugger.getScriptSource', { scriptId: script.scriptId }) as { scriptSource?: string };
        return { source: answer.scriptSource, sourceMapURL: script.sourceMapURL };
      } catch {
        return { source: undefined, sourceMapURL: script.sourceMapURL };
      }
    });
    post('Debugger.disable', {});
    return scripts;
  } catch {
    return [];
  } finally {
    try {
      session?.disconnect();
    } catch {
      // already gone
    }
  }
}

/** The source map of a `data:application/json[;base64],...` URL, or undefined. */
function inlineMap(url: string | undefined): SourceMapLike | undefined {
  if (!url?.startsWith('data:')) return undefined;
  try {
    const comma = url.indexOf(',');
    const header = url.slice(5, comma);
    const body = url.slice(comma + 1);
    const json = header.endsWith(';base64') ? Buffer.from(body, 'base64').toString('utf8') : decodeURIComponent(body);
    const { SourceMap } = require('node:module') as { SourceMap: new (payload: unknown) => SourceMapLike };
    return new SourceMap(JSON.parse(json));
  } catch {
    return undefined;
  }
}

/** A source map's source as a path: a file: URL, an absolute path, or a path relative to the compiled file. */
function sourcePath(source: string, compiledFile: string): string {
  if (source.startsWith('file://')) {
    try {
      return fileURLToPath(source);
    } catch {
      return source;
    }
  }
  return toPath(path.resolve(path.dirname(compiledFile), source));
}
