/**
 * `tcp-leak-agent attach <pid>`: names the code behind leaks that already
 * happened in a Node.js process started without the agent. It opens the
 * process's inspector the way `node inspect -p` does (SIGUSR1, 127.0.0.1:9229),
 * finds its JavaScript sockets (Runtime.queryObjects on net.Socket's
 * prototype), loads the agent's after-the-fact pass from this package into
 * it (src/agent/after-the-fact.ts), and closes the inspector again. While the
 * inspector is open any local user can run code in the process: the window is
 * kept short, measured and printed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../common/errors';
import { readArguments } from './arguments';
import { DIST_DIR, PACKAGE_ROOT } from '../common/package-paths';
import type { AfterTheFact } from '../agent/after-the-fact';

const INSPECTOR_HOST = '127.0.0.1';
const INSPECTOR_PORT = 9229;
/** How long the process gets to open (and later close) its inspector. */
const INSPECTOR_WAIT_MS = 5000;

export const ATTACH_USAGE = `Usage: tcp-leak-agent attach <pid> [--format text|json] [--stay] [--output <path>]

Looks into a running Node.js process started without the agent and reports its
leaked TCP sockets with the code behind them: the functions attached to each
socket and its request or server, the pending request, addresses, state. Opens
the process's inspector on ${INSPECTOR_HOST}:${INSPECTOR_PORT} (SIGUSR1) for the moment it takes,
then closes it; the process keeps running.

Exit code: 1 when leaks were found, 0 when none, 2 when it could not attach.

Options:
  --format <text|json>   the reports' format (default text)
  --stay                 leave the agent running in the process: new sockets get
                         full evidence from then on (reports go to the process's
                         stderr, or to --output)
  --output <path>        with --stay: where the agent in the process writes
`;

interface AttachOptions {
  pid: number;
  format: 'text' | 'json';
  stay: boolean;
  output: string | undefined;
}

/** One line, exit 2: why the process could not be attached to. It is left untouched. */
class CannotAttach extends Error {}

function parse(argv: string[]): AttachOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { format: { type: 'string' }, stay: { type: 'boolean' }, output: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new UsageError(`attach: ${(error as Error).message.split('\n')[0]} (see tcp-leak-agent attach --help)`);
  }
  if (parsed.values.help) return 'help';
  const [pidText, ...extra] = parsed.positionals;
  if (pidText === undefined || extra.length > 0 || !/^\d+$/.test(pidText)) {
    throw new UsageError(`attach: expected one process id, as in: tcp-leak-agent attach 4242 (got ${JSON.stringify(parsed.positionals.join(' '))})`);
  }
  const format = parsed.values.format ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError(`attach: --format=${JSON.stringify(format)} is not accepted: expected "text" or "json"`);
  if (parsed.values.output !== undefined && !parsed.values.stay) throw new UsageError('attach: --output goes with --stay (it is where the agent left in the process writes)');
  return { pid: Number(pidText), format, stay: parsed.values.stay === true, output: parsed.values.output };
}

/** Runs `attach`; resolves with the exit code. */
export async function attach(argv: string[]): Promise<number> {
  const read = readArguments(() => parse(argv), ATTACH_USAGE);
  if ('exitCode' in read) return read.exitCode;
  try {
    return await attachTo(read.options);
  } catch (error) {
    if (!(error instanceof CannotAttach)) throw error;
    process.stderr.write(`tcp-leak-agent attach: ${error.message}\n`);
    return 2;
  }
}

async function attachTo(options: AttachOptions): Promise<number> {
  const { pid } = options;
  checkProcess(pid);
  const already = inspectorOwner(pid);
  if (already === 'other') throw new CannotAttach(`the inspector port ${INSPECTOR_HOST}:${INSPECTOR_PORT} is taken by another process; pid ${pid} was not signalled`);
  const opened = performance.now();
  if (already === 'none') {
    process.kill(pid, 'SIGUSR1');
    if (!(await waitFor(() => inspectorOwner(pid) === 'target'))) {
      throw new CannotAttach(`pid ${pid} did not open its inspector on ${INSPECTOR_HOST}:${INSPECTOR_PORT} within ${INSPECTOR_WAIT_MS / 1000} s (started with --inspect-port elsewhere, or the port was taken meanwhile)`);
    }
  }
  let result: AfterTheFact;
  let session: Session | undefined;
  try {
    session = await Session.open(await debuggerUrl());
    result = await inspect(session, options);
  } finally {
    // Leave the inspector as it was found: closed, unless it was already open.
    if (already === 'none') await closeInspector(session, pid);
    else session?.close();
  }
  const openMs = performance.now() - opened;
  if (result.error) throw new CannotAttach(`pid ${pid}: ${result.error}`);
  if (result.text) process.stdout.write(result.text.endsWith('\n') ? result.text : `${result.text}\n`);
  const window = already === 'none' ? `its inspector (${INSPECTOR_HOST}:${INSPECTOR_PORT} only) was open for ${Math.round(openMs)} ms and is closed` : 'its inspector was already open and is left open';
  const found = result.leaks.length === 0 ? 'no leaked socket' : `${result.leaks.length} leaked socket${result.leaks.length === 1 ? '' : 's'}`;
  const stayed = options.stay ? `; the agent stays in the process (${options.output ? `writing to ${options.output}` : 'writing to its stderr'})` : '';
  process.stderr.write(`tcp-leak-agent attach: pid ${pid}: ${result.checked} TCP sockets checked, ${found}; ${window}${stayed}.\n`);
  return result.leaks.length > 0 ? 1 : 0;
}

/** The process exists, may be signalled by this user, is Node.js, and can open its inspector. */
function checkProcess(pid: number): void {
  try {
    process.kill(pid, 0);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') throw new CannotAttach(`no process with pid ${pid}`);
    if (code === 'EPERM') throw new CannotAttach(`pid ${pid} belongs to another user: run attach as that user (or root), as with kill`);
    throw error;
  }
  const args = readZeroSeparated(`/proc/${pid}/cmdline`);
  let exe = '';
  try {
    exe = fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    // Gone, or not readable: the command line decides.
  }
  if (!/node/i.test(path.basename(exe)) && !/node/i.test(path.basename(args[0] ?? ''))) {
    throw new CannotAttach(`pid ${pid} is not a Node.js process (${exe || args[0] || 'unknown executable'})`);
  }
  const nodeOptions = readZeroSeparated(`/proc/${pid}/environ`).find((entry) => entry.startsWith('NODE_OPTIONS=')) ?? '';
  if (args.includes('--disable-sigusr1') || nodeOptions.includes('--disable-sigusr1')) {
    throw new CannotAttach(`pid ${pid} was started with --disable-sigusr1: its inspector cannot be opened from outside (restart it with the agent: node --require tcp-leak-agent/register)`);
  }
}

function readZeroSeparated(file: string): string[] {
  try {
    return fs.readFileSync(file, 'latin1').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** Who listens on the inspector port in the process's network namespace: 'none', the target, or 'other'. */
function inspectorOwner(pid: number): 'none' | 'target' | 'other' {
  const hexPort = INSPECTOR_PORT.toString(16).toUpperCase().padStart(4, '0');
  const inodes: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    let lines: string[];
    try {
      lines = fs.readFileSync(`/proc/${pid}/net/${table}`, 'latin1').split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      const fields = line.trim().split(/\s+/);
      // Column 1 is local "address:port", column 3 the state (0A: LISTEN), column 9 the inode.
      if (fields.length > 9 && fields[1]!.endsWith(`:${hexPort}`) && fields[3] === '0A') inodes.push(fields[9]!);
    }
  }
  if (inodes.length === 0) return 'none';
  let links: string[] = [];
  try {
    links = fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    });
  } catch {
    return 'other';
  }
  return inodes.some((inode) => links.includes(`socket:[${inode}]`)) ? 'target' : 'other';
}

async function waitFor(done: () => boolean): Promise<boolean> {
  const deadline = Date.now() + INSPECTOR_WAIT_MS;
  while (Date.now() < deadline) {
    if (done()) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return done();
}

async function debuggerUrl(): Promise<string> {
  const response = await fetch(`http://${INSPECTOR_HOST}:${INSPECTOR_PORT}/json/list`);
  const targets = (await response.json()) as Array<{ webSocketDebuggerUrl?: string }>;
  const url = targets.find((target) => target.webSocketDebuggerUrl)?.webSocketDebuggerUrl;
  if (!url) throw new CannotAttach('the inspector answered with no debugging target');
  return url;
}

/** A Chrome DevTools Protocol session over the inspector's WebSocket. */
class Session {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();

  private constructor(private readonly socket: WebSocket) {
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string } };
      const waiting = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id!);
      if (message.error) waiting.reject(new Error(message.error.message));
      else waiting.resolve(message.result);
    });
    socket.addEventListener('close', () => {
      for (const waiting of this.pending.values()) waiting.reject(new Error('the inspector closed the connection'));
      this.pending.clear();
    });
  }

  static open(url: string): Promise<Session> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.addEventListener('open', () => resolve(new Session(socket)), { once: true });
      socket.addEventListener('error', () => reject(new CannotAttach(`could not connect to the inspector at ${url}`)), { once: true });
    });
  }

  post<T>(method: string, params: object = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.socket.close();
  }

  /** Resolves true once the other side closed the connection, false after `ms`. */
  closedWithin(ms: number): Promise<boolean> {
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.socket.addEventListener('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

interface RemoteObject {
  objectId?: string;
  value?: unknown;
}

/** Finds the process's sockets and runs the after-the-fact pass over them, in the process. */
async function inspect(session: Session, options: AttachOptions): Promise<AfterTheFact> {
  const group = 'tcp-leak-agent-attach';
  const prototype = await session.post<{ result: RemoteObject; exceptionDetails?: unknown }>('Runtime.evaluate', {
    expression: "process.getBuiltinModule('node:net').Socket.prototype",
    objectGroup: group,
  });
  if (!prototype.result.objectId) throw new CannotAttach('the process did not give its net.Socket prototype');
  const { objects } = await session.post<{ objects: RemoteObject }>('Runtime.queryObjects', { prototypeObjectId: prototype.result.objectId, objectGroup: group });
  // Runs in the process, with `this` the array of its sockets: this package's code, loaded from here.
  const inProcess = `function () {
    const load = process.getBuiltinModule('node:module').createRequire(${JSON.stringify(path.join(PACKAGE_ROOT, 'package.json'))});
    const result = load(${JSON.stringify(path.join(DIST_DIR, 'agent', 'after-the-fact.js'))}).leaksAfterTheFact(this, ${JSON.stringify(options.format)});
    ${options.stay ? `if (!result.error) load(${JSON.stringify(path.join(DIST_DIR, 'index.js'))}).start(${JSON.stringify(options.output ? { output: path.resolve(options.output) } : {})});` : ''}
    return JSON.stringify(result);
  }`;
  const called = await session.post<{ result: RemoteObject; exceptionDetails?: { exception?: { description?: string }; text?: string } }>('Runtime.callFunctionOn', {
    objectId: objects.objectId,
    functionDeclaration: inProcess,
    returnByValue: true,
  });
  await session.post('Runtime.releaseObjectGroup', { objectGroup: group });
  if (called.exceptionDetails) {
    const why = called.exceptionDetails.exception?.description?.split('\n')[0] ?? called.exceptionDetails.text ?? 'an exception';
    throw new CannotAttach(`the agent could not run in the process: ${why}`);
  }
  return JSON.parse(String(called.result.value)) as AfterTheFact;
}

/** Asks the process to close its inspector once this session is gone, then waits until the port is closed. */
async function closeInspector(session: Session | undefined, pid: number): Promise<void> {
  if (session) {
    // inspector.close() closes every connection itself: scheduled, so this call returns first, and
    // this side then waits for the process to close the connection rather than closing it at the
    // same moment (a disconnect racing the process's own close crashed Node in testing).
    await session
      .post('Runtime.evaluate', { expression: "setImmediate(() => process.getBuiltinModule('node:inspector').close()), undefined" })
      .catch(() => undefined);
    if (!(await session.closedWithin(INSPECTOR_WAIT_MS))) session.close();
  }
  if (!(await waitFor(() => inspectorOwner(pid) !== 'target'))) {
    process.stderr.write(`tcp-leak-agent attach: pid ${pid} still listens on ${INSPECTOR_HOST}:${INSPECTOR_PORT}: its inspector did not close, and any local user can run code in it until it does\n`);
  }
}
