import { toPath } from '../common/stack';
import type { Location } from '../common/types';

/** The slice of node:inspector's in-process Session the agent uses. */
export interface InspectorSession {
  connect(): void;
  disconnect(): void;
  post(method: string, params: object, callback: (error: Error | null, result?: unknown) => void): void;
  on(event: string, listener: (message: { params: { scriptId: string; url: string; sourceMapURL?: string } }) => void): void;
}

/** Properties set on globalThis for the moment the inspector reads a function: unlikely to clash with a program's. */
const HANDOFF = '__tcpLeakAgentFunctionToLocate';

/**
 * Where functions were written, read through Node's in-process inspector when a
 * report is built: the listeners and callbacks attached to a leaked socket and
 * its request, response and server are the program's own code, and V8 knows
 * each one's [[FunctionLocation]]. Nothing runs until a report asks.
 *
 * Cost: a session is opened for one batch of functions and closed after it.
 * Each function costs about half a millisecond; a script the cache does not
 * know turns the debugger on for the batch (every loaded script is listed
 * once: about 10 ms in a small program, 65 ms the first time) and off again.
 * Any failure (no inspector in this build, a refused call) leaves the
 * location unknown: a report never fails for it.
 */
export class FunctionLocator {
  private readonly scriptUrls = new Map<string, string>();

  /** Each function's location (1-based line and column), or null when it cannot be told. */
  locate(functions: readonly unknown[]): Array<Location | null> {
    const found: Array<Location | null> = functions.map(() => null);
    if (functions.length === 0) return found;
    let session: InspectorSession | undefined;
    try {
      const { Session } = require('node:inspector') as { Session: new () => InspectorSession };
      session = new Session();
      session.connect();
      const post = postSync(session);
      const raw = functions.map((fn) => (typeof fn === 'function' ? this.rawLocation(post, fn) : undefined));
      if (raw.some((location) => location && !this.scriptUrls.has(location.scriptId))) this.learnScripts(session, post);
      raw.forEach((location, i) => {
        const url = location && this.scriptUrls.get(location.scriptId);
        if (location && url) found[i] = { file: toPath(url), line: location.lineNumber + 1, column: location.columnNumber + 1 };
      });
      post('Runtime.releaseObjectGroup', { objectGroup: 'tcp-leak-agent' });
    } catch {
      // No inspector, or it refused: the locations stay unknown.
    } finally {
      try {
        session?.disconnect();
      } catch {
        // already gone
      }
    }
    return found;
  }

  private rawLocation(post: Post, fn: unknown): { scriptId: string; lineNumber: number; columnNumber: number } | undefined {
    const holder = globalThis as Record<string, unknown>;
    holder[HANDOFF] = fn;
    try {
      const evaluated = post('Runtime.evaluate', { expression: `globalThis.${HANDOFF}`, objectGroup: 'tcp-leak-agent' }) as { result?: { objectId?: string } };
      const objectId = evaluated.result?.objectId;
      if (!objectId) return undefined;
      const properties = post('Runtime.getProperties', { objectId, ownProperties: true }) as {
        internalProperties?: Array<{ name: string; value?: { value?: { scriptId: string; lineNumber: number; columnNumber: number } } }>;
      };
      return properties.internalProperties?.find((property) => property.name === '[[FunctionLocation]]')?.value?.value;
    } finally {
      delete holder[HANDOFF];
    }
  }

  /** scriptId -> URL comes only from the debugger's list of scripts: turned on for this, then off. */
  private learnScripts(session: InspectorSession, post: Post): void {
    session.on('Debugger.scriptParsed', ({ params }) => {
      if (params.url) this.scriptUrls.set(params.scriptId, params.url);
    });
    post('Debugger.enable', {});
    post('Debugger.disable', {});
  }
}

type Post = (method: string, params: object) => unknown;

/** An in-process session answers synchronously: the callback has run when post() returns. */
export function postSync(session: InspectorSession): Post {
  return (method, params) => {
    let failure: Error | null = null;
    let answer: unknown;
    session.post(method, params, (error, result) => {
      failure = error;
      answer = result;
    });
    if (failure) throw failure;
    return answer;
  };
}
