import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { escapeRegExp, FIXTURES, markerLine, reportFile, ROOT, runNode } from './helpers';

const PROJECT = path.join(FIXTURES, 'mocha-project');
const API = path.join(FIXTURES, 'orders-api.cjs');

interface MochaReport {
  stats: { passes: number; failures: number };
  tests: Array<{ fullTitle: string; err: { message?: string } }>;
  passes: Array<{ fullTitle: string }>;
  failures: Array<{ fullTitle: string; err: { message?: string } }>;
}

/** Runs the real mocha on the fixture project (its .mocharc loads the adapter) and returns its JSON report. */
async function runMocha(args: string[]): Promise<{ code: number | null; report: MochaReport; output: string }> {
  const outputFile = reportFile('mocha');
  const mocha = path.join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js');
  const { code, stdout, stderr } = await runNode([mocha, '--reporter', 'json', '--reporter-option', `output=${outputFile}`, ...args], {
    cwd: PROJECT,
    timeoutMs: 90_000,
  });
  return { code, report: JSON.parse(readFileSync(outputFile, 'utf8')) as MochaReport, output: stdout + stderr };
}

describe.concurrent('tcp-leak-agent/mocha', () => {
  for (const mode of [[], ['--parallel', '--jobs', '2']]) {
    it(`fails the test that leaked with the report naming the line, passes the others, and fails the run for a late leak (${mode.join(' ') || 'serial'})`, async () => {
      const { code, report, output } = await runMocha(mode);
      // Mocha exits with the number of failures: the leaking test and the late check.
      expect(code, output).toBe(2);
      const failed = Object.fromEntries(report.failures.map((failure) => [failure.fullTitle, failure.err.message ?? '']));
      expect(Object.keys(failed).sort(), output).toEqual([
        '"after all" hook: tcp-leak-agent: sockets leaked after their test ended in "{root}"',
        'orders exports orders',
      ]);
      expect(report.passes.map((test) => test.fullTitle).sort()).toEqual([
        'inventory reads stock',
        'inventory reads stock twice',
        'orders counts orders',
        'orders counts orders with a callback',
        'orders lists orders',
        'orders schedules a refresh',
      ]);
      const line = markerLine('orders-api.cjs');
      const leak = failed['orders exports orders']!;
      expect(leak).toMatch(new RegExp(`^${escapeRegExp(API)}:${line}:\\d+: leaked TCP socket, stuck in CLOSE_WAIT`));
      expect(leak).toContain('What to do: read the body');
      expect(leak).toContain('opened by the test "orders exports orders"');
      // The refresh timer's leak showed after its test ended: the late check names it.
      const late = failed['"after all" hook: tcp-leak-agent: sockets leaked after their test ended in "{root}"']!;
      expect(late).toMatch(new RegExp(`^${escapeRegExp(API)}:${line}:\\d+: leaked TCP socket`));
      expect(late).toContain('(found after the test "orders schedules a refresh" had ended)');
    });
  }
});
