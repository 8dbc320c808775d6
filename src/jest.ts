/**
 * Jest adapter: add `'tcp-leak-agent/jest'` to `setupFilesAfterEnv`.
 *
 * Jest runs the tests of a file one after another; every socket knows the
 * test that created it (followed through async resources, so work a test
 * leaves behind still counts as its own). A test whose socket leaked fails
 * with the report as its error; a leak that shows only after its test ended
 * fails the file's afterAll, naming the test.
 */
import { PerTestChecks } from './adapters/per-test-checks';
import { RunningTest } from './adapters/running-test';
import { stop } from './index';

interface JestGlobals {
  beforeEach(fn: () => unknown): void;
  afterEach(fn: () => unknown): void;
  afterAll(fn: () => unknown): void;
  expect: { getState(): { currentTestName?: string } };
}

const runner = globalThis as unknown as JestGlobals;
const testName = () => runner.expect.getState().currentTestName ?? '(unnamed test)';

const running = new RunningTest();
const checks = new PerTestChecks(() => running.current());

runner.beforeEach(() => {
  running.begin(testName());
});

runner.afterEach(async () => {
  running.end();
  await checks.afterTest(testName());
});

runner.afterAll(async () => {
  const error = await checks.afterFile();
  // Jest runs each file in its own module registry but one process: the next file starts its own agent.
  running.disable();
  stop();
  if (error) throw error;
});
