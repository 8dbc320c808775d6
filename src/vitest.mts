/**
 * Vitest adapter: add `'tcp-leak-agent/vitest'` to `test.setupFiles`.
 *
 * Each test runs with its name in async context (AsyncLocalStorage entered in
 * beforeEach carries into the test function and everything it starts), so
 * every socket knows the test that created it. After each test, that test's
 * sockets are verified: a leak fails the test, with the report as its error.
 * A socket found leaked after its test ended fails the file's afterAll,
 * naming the test.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { afterAll, afterEach, beforeEach } from 'vitest';
import { PerTestChecks } from './adapters/per-test-checks.js';

interface TaskLike {
  name: string;
  suite?: TaskLike;
}

function fullName(task: TaskLike): string {
  const names: string[] = [];
  for (let current: TaskLike | undefined = task; current; current = current.suite) {
    if (current.name) names.unshift(current.name);
  }
  return names.join(' > ');
}

const currentTest = new AsyncLocalStorage<string | undefined>();
const checks = new PerTestChecks(() => currentTest.getStore());

beforeEach((context) => {
  currentTest.enterWith(fullName(context.task as TaskLike));
});

afterEach(async (context) => {
  currentTest.enterWith(undefined);
  await checks.afterTest(fullName(context.task as TaskLike));
});

afterAll(async () => {
  const error = await checks.afterFile();
  if (error) throw error;
});
