import { checkIgnoreList, type SocketIgnore } from './ignore';
import { InvalidSettingError } from '../common/errors';

/** Options of `verifyNoLeaks()`, and of the checks test adapters run after each test. */
export interface VerifyOptions {
  /** How long to keep retrying before calling what remains a leak, in ms. Default 1000. */
  timeoutMs?: number;
  /** Only sockets created by this test count (test adapters; see attributeSocketsTo). */
  test?: string;
  /** Sockets not to count: what ignoreLocation(), ignoreRemote() and ignoreCurrent() return. */
  ignore?: SocketIgnore | readonly SocketIgnore[];
  /**
   * Also fail on every socket (of `test`, when given) that is still open at the
   * end of the wait, whatever its state: a test must close what it opens.
   * Default false: only sockets the peer closed and this process did not count.
   */
  strict?: boolean;
}

/** VerifyOptions after defaults and validation. */
export interface ResolvedCheck {
  timeoutMs: number;
  test: string | undefined;
  ignore: readonly SocketIgnore[];
  strict: boolean;
}

/** Validates verifyNoLeaks options; throws InvalidSettingError naming the option. */
export function resolveCheck(options: VerifyOptions | undefined, prefix = 'verifyNoLeaks'): ResolvedCheck {
  const given = options ?? {};
  if (typeof given !== 'object') throw new InvalidSettingError(prefix, given, 'expected an object');
  const accepted = ['timeoutMs', 'test', 'ignore', 'strict'];
  for (const key of Object.keys(given)) {
    if (!accepted.includes(key)) {
      throw new InvalidSettingError(`${prefix}.${key}`, (given as Record<string, unknown>)[key], `unknown option; accepted options are ${accepted.join(', ')}`);
    }
  }
  const timeoutMs = given.timeoutMs ?? 1000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > 600_000) {
    throw new InvalidSettingError(`${prefix}.timeoutMs`, timeoutMs, 'expected a whole number of milliseconds from 0 to 600000');
  }
  if (given.test !== undefined && typeof given.test !== 'string') {
    throw new InvalidSettingError(`${prefix}.test`, given.test, 'expected a test name (a string)');
  }
  const strict = given.strict ?? false;
  if (typeof strict !== 'boolean') throw new InvalidSettingError(`${prefix}.strict`, strict, 'expected true or false');
  return { timeoutMs, test: given.test, ignore: checkIgnoreList(`${prefix}.ignore`, given.ignore), strict };
}

// Shared by every copy of the package in the process, like the agent itself.
const TEST_CHECKS = Symbol.for('tcp-leak-agent.test-checks');
type Holder = { [TEST_CHECKS]?: Omit<VerifyOptions, 'test'> };

/**
 * Sets what the test-runner adapters check after each test: `ignore`,
 * `strict`, `timeoutMs`. Call it from a setup file; later calls replace
 * earlier ones. Throws InvalidSettingError on a bad option.
 */
export function configureTestChecks(options: Omit<VerifyOptions, 'test'>): void {
  resolveCheck(options, 'configureTestChecks');
  if ((options as VerifyOptions).test !== undefined) {
    throw new InvalidSettingError('configureTestChecks.test', (options as VerifyOptions).test, 'the adapters name the test themselves; leave it out');
  }
  (globalThis as Holder)[TEST_CHECKS] = { ...options };
}

/** What configureTestChecks set (empty when it was never called). */
export function testChecks(): Omit<VerifyOptions, 'test'> {
  return (globalThis as Holder)[TEST_CHECKS] ?? {};
}
