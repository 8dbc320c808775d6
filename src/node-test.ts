/**
 * node:test adapter: `node --test --import tcp-leak-agent/node-test` (or --require).
 *
 * Loaded into each test process, it adds a global beforeEach / afterEach /
 * after: every socket knows the test that created it, a test whose socket
 * leaked fails with the report as its error, and a leak that shows only
 * after its test ended fails the file (exit code 1, report on stderr),
 * naming the test.
 */
import { after, afterEach, beforeEach } from 'node:test';
import { PerTestChecks } from './adapters/per-test-checks';
import { RunningTest } from './adapters/running-test';

interface ContextLike {
  name: string;
  fullName?: string;
}

// fullName ("suite > test") where Node has it (20.20, 22, 24 here); older releases give the test's own name.
const nameOf = (context: ContextLike) => context.fullName ?? context.name;

const running = new RunningTest();
const checks = new PerTestChecks(() => running.current());

beforeEach((context) => {
  running.begin(nameOf(context as ContextLike));
});

afterEach(async (context) => {
  running.end();
  await checks.afterTest(nameOf(context as ContextLike));
});

// A failing root after hook would skip the file's own after hooks (its cleanup), so a
// late leak fails the file through its exit code instead, with the report on stderr.
after(async () => {
  const error = await checks.afterFile();
  if (!error) return;
  process.stderr.write(`${error.message}\n`);
  process.exitCode = 1;
});
