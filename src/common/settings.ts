import { InvalidSettingError } from './errors';
import type { AgentLogger } from './types';

/**
 * Every setting of the agent, in one table: the option of start(), the
 * environment variable of the preload, the CLI flag, the default, what is
 * accepted, and how a value is checked and read from text. The options, the
 * environment, the CLI's help and the README's options table all come from it
 * (test/unit/settings.test.ts holds the README to it). The file is the
 * table, longer than most, and reads best whole.
 */
export interface Setting {
  /** The option of start(). */
  option: string;
  /** The environment variable the preload reads, if any. */
  variable?: string;
  /** The CLI flag (it passes the value to the command's processes through the variable). */
  flag?: string;
  /** The default value. */
  default: unknown;
  /** How the README shows the default. */
  defaultText: string;
  /** What it sets, in a few words. */
  summary: string;
  /** Checks a value given to start(); throws InvalidSettingError naming `name`. Returns the value to use. */
  check(value: unknown, name: string): unknown;
  /** Reads a value from the environment or a flag; throws InvalidSettingError naming `name`. */
  fromText?(raw: string, name: string): unknown;
}

const MAX_MS = 24 * 60 * 60 * 1000;

/**
 * Signals a dump may be asked with. Not SIGINT, SIGTERM and the like: listening to them would take
 * away their default of ending the process; not SIGUSR1: Node starts its inspector on it.
 */
export const DUMP_SIGNALS: readonly NodeJS.Signals[] = ['SIGUSR2', 'SIGHUP', 'SIGWINCH', 'SIGPWR', 'SIGTTIN', 'SIGTTOU'];

/** A whole number from min to max; `unit` and `off` say what it counts and what 0 means. */
function wholeNumber(min: number, max: number, unit: string, off?: string): Pick<Setting, 'check' | 'fromText'> {
  const accepted = `expected a whole number of ${unit} from ${min} to ${max}${off ? ` (0 turns ${off} off)` : ''}`;
  return {
    check(value, name) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw new InvalidSettingError(name, value, accepted);
      return value;
    },
    fromText(raw, name) {
      // Number('') is 0 and Number('1e3') is 1000: accept only plain digits so a typo is caught.
      if (!/^\d+$/.test(raw.trim())) throw new InvalidSettingError(name, raw, accepted);
      return this.check(Number(raw.trim()), name);
    },
  };
}

function oneOf(choices: readonly string[], normalize: (raw: string) => string = (raw) => raw): Pick<Setting, 'check' | 'fromText'> {
  const accepted = `expected ${choices.map((choice) => JSON.stringify(choice)).join(', ').replace(/, ([^,]*)$/, ' or $1')}`;
  return {
    check(value, name) {
      if (value !== undefined && !choices.includes(value as string)) throw new InvalidSettingError(name, value, accepted);
      return value;
    },
    fromText(raw, name) {
      return this.check(normalize(raw), name);
    },
  };
}

const booleanSetting: Pick<Setting, 'check' | 'fromText'> = {
  check(value, name) {
    if (typeof value !== 'boolean') throw new InvalidSettingError(name, value, 'expected true or false');
    return value;
  },
  fromText(raw, name) {
    const text = raw.trim().toLowerCase();
    if (!['0', '1', 'true', 'false'].includes(text)) throw new InvalidSettingError(name, raw, 'expected 1 or 0 (or true / false)');
    return text === '1' || text === 'true';
  },
};

/** The table. Order is the README's. */
export const SETTINGS: readonly Setting[] = [
  {
    option: 'intervalMs',
    variable: 'TCP_LEAK_AGENT_INTERVAL_MS',
    flag: 'interval-ms',
    default: 1000,
    defaultText: '1000',
    summary: 'how often the periodic scan runs (its timer never keeps the process alive)',
    ...wholeNumber(10, MAX_MS, 'milliseconds'),
  },
  {
    option: 'closeWaitMs',
    variable: 'TCP_LEAK_AGENT_CLOSE_WAIT_MS',
    flag: 'close-wait-ms',
    default: 1000,
    defaultText: '1000',
    summary: 'how long a socket must sit in CLOSE_WAIT, sending nothing and taking in nothing, before it is reported',
    ...wholeNumber(0, MAX_MS, 'milliseconds'),
  },
  {
    option: 'stallMs',
    variable: 'TCP_LEAK_AGENT_STALL_MS',
    flag: 'stall-ms',
    default: 60_000,
    defaultText: '60000',
    summary: 'how long unread bytes may wait on a socket nothing reads before it is a stalled reader',
    ...wholeNumber(1, MAX_MS, 'milliseconds'),
  },
  {
    option: 'format',
    variable: 'TCP_LEAK_AGENT_FORMAT',
    default: 'text',
    defaultText: '`text`',
    summary: '`text` for people, `json` for one object per line',
    ...oneOf(['text', 'json']),
  },
  {
    option: 'output',
    variable: 'TCP_LEAK_AGENT_OUTPUT',
    default: 'stderr',
    defaultText: '`stderr`',
    summary: '`stderr`, `none`, or a file path (appended to)',
    check(value, name) {
      if (typeof value !== 'string' || value.length === 0) throw new InvalidSettingError(name, value, 'expected "stderr", "none" or a file path');
      return value;
    },
    fromText(raw, name) {
      return this.check(raw, name);
    },
  },
  {
    option: 'failOnLeak',
    variable: 'TCP_LEAK_AGENT_FAIL_ON_LEAK',
    default: false,
    defaultText: 'false',
    summary: 'exit code 1 when any leak was reported (`1`/`0`, `true`/`false`)',
    ...booleanSetting,
  },
  {
    option: 'annotations',
    variable: 'TCP_LEAK_AGENT_ANNOTATIONS',
    default: true,
    defaultText: 'true',
    summary: 'under GitHub Actions (`GITHUB_ACTIONS=true`): an annotation on each leaking line and a job summary (`0` turns both off)',
    ...booleanSetting,
  },
  {
    option: 'junit',
    variable: 'TCP_LEAK_AGENT_JUNIT',
    default: undefined,
    defaultText: '',
    summary: 'a JUnit XML file written when the process exits: a failing test case per leaking place, or one passing case',
    check(value, name) {
      if (value !== undefined && (typeof value !== 'string' || value.length === 0)) throw new InvalidSettingError(name, value, 'expected a file path');
      return value;
    },
    fromText(raw, name) {
      return this.check(raw, name);
    },
  },
  {
    option: 'onLeak',
    default: undefined,
    defaultText: '',
    summary: 'called once per leak, after it is written; what it throws is caught and told once',
    check(value, name) {
      if (value !== undefined && typeof value !== 'function') throw new InvalidSettingError(name, value, 'expected a function');
      return value;
    },
  },
  {
    option: 'stackDepth',
    default: 50,
    defaultText: '50',
    summary: 'frames captured at socket creation',
    ...wholeNumber(1, 200, 'frames'),
  },
  {
    option: 'skipNodeModules',
    default: true,
    defaultText: 'true',
    summary: 'skip frames inside node_modules when choosing the location',
    ...booleanSetting,
  },
  {
    option: 'stacks',
    variable: 'TCP_LEAK_AGENT_STACKS',
    default: 'sampled',
    defaultText: '`sampled` (`all` in test runs, the CLI and the adapters)',
    summary:
      'which sockets get a creation stack: `off`, `sampled`, `all`. ' +
      "Below `all`, a plain server's accepted sockets are found at the next scan, their age then a window; " +
      'at `off`, client sockets too',
    ...oneOf(['off', 'sampled', 'all']),
  },
  {
    option: 'stackSampleEvery',
    variable: 'TCP_LEAK_AGENT_STACK_SAMPLE_EVERY',
    default: 200,
    defaultText: '200',
    summary:
      'with `sampled`: one stack in this many sockets and requests, at random (at most about 10 a second: faster callers are sampled more sparsely), besides the first to each place; ' +
      'after a leak told without a line, every one to its place until such a leak is named',
    ...wholeNumber(1, 1_000_000, 'calls'),
  },
  {
    option: 'reportIntervalMs',
    variable: 'TCP_LEAK_AGENT_REPORT_INTERVAL_MS',
    default: 60_000,
    defaultText: '60000',
    summary: 'a place already reported is summed up at most this often (and at exit)',
    ...wholeNumber(0, MAX_MS, 'milliseconds'),
  },
  {
    option: 'fdWarnPercent',
    variable: 'TCP_LEAK_AGENT_FD_WARN',
    default: 80,
    defaultText: '80',
    summary: 'warn at this percentage of `RLIMIT_NOFILE` (`80` or `80%`; 0: off)',
    check: wholeNumber(0, 100, 'percent', 'the warning').check,
    fromText(raw, name) {
      // "80%" or "80".
      if (!/^\d+%?$/.test(raw.trim())) throw new InvalidSettingError(name, raw, 'expected a whole percentage from 0 to 100, such as 80%');
      return this.check(Number(raw.trim().replace(/%$/, '')), name);
    },
  },
  {
    option: 'timeWaitWarn',
    variable: 'TCP_LEAK_AGENT_TIME_WAIT_WARN',
    default: 5000,
    defaultText: '5000',
    summary: 'warn when this many connections this process closed first are in TIME_WAIT (0: off)',
    ...wholeNumber(0, 10_000_000, 'connections', 'the warning'),
  },
  {
    option: 'deadPeerRetries',
    variable: 'TCP_LEAK_AGENT_DEAD_PEER_RETRIES',
    default: 5,
    defaultText: '5',
    summary: 'unanswered retransmissions in a row that make a dead peer (0: off)',
    ...wholeNumber(0, 255, 'retransmissions', 'the check'),
  },
  {
    option: 'idleMs',
    variable: 'TCP_LEAK_AGENT_IDLE_MS',
    default: 0,
    defaultText: '0 (off)',
    summary: 'report connections silent this long with keepalive off',
    ...wholeNumber(0, MAX_MS, 'milliseconds', 'the check'),
  },
  {
    option: 'sweepMsPerSecond',
    variable: 'TCP_LEAK_AGENT_SWEEP_MS_PER_S',
    default: 5,
    defaultText: '5',
    summary:
      'CPU time, in ms per second, for re-measuring sockets that cannot be leaking now (reading, not ended, nothing queued): ' +
      'the slow sweep that finds dead and idle peers (0: measure only the others)',
    ...wholeNumber(0, 1000, 'milliseconds per second'),
  },
  {
    option: 'dumpSignal',
    variable: 'TCP_LEAK_AGENT_DUMP_SIGNAL',
    default: undefined,
    defaultText: 'unset',
    summary: '`SIGUSR2`, `SIGHUP`, `SIGWINCH`, `SIGPWR`, `SIGTTIN` or `SIGTTOU`: write a dump of every socket',
    check(value, name) {
      if (value !== undefined && !DUMP_SIGNALS.includes(value as NodeJS.Signals)) {
        const why = value === 'SIGUSR1' ? " (SIGUSR1 starts Node's inspector)" : '';
        throw new InvalidSettingError(name, value, `expected one of ${DUMP_SIGNALS.join(', ')}${why}`);
      }
      return value;
    },
    fromText(raw, name) {
      return this.check(raw.trim().toUpperCase(), name);
    },
  },
  {
    option: 'destroyLeakedAfterMs',
    variable: 'TCP_LEAK_AGENT_DESTROY_AFTER_MS',
    default: 0,
    defaultText: '0 (off)',
    summary: 'safety valve: destroy a socket this long after it was reported',
    ...wholeNumber(0, MAX_MS, 'milliseconds', 'the valve'),
  },
  {
    option: 'logger',
    default: undefined,
    defaultText: '',
    summary: 'a pino-style logger (`warn(object, message)`) instead of the output',
    check(value, name) {
      if (value !== undefined && (typeof value !== 'object' || value === null || typeof (value as AgentLogger).warn !== 'function')) {
        throw new InvalidSettingError(name, value, 'expected a logger with a warn(object, message) method (pino-style)');
      }
      return value;
    },
  },
];

/** Variables read elsewhere than the options (where kernel state comes from). */
export const OTHER_VARIABLES = [
  {
    variable: 'TCP_LEAK_AGENT_BACKEND',
    defaultText: 'unset',
    summary: '`native` or `procfs`: where kernel state comes from (see "Platforms")',
  },
] as const;

/** The README's options table, as the table above gives it. */
export function settingsTable(): string {
  const cell = (text: string | undefined, code = true) => (text ? (code ? `\`${text}\`` : text) : '');
  const rows = SETTINGS.map((setting) => `| ${cell(setting.option)} | ${cell(setting.variable)} | ${setting.defaultText} | ${setting.summary} |`);
  for (const other of OTHER_VARIABLES) rows.push(`| | ${cell(other.variable)} | ${other.defaultText} | ${other.summary} |`);
  return ['| option | environment variable | default | what it sets |', '|---|---|---|---|', ...rows].join('\n');
}
