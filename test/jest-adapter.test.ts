import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { escapeRegExp, FIXTURES, markerLine, reportFile, ROOT, runNode } from './helpers';

const PROJECT = path.join(FIXTURES, 'jest-project');
const API = path.join(FIXTURES, 'orders-api.cjs');

interface JestReport {
  numFailedTests: number;
  testResults: Array<{
    name: string;
    status: string;
    message: string;
    assertionResults: Array<{ fullName: string; status: string; failureMessages: string[] }>;
  }>;
}

/** Runs the real jest on the fixture project and returns its own JSON report. */
async function runJest(args: string[]): Promise<{ code: number | null; report: JestReport; output: string }> {
  const outputFile = reportFile('jest');
  const jest = path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
  const { code, stdout, stderr } = await runNode([jest, '--rootDir', PROJECT, '--ci', '--json', `--outputFile=${outputFile}`, ...args], {
    cwd: PROJECT,
    timeoutMs: 90_000,
  });
  return { code, report: JSON.parse(readFileSync(outputFile, 'utf8')) as JestReport, output: stdout + stderr };
}

describe.concurrent('tcp-leak-agent/jest', () => {
  for (const mode of ['--runInBand', '--maxWorkers=2']) {
    it(`fails the test that leaked with the report naming the line, passes the others, and fails the file for a late leak (${mode})`, async () => {
      const { code, report, output } = await runJest([mode]);
      expect(code, output).toBe(1);
      const files = Object.fromEntries(report.testResults.map((file) => [path.basename(file.name), file]));
      const orders = files['orders.test.js']!;
      const tests = Object.fromEntries(orders.assertionResults.map((test) => [test.fullName, test]));
      expect(tests['orders lists orders']?.status).toBe('passed');
      expect(tests['orders schedules a refresh']?.status).toBe('passed');
      expect(tests['orders counts orders']?.status).toBe('passed');
      expect(tests['orders exports orders']?.status).toBe('failed');
      const line = markerLine('orders-api.cjs');
      const message = tests['orders exports orders']!.failureMessages[0]!;
      expect(message).toMatch(new RegExp(`^SocketLeakError: ${escapeRegExp(API)}:${line}:\\d+: leaked TCP socket, stuck in CLOSE_WAIT`));
      expect(message).toContain('opened by the test "orders exports orders"');
      // The refresh timer's leak showed after its test ended: the file's afterAll fails, naming it.
      expect(orders.message).toMatch(new RegExp(`${escapeRegExp(API)}:${line}:\\d+: leaked TCP socket`));
      expect(orders.message).toContain('(found after the test "orders schedules a refresh" had ended)');
      // A clean file, run after it (in the same process with --runInBand), passes untouched.
      const inventory = files['inventory.test.js']!;
      expect(inventory.status, inventory.message).toBe('passed');
      expect(inventory.assertionResults.map((test) => test.status)).toEqual(['passed', 'passed']);
    });
  }
});
