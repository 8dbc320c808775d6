import type { Leak } from './types';

/**
 * Every error the agent makes, each with an `ERR_TCP_LEAK_AGENT_*` code.
 *
 * Callers branch on `code`, never on the class: an adapter and an agent may
 * come from two installed copies of the package, each with its own classes.
 * `instanceof` works across copies too, through the code (as undici does with
 * its errors).
 */
export const ERROR_CODES = {
  socketLeak: 'ERR_TCP_LEAK_AGENT_SOCKET_LEAK',
  invalidSetting: 'ERR_TCP_LEAK_AGENT_INVALID_SETTING',
  notRunning: 'ERR_TCP_LEAK_AGENT_NOT_RUNNING',
  usage: 'ERR_TCP_LEAK_AGENT_USAGE',
} as const;

function hasCode(value: unknown, code: string): boolean {
  return value instanceof Error && (value as { code?: unknown }).code === code;
}

/**
 * Rejection of `verifyNoLeaks()`: the message is the text report (it starts
 * with the file:line:column to fix), `leaks` the objects behind it.
 */
export class SocketLeakError extends Error {
  readonly code = ERROR_CODES.socketLeak;
  /**
   * @param leaks the leaks found
   * @param report their text report, the message (the reporting stage formats it)
   */
  constructor(
    readonly leaks: Leak[],
    report = `${leaks.length} leaked TCP socket${leaks.length === 1 ? '' : 's'}`,
  ) {
    super(report);
    this.name = 'SocketLeakError';
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isSocketLeakError(value);
  }
}

/** True for a SocketLeakError from any copy of the package. */
export function isSocketLeakError(value: unknown): value is SocketLeakError {
  return hasCode(value, ERROR_CODES.socketLeak) && Array.isArray((value as { leaks?: unknown }).leaks);
}

/** A setting (option, environment variable) was given a value the agent does not accept. */
export class InvalidSettingError extends Error {
  readonly code = ERROR_CODES.invalidSetting;
  constructor(
    readonly setting: string,
    readonly value: unknown,
    readonly accepted: string,
  ) {
    super(`${setting}=${describeValue(value)} is not accepted: ${accepted}`);
    this.name = 'InvalidSettingError';
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasCode(value, ERROR_CODES.invalidSetting);
  }
}

/** `verifyNoLeaks()` was called with no agent running. */
export class AgentNotRunningError extends Error {
  readonly code = ERROR_CODES.notRunning;
  constructor() {
    super('tcp-leak-agent is not running: call start() (or preload tcp-leak-agent/register) before verifyNoLeaks()');
    this.name = 'AgentNotRunningError';
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasCode(value, ERROR_CODES.notRunning);
  }
}

/** A command line the CLI cannot take: its message names the option, the value and what is accepted. */
export class UsageError extends Error {
  readonly code = ERROR_CODES.usage;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasCode(value, ERROR_CODES.usage);
  }
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
