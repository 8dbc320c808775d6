import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';
import type { Leak } from '../src/common/types';

export const ROOT = path.resolve(__dirname, '..');
export const FIXTURES = path.join(__dirname, 'fixtures');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** JSON leak lines found on stderr (TCP_LEAK_AGENT_FORMAT=json). */
  leaks: Leak[];
}

export interface RunOptions {
  env?: Record<string, string>;
  /** Node flags before the script; default: the CommonJS preload. */
  nodeArgs?: string[];
  args?: string[];
  timeoutMs?: number;
}

const scratchDirs: string[] = [];
// Each test file removes what its tests wrote once they are done (vitest evaluates this module
// for every test file, so the hook is each file's).
afterAll(() => {
  for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory for a test's files (`name` shows in its path), removed after the test file's tests. */
export function scratchDir(name: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `tcp-leak-agent-${name}-`));
  scratchDirs.push(dir);
  return dir;
}

/** Fast settings so a leak is reported within a fraction of a second. */
export const FAST = {
  TCP_LEAK_AGENT_INTERVAL_MS: '50',
  TCP_LEAK_AGENT_CLOSE_WAIT_MS: '300',
  TCP_LEAK_AGENT_STALL_MS: '300',
  TCP_LEAK_AGENT_FORMAT: 'json',
  // Fixtures assert the line of each leak; the sampling default has its own tests.
  TCP_LEAK_AGENT_STACKS: 'all',
};

/** Runs a fixture under the real preload in a child process, from the repository root. */
export async function runFixture(fixture: string, options: RunOptions = {}): Promise<RunResult> {
  const nodeArgs = options.nodeArgs ?? ['--require', 'tcp-leak-agent/register'];
  const result = await runNode([...nodeArgs, path.join(FIXTURES, fixture), ...(options.args ?? [])], {
    cwd: ROOT,
    env: options.env,
    timeoutMs: options.timeoutMs ?? 45_000,
  });
  return { ...result, leaks: parseLeaks(result.stderr) };
}

/**
 * Runs `node <args>` (a fixture, or a real test runner) in a child process and
 * resolves with its exit code and output; never rejects. The child gets this
 * environment without what would make it part of this test run: vitest's
 * variables, NODE_OPTIONS and node:test's child marker.
 */
/** The environment without what GitHub Actions sets (GITHUB_ACTIONS, GITHUB_STEP_SUMMARY, GITHUB_WORKSPACE...). */
export function withoutCi(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('GITHUB_')));
}

export function runNode(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // The suite's own CI (GitHub Actions among them) stays out of the programs it runs, unless a test sets it.
  const env: NodeJS.ProcessEnv = { ...withoutCi(process.env), ...options.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith('VITEST') || key.startsWith('NODE_OPTIONS') || key === 'NODE_TEST_CONTEXT') delete env[key];
  }
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { cwd: options.cwd, env, timeout: options.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A fresh file path for a runner's JSON report. */
export function reportFile(runner: string): string {
  return path.join(scratchDir(runner), 'report.json');
}

/** Escapes text (a file path) for use inside a RegExp. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function parseLeaks(text: string): Leak[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{"tool":"tcp-leak-agent"'))
    .map((line) => JSON.parse(line) as Leak);
}

/** The 1-based line of the fixture that carries `// <marker>`. */
export function markerLine(fixture: string, marker = 'LEAK'): number {
  const lines = readFileSync(path.join(FIXTURES, fixture), 'utf8').split('\n');
  const index = lines.findIndex((line) => line.includes(`// ${marker}`));
  if (index < 0) throw new Error(`${fixture} has no // ${marker} marker`);
  return index + 1;
}

/** Describes a run for assertion messages. */
export function explain(result: RunResult): string {
  return `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}
