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
import { formatLeaks, start, type Leak } from './index.js';

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
const agent = start({ output: 'none' });
agent.attributeSocketsTo(() => currentTest.getStore());
const ended = new Set<string>();

beforeEach((context) => {
  currentTest.enterWith(fullName(context.task as TaskLike));
});

afterEach(async (context) => {
  const name = fullName(context.task as TaskLike);
  currentTest.enterWith(undefined);
  ended.add(name);
  await agent.verifyNoLeaks({ test: name });
});

afterAll(async () => {
  // Leaks that showed only after their test had ended (and passed).
  const late = agent.findLeaks().filter((leak: Leak) => leak.test !== undefined && ended.has(leak.test));
  if (late.length > 0) {
    const tests = [...new Set(late.map((leak) => leak.test))].join('", "');
    throw new Error(`${formatLeaks(late, 'text')}\n(found after the test "${tests}" had ended)`);
  }
});
