import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { escapeRegExp, FIXTURES, markerLine, runNode } from './helpers';

const PROJECT = path.join(FIXTURES, 'node-test-project');
const API = path.join(FIXTURES, 'orders-api.cjs');

/** Runs the real `node --test` on the fixture project with the TAP reporter; returns its output. */
async function runNodeTest(args: string[], file = 'orders.test.mjs', env: Record<string, string> = {}): Promise<{ code: number | null; tap: string }> {
  const { code, stdout, stderr } = await runNode(['--test', '--test-reporter=tap', ...args, file], { cwd: PROJECT, env });
  return { code, tap: stdout + stderr };
}

/** "ok" or "not ok" for each test TAP names, by name. */
function results(tap: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const match of tap.matchAll(/^ *(ok|not ok) \d+ - (.+)$/gm)) found[match[2]!] = match[1]!;
  return found;
}

describe.concurrent('tcp-leak-agent/node-test', () => {
  for (const flag of ['--import', '--require']) {
    it(`fails the test that leaked with the report naming the line, passes the others, and fails the file for a late leak (${flag})`, async () => {
      const { code, tap } = await runNodeTest([flag, 'tcp-leak-agent/node-test']);
      expect(code, tap).toBe(1);
      expect(results(tap)).toMatchObject({
        'lists orders': 'ok',
        'exports orders': 'not ok',
        'schedules a refresh': 'ok',
        'counts orders': 'ok',
      });
      const line = markerLine('orders-api.cjs');
      // The failing test's error is the report, headline first.
      const failure = tap.slice(tap.indexOf('not ok 2 - exports orders'));
      expect(failure).toMatch(new RegExp(`error: \\|-\\n\\s+${escapeRegExp(API)}:${line}:\\d+: leaked TCP socket, stuck in CLOSE_WAIT`));
      expect(failure).toContain('opened by the test "orders > exports orders"');
      // The timer that "schedules a refresh" left behind leaked after the test ended: the file fails, naming it.
      expect(tap).toMatch(new RegExp(`# ${escapeRegExp(API)}:${line}:\\d+: leaked TCP socket`));
      expect(tap).toContain('# (found after the test "orders > schedules a refresh" had ended)');
    });
  }

  it('keeps healthy open connections out of it by default; strict checks (configureTestChecks) fail them, and ignoreLocation lets them be', async () => {
    const adapter = ['--import', 'tcp-leak-agent/node-test'];
    const strict = [...adapter, '--import', './strict-setup.mjs'];
    const [lenient, strictRun, ignored] = await Promise.all([
      runNodeTest(adapter, 'pool.test.mjs'),
      runNodeTest(strict, 'pool.test.mjs'),
      runNodeTest(strict, 'pool.test.mjs', { IGNORE_POOL: '1' }),
    ]);
    expect(lenient.code, lenient.tap).toBe(0);
    expect(results(lenient.tap)).toEqual({ 'warms the pool': 'ok' });
    expect(strictRun.code, strictRun.tap).toBe(1);
    expect(results(strictRun.tap)).toEqual({ 'warms the pool': 'not ok' });
    const pool = path.join(PROJECT, 'pool.test.mjs');
    const line = markerLine('node-test-project/pool.test.mjs', 'OPENED');
    expect(strictRun.tap).toMatch(new RegExp(`error: \\|-\\n\\s+${escapeRegExp(pool)}:${line}:\\d+: TCP socket left open at the end of its test \\(strict check\\)`));
    expect(ignored.code, ignored.tap).toBe(0);
  });
});
