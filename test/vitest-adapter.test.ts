import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { escapeRegExp, FIXTURES, markerLine, reportFile, ROOT, runNode } from './helpers';

const PROJECT = path.join(FIXTURES, 'vitest-project');
const API = path.join(FIXTURES, 'orders-api.cjs');

interface JsonReport {
  testResults: Array<{ message: string; assertionResults: Array<{ fullName: string; status: string; failureMessages: string[] }> }>;
}

/** Runs the real vitest on the fixture project and returns its own JSON report. */
async function runVitest(pool: string): Promise<{ code: number | null; report: JsonReport; output: string }> {
  const outputFile = reportFile('vitest');
  const vitest = path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
  const { code, stdout, stderr } = await runNode(
    [vitest, 'run', '--root', PROJECT, '--pool', pool, '--reporter=json', `--outputFile=${outputFile}`],
    { cwd: ROOT },
  );
  return { code, report: JSON.parse(readFileSync(outputFile, 'utf8')) as JsonReport, output: stdout + stderr };
}

describe.concurrent('tcp-leak-agent/vitest', () => {
  for (const pool of ['forks', 'threads']) {
    it(`fails the test that leaked, with the report naming the line, and passes the others (${pool} pool)`, async () => {
      const { code, report, output } = await runVitest(pool);
      expect(code, output).toBe(1);
      const results = Object.fromEntries(report.testResults[0]!.assertionResults.map((test) => [test.fullName, test]));
      expect(results['orders lists orders']?.status).toBe('passed');
      expect(results['orders counts orders']?.status).toBe('passed');
      expect(results['orders exports orders']?.status).toBe('failed');
      const message = results['orders exports orders']!.failureMessages[0]!;
      expect(message).toMatch(new RegExp(`^SocketLeakError: ${escapeRegExp(API)}:${markerLine('orders-api.cjs')}:\\d+: leaked TCP socket`));
      expect(message).toContain('What to do: read the body');
      // The refresh timer's leak showed after its test ended: the file's afterAll fails, naming it.
      expect(results['orders schedules a refresh']?.status).toBe('passed');
      expect(report.testResults[0]!.message).toContain('(found after the test "orders > schedules a refresh" had ended)');
    });
  }
});
