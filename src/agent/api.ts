/**
 * The public functions behind the package's entry points: one agent per
 * thread, started once, and the checks callers run against it.
 */
import { Agent } from './agent';
import { AgentNotRunningError } from '../common/errors';
import type { VerifyOptions } from './checks';
import { ignoreSockets, type SocketIgnore } from './ignore';
import { processBackend, type BackendName } from '../measured/backend';
import { DEFAULT_OPTIONS, resolveOptions, type AgentOptions, type ResolvedOptions } from '../common/options';
import { openOutput } from '../told/output';
import type { SocketDump } from '../explained/dump';
import type { Leak, SocketSnapshot } from '../common/types';


// One agent per thread, even when two copies of this package are installed.
const AGENT = Symbol.for('tcp-leak-agent.agent');
type Holder = { [AGENT]?: Agent };

/**
 * Where kernel state comes from in this process: 'native' (the addon),
 * 'procfs' (Linux without the addon) or 'none' (no kernel state on this
 * platform, or the choice failed: start() then says why).
 * TCP_LEAK_AGENT_BACKEND=native|procfs forces one.
 */
export const backend: BackendName = (() => {
  try {
    return processBackend().name;
  } catch {
    return 'none';
  }
})();

/** The running agent of this thread, if any. */
export function currentAgent(): Agent | undefined {
  const agent = (globalThis as Holder)[AGENT];
  return agent?.running ? agent : undefined;
}

/** How settings are named in messages: option names for start(), variable names for the preload. */
export type SettingNames = Partial<Record<keyof AgentOptions, string>>;

/**
 * Starts the agent (once per thread; later calls return the running agent and
 * ignore their options). Never throws: a bad option or a missing native addon
 * is told in one line on stderr, and the returned agent is not running
 * (`agent.running === false`, `agent.startError` says why). When failOnLeak
 * was asked for, the exit code is then 1 so that CI cannot pass silently.
 */
export function start(options?: AgentOptions): Agent {
  return startWith(() => options, {}, options?.failOnLeak === true);
}

/**
 * start() for callers whose options can themselves be invalid (the preload
 * reads them from the environment): `readOptions` runs inside the same error
 * handling, and `names` are what settings are called in messages.
 */
export function startWith(readOptions: () => AgentOptions | undefined, names: SettingNames, failOnLeakRequested: boolean): Agent {
  const running = currentAgent();
  if (running) return running;
  let resolved: ResolvedOptions = { ...DEFAULT_OPTIONS };
  try {
    resolved = resolveOptions(readOptions(), names);
    const output = openOutput(resolved.output, names.output ?? 'output');
    const kernel = processBackend();
    if (kernel.notice) output(`tcp-leak-agent: ${kernel.notice}.\n`);
    const agent = new Agent(resolved, kernel.binding, output, undefined, kernel.name).start();
    (globalThis as Holder)[AGENT] = agent;
    return agent;
  } catch (error) {
    const reason = error instanceof Error ? error : new Error(String(error));
    openOutput('stderr', 'output')(`tcp-leak-agent: ${reason.message}. The agent is not running.\n`);
    if (failOnLeakRequested) {
      process.on('exit', () => {
        if (!process.exitCode) process.exitCode = 1;
      });
    }
    return new Agent(resolved, undefined, () => {}, reason);
  }
}

/** Stops the running agent: unsubscribes, clears its timer, forgets every socket. */
export function stop(): void {
  const agent = (globalThis as Holder)[AGENT];
  agent?.stop();
  delete (globalThis as Holder)[AGENT];
}

/**
 * Scans now: every tracked socket leaked at this moment (with `strict`, every
 * one still open). Empty when the agent is not running.
 */
export function findLeaks(options?: Pick<VerifyOptions, 'ignore' | 'strict' | 'test'>): Leak[] {
  return currentAgent()?.findLeaks(options) ?? [];
}

/**
 * Ignores every socket open right now, like goleak's IgnoreCurrent: take it
 * before the code under test runs, pass it to verifyNoLeaks after.
 */
export function ignoreCurrent(): SocketIgnore {
  const { sockets, untracked } = currentAgent()?.openSockets() ?? { sockets: [], untracked: [] };
  return ignoreSockets(sockets, `the ${sockets.length + untracked.length} socket(s) open when ignoreCurrent() was called`, untracked);
}

/**
 * Resolves when no tracked socket is leaked, after retrying for up to about a
 * second; rejects with SocketLeakError (message: the text report) otherwise,
 * or with ERR_TCP_LEAK_AGENT_NOT_RUNNING when the agent was never started.
 */
export function verifyNoLeaks(options?: VerifyOptions): Promise<void> {
  const agent = currentAgent();
  return agent ? agent.verifyNoLeaks(options) : Promise.reject(new AgentNotRunningError());
}

/**
 * Every TCP socket of the process with kernel state, kind and origin, and the places holding
 * the most: what TCP_LEAK_AGENT_DUMP_SIGNAL writes. Undefined when no agent is running.
 */
export function dump(): SocketDump | undefined {
  return currentAgent()?.dump();
}

/** Every TCP socket of this process the agent can see, with kernel state and origin. */
export function snapshot(): SocketSnapshot[] {
  return currentAgent()?.snapshot() ?? [];
}
