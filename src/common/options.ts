import { InvalidSettingError } from './errors';
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
  /** Frames captured at socket creation. Deep enough to reach user code through fetch(). Default 50. */
  stackDepth?: number;
  /** Skip frames inside node_modules when choosing the location. Default true. */
  skipNodeModules?: boolean;
  /**
   * Which sockets get a creation stack: 'all', 'sampled' (1 in stackSampleEvery) or 'off'.
   * Kernel state is checked for every socket whatever the level. Default 'sampled', and 'all'
   * in a test run (NODE_ENV=test, Vitest, Jest, node --test) and under the CLI and adapters.
   */
  stacks?: StackLevel;
  /** With stacks 'sampled': capture one stack in this many. Default 10. */
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
  stackDepth: number;
  skipNodeModules: boolean;
  stacks: StackLevel;
  stackSampleEvery: number;
  reportIntervalMs: number;
  fdWarnPercent: number;
  timeWaitWarn: number;
  deadPeerRetries: number;
  idleMs: number;
  logger: AgentLogger | undefined;
  dumpSignal: NodeJS.Signals | undefined;
  destroyLeakedAfterMs: number;
}

/** The defaults, in one place. */
export const DEFAULT_OPTIONS: Readonly<ResolvedOptions> = Object.freeze({
  intervalMs: 1000,
  closeWaitMs: 1000,
  stallMs: 60_000,
  format: 'text',
  output: 'stderr',
  onLeak: undefined,
  failOnLeak: false,
  stackDepth: 50,
  skipNodeModules: true,
  stacks: 'sampled',
  stackSampleEvery: 10,
  reportIntervalMs: 60_000,
  fdWarnPercent: 80,
  timeWaitWarn: 5000,
  deadPeerRetries: 5,
  idleMs: 0,
  logger: undefined,
  dumpSignal: undefined,
  destroyLeakedAfterMs: 0,
});

const MAX_MS = 24 * 60 * 60 * 1000;

/**
 * Signals a dump may be asked with. Not SIGINT, SIGTERM and the like: listening to them would take
 * away their default of ending the process; not SIGUSR1: Node starts its inspector on it.
 */
export const DUMP_SIGNALS: readonly NodeJS.Signals[] = ['SIGUSR2', 'SIGHUP', 'SIGWINCH', 'SIGPWR', 'SIGTTIN', 'SIGTTOU'];

function wholeNumber(setting: string, value: unknown, min: number, max: number, unit: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidSettingError(setting, value, `expected a whole number of ${unit} from ${min} to ${max}`);
  }
  return value;
}

/** Merges options with the defaults and validates each; throws InvalidSettingError naming the option. */
export function resolveOptions(input: AgentOptions | undefined, names: Partial<Record<keyof AgentOptions, string>> = {}): ResolvedOptions {
  const given = input ?? {};
  if (typeof given !== 'object') throw new InvalidSettingError('options', given, 'expected an object');
  const name = (key: keyof AgentOptions) => names[key] ?? key;
  const known = new Set(Object.keys(DEFAULT_OPTIONS));
  for (const key of Object.keys(given)) {
    if (!known.has(key)) {
      throw new InvalidSettingError(key, (given as Record<string, unknown>)[key], `unknown option; accepted options are ${[...known].join(', ')}`);
    }
  }
  const pick = <K extends keyof ResolvedOptions>(key: K): unknown => (given[key] === undefined ? DEFAULT_OPTIONS[key] : given[key]);

  const format = pick('format');
  if (format !== 'text' && format !== 'json') throw new InvalidSettingError(name('format'), format, 'expected "text" or "json"');
  const output = pick('output');
  if (typeof output !== 'string' || output.length === 0) {
    throw new InvalidSettingError(name('output'), output, 'expected "stderr", "none" or a file path');
  }
  const onLeak = pick('onLeak');
  if (onLeak !== undefined && typeof onLeak !== 'function') throw new InvalidSettingError(name('onLeak'), onLeak, 'expected a function');
  const failOnLeak = pick('failOnLeak');
  if (typeof failOnLeak !== 'boolean') throw new InvalidSettingError(name('failOnLeak'), failOnLeak, 'expected true or false');
  const skipNodeModules = pick('skipNodeModules');
  if (typeof skipNodeModules !== 'boolean') throw new InvalidSettingError(name('skipNodeModules'), skipNodeModules, 'expected true or false');
  const logger = pick('logger');
  if (logger !== undefined && (typeof logger !== 'object' || logger === null || typeof (logger as AgentLogger).warn !== 'function')) {
    throw new InvalidSettingError(name('logger'), logger, 'expected a logger with a warn(object, message) method (pino-style)');
  }
  const dumpSignal = pick('dumpSignal');
  if (dumpSignal !== undefined && !DUMP_SIGNALS.includes(dumpSignal as NodeJS.Signals)) {
    const why = dumpSignal === 'SIGUSR1' ? ' (SIGUSR1 starts Node\'s inspector)' : '';
    throw new InvalidSettingError(name('dumpSignal'), dumpSignal, `expected one of ${DUMP_SIGNALS.join(', ')}${why}`);
  }
  const stacks = given.stacks === undefined ? defaultStackLevel() : given.stacks;
  if (stacks !== 'off' && stacks !== 'sampled' && stacks !== 'all') {
    throw new InvalidSettingError(name('stacks'), stacks, 'expected "off", "sampled" or "all"');
  }

  return {
    intervalMs: wholeNumber(name('intervalMs'), pick('intervalMs'), 10, MAX_MS, 'milliseconds'),
    closeWaitMs: wholeNumber(name('closeWaitMs'), pick('closeWaitMs'), 0, MAX_MS, 'milliseconds'),
    stallMs: wholeNumber(name('stallMs'), pick('stallMs'), 1, MAX_MS, 'milliseconds'),
    format,
    output,
    onLeak: onLeak as ResolvedOptions['onLeak'],
    failOnLeak,
    stackDepth: wholeNumber(name('stackDepth'), pick('stackDepth'), 1, 200, 'frames'),
    skipNodeModules,
    stacks,
    stackSampleEvery: wholeNumber(name('stackSampleEvery'), pick('stackSampleEvery'), 1, 1_000_000, 'sockets'),
    reportIntervalMs: wholeNumber(name('reportIntervalMs'), pick('reportIntervalMs'), 0, MAX_MS, 'milliseconds'),
    fdWarnPercent: wholeNumber(name('fdWarnPercent'), pick('fdWarnPercent'), 0, 100, 'percent (0 turns the warning off)'),
    timeWaitWarn: wholeNumber(name('timeWaitWarn'), pick('timeWaitWarn'), 0, 10_000_000, 'connections (0 turns the warning off)'),
    deadPeerRetries: wholeNumber(name('deadPeerRetries'), pick('deadPeerRetries'), 0, 255, 'retransmissions (0 turns the check off)'),
    idleMs: wholeNumber(name('idleMs'), pick('idleMs'), 0, MAX_MS, 'milliseconds (0 turns the check off)'),
    logger: logger as AgentLogger | undefined,
    dumpSignal: dumpSignal as NodeJS.Signals | undefined,
    destroyLeakedAfterMs: wholeNumber(name('destroyLeakedAfterMs'), pick('destroyLeakedAfterMs'), 0, MAX_MS, 'milliseconds (0 turns the valve off)'),
  };
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
