import { InvalidSettingError } from './errors';
import { SETTINGS } from './settings';
import type { AgentLogger, Leak, ReportFormat, StackLevel } from './types';

export { InvalidSettingError } from './errors';

/** Options of `start()`. Every field is optional; defaults live in `DEFAULT_OPTIONS`. */
export interface AgentOptions {
  /** How often the periodic scan runs, in ms. Default 1000. The timer never keeps the process alive. */
  intervalMs?: number;
  /** How long a socket must sit in CLOSE_WAIT, sending nothing, before it is a leak, in ms. Default 1000. */
  closeWaitMs?: number;
  /**
   * How long a socket may hold unread bytes while nothing reads it (paused, never consumed)
   * before it is a stalled reader, in ms. Default 60000: a healthy slow consumer keeps reading.
   */
  stallMs?: number;
  /** Report format: 'text' for people, 'json' for one object per line. Default 'text'. */
  format?: ReportFormat;
  /** Where reports go: 'stderr', 'none', or a file path (appended to). Default 'stderr'. */
  output?: string;
  /** Called once per leak, after it is written. Errors it throws are caught and reported once. */
  onLeak?: (leak: Leak) => void;
  /** Set the exit code to 1 when any leak was reported during the run or at exit. Default false. */
  failOnLeak?: boolean;
  /** Under GitHub Actions: annotations on the leaking lines and a job summary (default true). */
  annotations?: boolean;
  /** A JUnit XML file to write when the process exits. */
  junit?: string;
  /** Frames captured at socket creation. Deep enough to reach user code through fetch(). Default 50. */
  stackDepth?: number;
  /** Skip frames inside node_modules when choosing the location. Default true. */
  skipNodeModules?: boolean;
  /**
   * Which sockets and requests get a stack: 'all', 'sampled' (the first to each place, 1 in
   * stackSampleEvery at random, and every one to a place whose leak was told without a line,
   * until one is named) or 'off'.
   * Kernel state is checked for every socket whatever the level. Default 'sampled', and 'all'
   * in a test run (NODE_ENV=test, Vitest, Jest, node --test) and under the CLI and adapters.
   */
  stacks?: StackLevel;
  /**
   * With stacks 'sampled': capture one stack in this many sockets and requests, at random (and at
   * most about 10 a second: faster callers are sampled more sparsely). Default 200.
   */
  stackSampleEvery?: number;
  /**
   * Reports are grouped by place (file:line:column) and kind. After a place is reported, its
   * further leaks are counted and summed up in one line at most once per this many ms
   * (and at exit). Default 60000.
   */
  reportIntervalMs?: number;
  /**
   * Warn when open file descriptors reach this percentage of RLIMIT_NOFILE, with which places
   * hold the most sockets and in which states; and again at the limit itself. 0 turns it off. Default 80.
   */
  fdWarnPercent?: number;
  /**
   * Warn when this many connections this process closed first (its servers' listening ports,
   * its clients' recent 4-tuples) wait in TIME_WAIT. 0 turns it off. Default 5000.
   */
  timeWaitWarn?: number;
  /**
   * Report a connection as a dead peer when this many retransmissions (or zero-window probes)
   * in a row went unanswered while data waits. 0 turns it off. Default 5 (about 6 s at the
   * minimum retransmission timeout, longer on slower paths).
   */
  deadPeerRetries?: number;
  /**
   * Report a connection with TCP keepalive off that sent and received nothing for this long,
   * in ms: if the peer vanished, this side would never know. 0 (the default) turns it off.
   */
  idleMs?: number;
  /**
   * CPU time, in ms per second, the periodic scan may spend re-measuring sockets that cannot be
   * leaking now (reading, EOF not reached, nothing queued): the slow sweep, which finds dead and
   * idle peers. Sockets that can be leaking are measured at every scan whatever this says.
   * 0 measures only those. Default 5 (half a percent of one core).
   */
  sweepMsPerSecond?: number;
  /**
   * Send reports and warnings to this logger instead of the output: pino-style
   * `logger.warn(object, message)`, the report as the object, its first line as the message.
   */
  logger?: AgentLogger;
  /** A signal that makes the agent write a dump of every socket (for example 'SIGUSR2'). Off by default. */
  dumpSignal?: string;
  /**
   * Safety valve: destroy a socket this long after it was reported leaked, logging it with its
   * report, so a leaking service keeps serving until the fix ships. 0 (the default) turns it off.
   */
  destroyLeakedAfterMs?: number;
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  intervalMs: number;
  closeWaitMs: number;
  stallMs: number;
  format: ReportFormat;
  output: string;
  onLeak: ((leak: Leak) => void) | undefined;
  failOnLeak: boolean;
  annotations: boolean;
  junit: string | undefined;
  stackDepth: number;
  skipNodeModules: boolean;
  stacks: StackLevel;
  stackSampleEvery: number;
  reportIntervalMs: number;
  fdWarnPercent: number;
  timeWaitWarn: number;
  deadPeerRetries: number;
  idleMs: number;
  sweepMsPerSecond: number;
  logger: AgentLogger | undefined;
  dumpSignal: NodeJS.Signals | undefined;
  destroyLeakedAfterMs: number;
}

/** The defaults, in one place: the settings table's. */
export const DEFAULT_OPTIONS: Readonly<ResolvedOptions> = Object.freeze(
  Object.fromEntries(SETTINGS.map((setting) => [setting.option, setting.default])) as unknown as ResolvedOptions,
);

export { DUMP_SIGNALS } from './settings';

/** Merges options with the defaults and checks each (see settings.ts); throws InvalidSettingError naming the option. */
export function resolveOptions(input: AgentOptions | undefined, names: Partial<Record<keyof AgentOptions, string>> = {}): ResolvedOptions {
  const given = (input ?? {}) as Record<string, unknown>;
  if (typeof given !== 'object') throw new InvalidSettingError('options', given, 'expected an object');
  const known = SETTINGS.map((setting) => setting.option);
  for (const key of Object.keys(given)) {
    if (!known.includes(key)) throw new InvalidSettingError(key, given[key], `unknown option; accepted options are ${known.join(', ')}`);
  }
  const resolved: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const name = names[setting.option as keyof AgentOptions] ?? setting.option;
    // The stack level's default depends on where the agent runs.
    const fallback = setting.option === 'stacks' ? defaultStackLevel() : setting.default;
    resolved[setting.option] = setting.check(given[setting.option] === undefined ? fallback : given[setting.option], name);
  }
  return resolved as unknown as ResolvedOptions;
}

/**
 * The level when none is given: 'all' inside a test run, where precision
 * matters more than microseconds, 'sampled' everywhere else.
 */
export function defaultStackLevel(env: NodeJS.ProcessEnv = process.env): StackLevel {
  const testRun =
    env.NODE_ENV === 'test' ||
    env.VITEST !== undefined ||
    env.JEST_WORKER_ID !== undefined ||
    env.NODE_TEST_CONTEXT !== undefined;
  return testRun ? 'all' : 'sampled';
}
