/**
 * Mocha adapter, a root-hook plugin: `mocha --require tcp-leak-agent/mocha`,
 * or `require: ['tcp-leak-agent/mocha']` in .mocharc. Works with --parallel
 * (each worker loads it).
 *
 * Every socket knows the test that created it: the test's function runs in an
 * AsyncLocalStorage context, so work a test leaves behind (a timer, a promise)
 * still counts as its own. (Mocha starts each test from a callback of the one
 * before, so following async resources from hook to hook would credit every
 * test's work to the first.) A test
 * whose socket leaked fails with the report as its error; a leak that shows
 * only after its test ended fails the run's (in --parallel, the file's) root
 * "after all" hook, naming the test.
 *
 * Why the check runs inside the test's own function: Mocha has already told
 * its reporters that a test passed when the afterEach hooks run, and a failing
 * afterEach hook makes Mocha skip the rest of the suite. So each test's
 * function is wrapped, in a root beforeEach, to verify its sockets once it has
 * finished: the test's own afterEach hooks run after the check.
 *
 * The late check is added to the root suite when the first test starts, after
 * the spec files' own root after() hooks: a failing "after all" hook makes
 * Mocha skip the ones after it, and those close the servers the run needs
 * closed to end.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { testChecks } from './agent/checks';
import { PerTestChecks } from './adapters/per-test-checks';

/** What this adapter uses of Mocha's Context and Test (Mocha 10 to 12). */
interface MochaContext {
  currentTest?: MochaTest;
  timeout(): number;
  timeout(ms: number): unknown;
}
interface MochaTest {
  fn?: TestFunction;
  async?: boolean | number;
  parent?: MochaSuite;
  fullTitle(): string;
}
interface MochaSuite {
  parent?: MochaSuite;
  afterAll(title: string, fn: () => Promise<void>): unknown;
}
type TestFunction = (this: MochaContext, done?: (error?: unknown) => void) => unknown;

const currentTest = new AsyncLocalStorage<string>();
const checks = new PerTestChecks(() => currentTest.getStore());
// The wrappers already in place: a retried test is a clone carrying its original's function.
const wrappers = new WeakSet<TestFunction>();
// Root suites already given the late check (one per run; one per file in --parallel).
const checkedRoots = new WeakSet<MochaSuite>();

async function lateLeaks(): Promise<void> {
  const error = await checks.afterFile();
  if (error) throw error;
}

function rootOf(suite: MochaSuite): MochaSuite {
  let root = suite;
  while (root.parent) root = root.parent;
  return root;
}

/** Verifies the test's sockets, giving the check its own share of the test's timeout. */
function verify(context: MochaContext, name: string): Promise<void> {
  const timeout = context.timeout();
  // 0 means no timeout; otherwise the wait for unsettled sockets must not eat the test's budget.
  if (timeout > 0) context.timeout(Math.max(timeout, (testChecks().timeoutMs ?? 1000) + 1000));
  return checks.afterTest(name);
}

/** The test's function, followed by the check of its sockets; same calling style as the original. */
function withCheck(original: TestFunction, name: string, callbackStyle: boolean): TestFunction {
  const wrapped: TestFunction = callbackStyle
    ? function (this: MochaContext, done) {
        return currentTest.run(name, () =>
          original.call(this, (error?: unknown) => {
            if (error) return done!(error);
            verify(this, name).then(() => done!(), done!);
          }),
        );
      }
    : function (this: MochaContext) {
        const result = currentTest.run(name, () => original.call(this));
        return Promise.resolve(result).then(() => verify(this, name));
      };
  wrappers.add(wrapped);
  return wrapped;
}

export const mochaHooks = {
  beforeEach(this: MochaContext): void {
    const test = this.currentTest;
    if (!test) return;
    if (test.fn && !wrappers.has(test.fn)) {
      test.fn = withCheck(test.fn, test.fullTitle(), Boolean(test.async));
    }
    const root = test.parent && rootOf(test.parent);
    if (root && !checkedRoots.has(root)) {
      checkedRoots.add(root);
      root.afterAll('tcp-leak-agent: sockets leaked after their test ended', lateLeaks);
    }
  },
};
