import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { escapeRegExp, explain, FAST, FIXTURES, markerLine, ROOT, runNode } from './helpers';

/** Runs a fixture under the preload, in a shell that first lowers the descriptor limit. */
function runWithDescriptorLimit(limit: number, fixture: string, env: Record<string, string>) {
  const script = `ulimit -n ${limit} && exec "${process.execPath}" --require tcp-leak-agent/register "${path.join(FIXTURES, fixture)}"`;
  return runNode(['-e', `process.exitCode = require('node:child_process').spawnSync('bash', ['-c', ${JSON.stringify(script)}], { stdio: 'inherit' }).status`], {
    cwd: ROOT,
    env,
  });
}

const TEXT = { ...FAST, TCP_LEAK_AGENT_FORMAT: 'text' };

describe.concurrent('descriptors running out', () => {
  const fixture = 'descriptors-run-out.js';
  const opened = `${path.join(FIXTURES, fixture)}:${markerLine(fixture, 'OPENED')}:`;
  const listen = `${path.join(FIXTURES, fixture)}:${markerLine(fixture, 'LISTEN')}:`;

  it('warns at 80% of RLIMIT_NOFILE, before connects fail, naming who holds the sockets; and again at the limit', async () => {
    const result = await runWithDescriptorLimit(64, fixture, TEXT);
    const lines = result.stderr.split('\n');
    const warning = lines.findIndex((line) => /^tcp-leak-agent: (5[2-9]|6\d) of 64 file descriptors open \(\d+%, warning at 80%\)/.test(line));
    const exhausted = lines.findIndex((line) => line.startsWith('tcp-leak-agent: file descriptors exhausted: '));
    const failed = lines.findIndex((line) => line.startsWith('fixture: connect failed with EMFILE'));
    expect(warning, explain({ ...result, leaks: [] })).toBeGreaterThanOrEqual(0);
    expect(failed).toBeGreaterThan(warning);
    expect(exhausted).toBeGreaterThan(warning);
    // The dump: clients by their connect() line, accepted sockets by the listen() line, with states.
    const dump = lines.slice(warning + 1, warning + 6).join('\n');
    expect(dump).toMatch(new RegExp(`^ +\\d+  ${escapeRegExp(opened)}\\d+: ESTABLISHED \\d+$`, 'm'));
    expect(dump).toMatch(new RegExp(`^ +\\d+  ${escapeRegExp(listen)}\\d+ \\(accepted by the server listening there\\): ESTABLISHED \\d+$`, 'm'));
    expect(lines.filter((line) => line.includes('file descriptors open ('))).toHaveLength(1); // told once
  });

  it('says nothing with TCP_LEAK_AGENT_FD_WARN=0', async () => {
    const result = await runWithDescriptorLimit(64, fixture, { ...TEXT, TCP_LEAK_AGENT_FD_WARN: '0' });
    expect(result.stderr, explain({ ...result, leaks: [] })).toContain('fixture: connect failed with EMFILE');
    expect(result.stderr).not.toContain('tcp-leak-agent');
  });
});

describe.concurrent('a program leaking from one line until descriptors run out, at the production defaults', () => {
  const fixture = 'leaks-until-descriptors-run-out.js';

  it('the dump at the limit names the leaking line (every stack is captured past the warning level); sockets from before go by their request, not one anonymous row', async () => {
    const result = await runWithDescriptorLimit(128, fixture, { NODE_ENV: 'production', TCP_LEAK_AGENT_FORMAT: 'json' });
    const last = JSON.parse(result.stdout.trim().split('\n').pop() ?? 'null') as { sites: Array<{ place: string; location: { line: number } | null; count: number; states: Record<string, number> }> } | null;
    expect(last, explain({ ...result, leaks: [] })).not.toBeNull();
    const named = last!.sites.filter((site) => site.location !== null);
    const unnamed = last!.sites.filter((site) => site.location === null);
    // Past the warning level (80% of 128), every new socket is captured (and each leak told with no line hunts its host).
    expect(named.map((site) => site.location!.line), JSON.stringify(last!.sites)).toEqual([markerLine(fixture)]);
    expect(named[0]!.count).toBeGreaterThanOrEqual(3);
    for (const site of unnamed) expect(site.place).toMatch(/^no creation stack \(not sampled\): GET http:\/\/127\.0\.0\.1:\d+\/reports\/daily$/);
    expect(last!.sites.reduce((sum, site) => sum + (site.states.CLOSE_WAIT ?? 0), 0)).toBeGreaterThanOrEqual(90);
  });
});

describe.concurrent('TIME_WAIT', () => {
  const fixture = 'time-wait-storm.js';
  // Each run leaves its connections in TIME_WAIT for 60 s, and the procfs backend reads the
  // namespace's whole tables at every scan: a slower scan keeps the suite's load reasonable.
  const TEXT = { ...FAST, TCP_LEAK_AGENT_FORMAT: 'text', TCP_LEAK_AGENT_INTERVAL_MS: '200' };
  const file = path.join(FIXTURES, fixture);

  // How long a storm waits for the warning. procfs reads the namespace's whole tables for a count,
  // and the budget then waits 200 times what that took: with the 10,000 TIME_WAIT a run of the
  // other backend leaves for 60 s, counts come 6 s or more apart, later still on a loaded machine.
  const WAIT_MS = process.env.TCP_LEAK_AGENT_BACKEND === 'procfs' ? 35_000 : 20_000;

  // A network namespace of its own for each storm when the suite may make one (unshare -n, which
  // needs CAP_SYS_ADMIN, as root has): the thousands of TIME_WAIT the rest of the suite leaves for
  // 60 s then neither count in the namespace's total nor slow each dump, and a storm's own burden
  // no other test.
  const ownNamespace = spawnSync('unshare', ['-n', 'true']).status === 0;

  /** Runs the storm under the preload; returns the run and the warning the fixture saw, if any. */
  async function storm(side: 'server' | 'client', connections: number, warnAt: number, waitMs = WAIT_MS, env: Record<string, string> = {}) {
    const stormArgs = ['--require', 'tcp-leak-agent/register', file, side, String(connections), String(waitMs)];
    const inNamespace = `require('node:child_process').spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, ...${JSON.stringify(stormArgs)}], { stdio: 'inherit' })`;
    const args = ownNamespace ? ['-e', `process.exitCode = ${inNamespace}.status`] : stormArgs;
    const result = await runNode(args, { cwd: ROOT, env: { ...TEXT, TCP_LEAK_AGENT_TIME_WAIT_WARN: String(warnAt), ...env }, timeoutMs: waitMs + 20_000 });
    const { notice } = JSON.parse(result.stdout) as { notice: { count: number } | null };
    return { result: { ...result, leaks: [] }, notice };
  }

  it("warns when a server's active closes pile up, with the count and the listen() line", async () => {
    const { result, notice } = await storm('server', 600, 500);
    expect(notice, explain(result)).not.toBeNull();
    expect(notice!.count).toBeGreaterThanOrEqual(500);
    expect(result.stderr).toContain(`tcp-leak-agent: ${notice!.count} connections this process closed first wait in TIME_WAIT (warning at 500;`);
    expect(result.stderr).toMatch(new RegExp(` ${notice!.count}  ${escapeRegExp(file)}:${markerLine(fixture, 'LISTEN')}:\\d+: closed by this process's server on port \\d+\\. Why: this server closes connections first`));
  });

  it('attributes client-side active closes to the connect() line', async () => {
    const { result, notice } = await storm('client', 300, 250);
    expect(notice, explain(result)).not.toBeNull();
    expect(result.stderr).toMatch(new RegExp(` ${notice!.count}  ${escapeRegExp(file)}:${markerLine(fixture, 'CONNECT')}:\\d+: closed by this process's clients of 127\\.0\\.0\\.1:\\d+ \\(about: one socket in \\d+ is followed\\)\\. Why: this code opens a connection per operation`));
  });

  it('follows next to no client sockets whose server closes first (the pile is on the server side)', async () => {
    const { result, notice } = await storm('server-follows' as 'server', 600, 500);
    expect(notice, explain(result)).not.toBeNull();
    const { followed } = JSON.parse(result.stdout) as { followed: { during: number; after: number } };
    // During the storms, followed only while no peer was read yet (at most about
    // FOLLOWED_PER_SECOND a second); after the warning, a count has found too little TIME_WAIT
    // toward their server (it closed first): none followed, or one in 64 or fewer (2 or 3 of 128).
    expect(followed.during, result.stdout).toBeLessThanOrEqual(2 * 600 / 8);
    expect(followed.after, result.stdout).toBeLessThanOrEqual(128 / 64 + 1);
  });

  // A network namespace of its own (see ownNamespace): the 30,000 TIME_WAIT it leaves for 60 s
  // would otherwise slow every other test of the namespace.
  it.skipIf(!ownNamespace)('warns in a network namespace already holding 30,000 TIME_WAIT connections of other traffic', async () => {
    // At the default interval a check comes every fifth scan. A dump costs what the kernel
    // sends: with the port filter only this process's own, so the budget that spaces dumps
    // (200 times what the last took) allows one every few seconds. procfs has no filter and
    // reads the whole tables, about 3 µs per row, so its checks come every ~20 s.
    const waitMs = process.env.TCP_LEAK_AGENT_BACKEND === 'procfs' ? 50_000 : 12_000;
    const env = { ...process.env, ...TEXT, TCP_LEAK_AGENT_INTERVAL_MS: '1000', TCP_LEAK_AGENT_TIME_WAIT_WARN: '2000' };
    delete env.NODE_OPTIONS;
    const script = 'ip link set lo up && exec "$0" "$@"';
    const child = spawn('unshare', ['-n', 'sh', '-c', script, process.execPath, path.join(FIXTURES, 'busy-namespace.js'), '2500', String(waitMs)], { cwd: ROOT, env });
    let out = '';
    let errors = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    await new Promise((resolve) => child.once('exit', resolve));
    const { filled, storm } = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { filled: number; storm: { code: number; stdout: string; stderr: string } };
    expect(filled, `${out}\n${errors}`).toBeGreaterThanOrEqual(30_000);
    const result = { code: storm.code, stdout: storm.stdout, stderr: storm.stderr, leaks: [] };
    const { notice } = JSON.parse(storm.stdout) as { notice: { count: number } | null };
    expect(notice, explain(result)).not.toBeNull();
    expect(notice!.count).toBeGreaterThanOrEqual(2000);
    expect(notice!.count).toBeLessThanOrEqual(2500); // only this process's own closes count
    const namespaceTotal = Number(/; (\d+) in the network namespace\)/.exec(storm.stderr)?.[1]);
    expect(namespaceTotal).toBeGreaterThanOrEqual(30_000);
  }, 90_000);

  it('stays quiet below the threshold', async () => {
    const { result, notice } = await storm('server', 100, 1000, 2000);
    expect(notice, explain(result)).toBeNull();
    expect(result.stderr).toBe('');
  });
});
