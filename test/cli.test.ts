import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, markerLine, parseLeaks, ROOT, scratchDir, withoutCi } from './helpers';

const CLI = path.join(ROOT, 'dist', 'cli.js');
const FAST = ['--interval-ms', '50', '--close-wait-ms', '300', '--stall-ms', '300'];

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const childEnv: NodeJS.ProcessEnv = { ...withoutCi(process.env), ...env };
  for (const key of Object.keys(childEnv)) if (key.startsWith('VITEST') || key === 'NODE_OPTIONS') delete childEnv[key];
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, env: childEnv, timeout: 45_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

const explain = (run: CliRun) => `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
const node = process.execPath;

describe.concurrent('the CLI', () => {
  it('runs a leaky program, prints one summary naming the line, and exits 1', async () => {
    const fixture = 'http-get-unread-body.js';
    const run = await cli([...FAST, '--', node, path.join(FIXTURES, fixture)]);
    expect(run.code, explain(run)).toBe(1);
    const lines = run.stderr.split('\n');
    expect(lines[0]).toBe('tcp-leak-agent: 1 leaked TCP socket in 1 process');
    expect(lines[2]).toMatch(new RegExp(`^${path.join(FIXTURES, fixture)}:${markerLine(fixture)}:\\d+ `));
  });

  it('prints nothing of its own and exits 0 for a clean program', async () => {
    const run = await cli([...FAST, '--', node, path.join(FIXTURES, 'quiet-program.js')]);
    expect(run.code, explain(run)).toBe(0);
    expect(run.stderr + run.stdout).toBe('');
  });

  it('writes the --output file for a clean run too: a line saying so (text), no record (JSON lines)', async () => {
    const dir = scratchDir('cli-output');
    for (const format of ['text', 'json']) {
      const file = path.join(dir, `summary.${format}`);
      const run = await cli([...FAST, '--format', format, '--output', file, '--', node, path.join(FIXTURES, 'quiet-program.js')]);
      expect(run.code, explain(run)).toBe(0);
      expect(run.stderr + run.stdout).toBe('');
      expect(readFileSync(file, 'utf8')).toBe(format === 'text' ? 'tcp-leak-agent: no leaked TCP socket\n' : '');
    }
  });

  it("keeps the command's own non-zero exit code", async () => {
    const run = await cli(['--', node, '-e', 'process.exit(3)']);
    expect(run.code, explain(run)).toBe(3);
  });

  it('reaches Node processes started by other programs (a shell) and gathers all their reports', async () => {
    const script = `"${node}" "${path.join(FIXTURES, 'net-banner-never-read.js')}" && "${node}" "${path.join(FIXTURES, 'half-open-client-never-ends.js')}"`;
    const run = await cli([...FAST, '--format', 'json', '--', 'sh', '-c', script]);
    expect(run.code, explain(run)).toBe(1);
    const leaks = parseLeaks(run.stderr);
    expect(leaks.map((leak) => path.basename(leak.location!.file)).sort()).toEqual(['half-open-client-never-ends.js', 'net-banner-never-read.js']);
    expect(new Set(leaks.map((leak) => leak.pid)).size).toBe(2);
  });

  it('with --no-fail, reports but keeps exit code 0', async () => {
    const run = await cli([...FAST, '--no-fail', '--', node, path.join(FIXTURES, 'http-get-unread-body.js')]);
    expect(run.code, explain(run)).toBe(0);
    expect(run.stderr).toContain('1 leaked TCP socket');
  });

  it('rejects a bad option in one line naming it, with exit code 2', async () => {
    const run = await cli(['--close-wait-ms', 'soon', '--', node, '-e', '']);
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n')).toEqual([
      'tcp-leak-agent: --close-wait-ms="soon" is not accepted: expected a whole number of milliseconds from 0 to 86400000',
    ]);
  });

  it('asks for a command when none is given, and documents its options with --help', async () => {
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no command given');
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const option of ['--interval-ms', '--close-wait-ms', '--stall-ms', '--format', '--output', '--no-fail']) expect(help.stdout).toContain(option);
  });
});

describe('a Node.js process of the command that runs without the agent', () => {
  interface Pids {
    replaced: number;
    brief: number;
    added: number;
    shell: number;
  }
  const parent = path.join(FIXTURES, 'unchecked-children.js');
  const pidsOf = (run: CliRun) => JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Pids;

  it('is named with its command line and NODE_OPTIONS, however it was started and however briefly it ran, and fails the run', async () => {
    const run = await cli(['--', node, parent]);
    expect(run.code, explain(run)).toBe(1);
    const pids = pidsOf(run);
    const lines = run.stderr.split('\n');
    expect(lines[0]).toBe('tcp-leak-agent: 3 Node.js processes ran without the agent, so their sockets were not checked:');
    expect(lines).toContain(`  pid ${pids.replaced}: ${node} ${path.join(FIXTURES, 'unchecked-child-leaks.js')}  (NODE_OPTIONS="--no-deprecation")`);
    expect(lines).toContain(`  pid ${pids.brief}: ${node} -e 0  (NODE_OPTIONS="--no-deprecation")`);
    expect(lines).toContain(`  pid ${pids.shell}: ${node} -e setTimeout(() => {}, 100)  (NODE_OPTIONS="--no-warnings")`);
    expect(run.stderr).not.toContain(`pid ${pids.added}:`);
    expect(run.stderr).toContain('NODE_OPTIONS="$NODE_OPTIONS --flag"');
  });

  it('counts once, as what it finally runs: not again for each child it forks before that child execs another program', async () => {
    const run = await cli(['--', node, path.join(FIXTURES, 'unchecked-forker.js')]);
    expect(run.code, explain(run)).toBe(1);
    const { unchecked } = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { unchecked: number };
    const lines = run.stderr.split('\n');
    expect(lines[0], explain(run)).toBe('tcp-leak-agent: 1 Node.js process ran without the agent, so its sockets were not checked:');
    expect(lines[1], explain(run)).toBe(`  pid ${unchecked}: ${node} ${path.join(FIXTURES, 'unchecked-forker.js')} child  (NODE_OPTIONS="--no-deprecation")`);
  });

  it('is accepted with --allow-unchecked (still named), and told as JSON lines with --format json', async () => {
    const allowed = await cli(['--allow-unchecked', '--', node, parent]);
    expect(allowed.code, explain(allowed)).toBe(0);
    expect(allowed.stderr).toContain('3 Node.js processes ran without the agent');
    const json = await cli(['--format', 'json', '--', node, parent]);
    expect(json.code, explain(json)).toBe(1);
    const told = json.stderr.trim().split('\n').map((line) => JSON.parse(line) as { type: string; pid: number; nodeOptions: string });
    const pids = pidsOf(json);
    expect(told.map((entry) => [entry.type, entry.pid])).toEqual([pids.replaced, pids.brief, pids.shell].map((pid) => ['unchecked-process', pid]));
  });

  // process.execve: Node 22.15 and later.
  it.skipIf(typeof (process as { execve?: unknown }).execve !== 'function')('is found when a checked process replaces itself with it (exec), as a fork does between fork and exec', async () => {
    // The CLI first sees the process checked; after execve it runs Node without the preload.
    const replacement = `process.execve(process.execPath, [process.execPath, '-e', 'setTimeout(() => {}, 200)'], { ...process.env, NODE_OPTIONS: '--no-warnings' })`;
    const run = await cli(['--', node, '-e', `setTimeout(() => { console.log(process.pid); ${replacement}; }, 300)`]);
    expect(run.code, explain(run)).toBe(1);
    const pid = Number(run.stdout.trim());
    const lines = run.stderr.split('\n');
    expect(lines[0], explain(run)).toBe('tcp-leak-agent: 1 Node.js process ran without the agent, so its sockets were not checked:');
    expect(lines).toContain(`  pid ${pid}: ${node} -e setTimeout(() => {}, 200)  (NODE_OPTIONS="--no-warnings")`);
  });

  it('is noted by its checked parent as it spawns, however briefly it runs (without the CLI watching /proc)', async () => {
    const runDir = scratchDir('run');
    const register = path.join(ROOT, 'dist', 'register.js');
    // As the CLI would start it, minus the CLI: the preload in NODE_OPTIONS and the run's marker.
    const env: NodeJS.ProcessEnv = { ...process.env, TCP_LEAK_AGENT_CLI_RUN: runDir, NODE_OPTIONS: `--require "${register}"` };
    for (const key of Object.keys(env)) if (key.startsWith('VITEST')) delete env[key];
    const result = await new Promise<CliRun>((resolve) => {
      execFile(node, [parent], { cwd: ROOT, env, timeout: 45_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
      });
    });
    expect(result.code, explain(result)).toBe(0);
    const pids = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Pids;
    const noted = readFileSync(path.join(runDir, 'unchecked.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { pid: number });
    // Its Node children that dropped the preload. The shell is seen only if it has already
    // exec'd node when the parent looks (the CLI's look at /proc is what finds it).
    const notedPids = noted.map((entry) => entry.pid).filter((pid) => pid !== pids.shell);
    expect(notedPids).toEqual([pids.replaced, pids.brief]);
  });
});

describe('the summary, printed when the command ends', () => {
  it('gives ages as of detection, not as of printing', async () => {
    // The leak is found within a second of the socket's creation; the summary comes 2 s later.
    const script = `"${node}" "${path.join(FIXTURES, 'http-get-unread-body.js')}" && sleep 2`;
    const run = await cli([...FAST, '--', 'sh', '-c', script]);
    expect(run.code, explain(run)).toBe(1);
    const opened = /opened ([\d.]+) (ms|s) ago/.exec(run.stderr);
    expect(opened, explain(run)).not.toBeNull();
    const ageMs = Number(opened![1]) * (opened![2] === 's' ? 1000 : 1);
    expect(ageMs, explain(run)).toBeLessThan(2000);
  });
});
