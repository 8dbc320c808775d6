import { InvalidSettingError } from '../common/errors';
import type { AgentOptions } from '../common/options';

/** The environment variables the preload reads, and the option each one sets. */
export const ENVIRONMENT_VARIABLES = {
  intervalMs: 'TCP_LEAK_AGENT_INTERVAL_MS',
  closeWaitMs: 'TCP_LEAK_AGENT_CLOSE_WAIT_MS',
  stallMs: 'TCP_LEAK_AGENT_STALL_MS',
  format: 'TCP_LEAK_AGENT_FORMAT',
  output: 'TCP_LEAK_AGENT_OUTPUT',
  failOnLeak: 'TCP_LEAK_AGENT_FAIL_ON_LEAK',
  stacks: 'TCP_LEAK_AGENT_STACKS',
  stackSampleEvery: 'TCP_LEAK_AGENT_STACK_SAMPLE_EVERY',
  reportIntervalMs: 'TCP_LEAK_AGENT_REPORT_INTERVAL_MS',
  fdWarnPercent: 'TCP_LEAK_AGENT_FD_WARN',
  timeWaitWarn: 'TCP_LEAK_AGENT_TIME_WAIT_WARN',
  deadPeerRetries: 'TCP_LEAK_AGENT_DEAD_PEER_RETRIES',
  idleMs: 'TCP_LEAK_AGENT_IDLE_MS',
  dumpSignal: 'TCP_LEAK_AGENT_DUMP_SIGNAL',
  destroyLeakedAfterMs: 'TCP_LEAK_AGENT_DESTROY_AFTER_MS',
} as const;

function wholeNumber(variable: string, raw: string, what: string): number {
  // Number('') is 0 and Number('1e3') is 1000: accept only plain digits so a typo is caught.
  if (!/^\d+$/.test(raw.trim())) {
    throw new InvalidSettingError(variable, raw, `expected a whole number of ${what}`);
  }
  return Number(raw.trim());
}

function milliseconds(variable: string, raw: string): number {
  return wholeNumber(variable, raw, 'milliseconds, such as 1000');
}

/** Whether TCP_LEAK_AGENT_FAIL_ON_LEAK asks for a failing exit code; any non-empty value other than 0/false counts. */
export function failOnLeakRequested(env: NodeJS.ProcessEnv): boolean {
  const raw = env[ENVIRONMENT_VARIABLES.failOnLeak];
  return raw !== undefined && raw !== '' && raw !== '0' && raw.toLowerCase() !== 'false';
}

/**
 * Reads the agent's options from environment variables. Unset or empty variables keep the default.
 * Throws InvalidSettingError naming the variable, its value and what is accepted.
 */
export function optionsFromEnvironment(env: NodeJS.ProcessEnv): AgentOptions {
  const options: AgentOptions = {};
  const read = (variable: string): string | undefined => {
    const raw = env[variable];
    return raw === undefined || raw === '' ? undefined : raw;
  };
  const interval = read(ENVIRONMENT_VARIABLES.intervalMs);
  if (interval !== undefined) options.intervalMs = milliseconds(ENVIRONMENT_VARIABLES.intervalMs, interval);
  const closeWait = read(ENVIRONMENT_VARIABLES.closeWaitMs);
  if (closeWait !== undefined) options.closeWaitMs = milliseconds(ENVIRONMENT_VARIABLES.closeWaitMs, closeWait);
  const stall = read(ENVIRONMENT_VARIABLES.stallMs);
  if (stall !== undefined) options.stallMs = milliseconds(ENVIRONMENT_VARIABLES.stallMs, stall);
  const format = read(ENVIRONMENT_VARIABLES.format);
  if (format !== undefined) options.format = format as AgentOptions['format'];
  const output = read(ENVIRONMENT_VARIABLES.output);
  if (output !== undefined) options.output = output;
  const stacks = read(ENVIRONMENT_VARIABLES.stacks);
  if (stacks !== undefined) options.stacks = stacks as AgentOptions['stacks']; // validated with the options
  const sampleEvery = read(ENVIRONMENT_VARIABLES.stackSampleEvery);
  if (sampleEvery !== undefined) options.stackSampleEvery = wholeNumber(ENVIRONMENT_VARIABLES.stackSampleEvery, sampleEvery, 'sockets, such as 10');
  const reportInterval = read(ENVIRONMENT_VARIABLES.reportIntervalMs);
  if (reportInterval !== undefined) options.reportIntervalMs = milliseconds(ENVIRONMENT_VARIABLES.reportIntervalMs, reportInterval);
  const fdWarn = read(ENVIRONMENT_VARIABLES.fdWarnPercent);
  if (fdWarn !== undefined) {
    // "80%" or "80"; the option validates the range.
    if (!/^\d+%?$/.test(fdWarn.trim())) {
      throw new InvalidSettingError(ENVIRONMENT_VARIABLES.fdWarnPercent, fdWarn, 'expected a whole percentage from 0 to 100, such as 80%');
    }
    options.fdWarnPercent = Number(fdWarn.trim().replace(/%$/, ''));
  }
  const timeWait = read(ENVIRONMENT_VARIABLES.timeWaitWarn);
  if (timeWait !== undefined) options.timeWaitWarn = wholeNumber(ENVIRONMENT_VARIABLES.timeWaitWarn, timeWait, 'connections, such as 5000 (0: off)');
  const retries = read(ENVIRONMENT_VARIABLES.deadPeerRetries);
  if (retries !== undefined) options.deadPeerRetries = wholeNumber(ENVIRONMENT_VARIABLES.deadPeerRetries, retries, 'retransmissions, such as 5 (0: off)');
  const idle = read(ENVIRONMENT_VARIABLES.idleMs);
  if (idle !== undefined) options.idleMs = milliseconds(ENVIRONMENT_VARIABLES.idleMs, idle);
  const dumpSignal = read(ENVIRONMENT_VARIABLES.dumpSignal);
  if (dumpSignal !== undefined) options.dumpSignal = dumpSignal.trim().toUpperCase(); // validated with the options
  const destroyAfter = read(ENVIRONMENT_VARIABLES.destroyLeakedAfterMs);
  if (destroyAfter !== undefined) options.destroyLeakedAfterMs = milliseconds(ENVIRONMENT_VARIABLES.destroyLeakedAfterMs, destroyAfter);
  const fail = read(ENVIRONMENT_VARIABLES.failOnLeak);
  if (fail !== undefined) {
    if (!['0', '1', 'true', 'false'].includes(fail.toLowerCase())) {
      throw new InvalidSettingError(ENVIRONMENT_VARIABLES.failOnLeak, fail, 'expected 1 or 0 (or true / false)');
    }
    options.failOnLeak = failOnLeakRequested(env);
  }
  return options;
}
