import { spawn } from 'node:child_process';
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

describe.concurrent('TIME_WAIT', () => {
  const fixture = 'time-wait-storm.js';
  // Each run leaves its connections in TIME_WAIT for 60 s, and the procfs backend reads the
  // namespace's whole tables at every scan: a slower scan keeps the suite's load reasonable.
  const TEXT = { ...FAST, TCP_LEAK_AGENT_FORMAT: 'text', TCP_LEAK_AGENT_INTERVAL_MS: '200' };
  const file = path.join(FIXTURES, fixture);

  /** Runs the storm under the preload; returns the run and the warning the fixture saw, if any. */
  async function storm(side: 'server' | 'client', connections: number, warnAt: number, waitMs?: number, env: Record<string, string> = {}) {
    const args = ['--require', 'tcp-leak-agent/register', file, side, String(connections), ...(waitMs ? [String(waitMs)] : [])];
    const result = await runNode(args, { cwd: ROOT, env: { ...TEXT, TCP_LEAK_AGENT_TIME_WAIT_WARN: String(warnAt), ...env } });
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
    expect(result.stderr).toMatch(new RegExp(` ${notice!.count}  ${escapeRegExp(file)}:${markerLine(fixture, 'CONNECT')}:\\d+: closed by this process's clients of 127\\.0\\.0\\.1:\\d+ \\(about: one socket in 8 is followed\\)\\. Why: this code opens a connection per operation`));
  });

  it('warns in a network namespace already holding 30,000 TIME_WAIT connections of other traffic', async () => {
    // A shared host: another process's closes fill the namespace first (for 60 s, TIME_WAIT's length).
    const filler = spawn(process.execPath, [path.join(FIXTURES, 'time-wait-filler.js'), '30000'], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const filled = await new Promise<number>((resolve, reject) => {
        let text = '';
        filler.stdout.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          const match = /filled tw=(\d+)/.exec(text);
          if (match) resolve(Number(match[1]));
        });
        filler.once('exit', (code) => reject(new Error(`the filler exited (${code}) before filling: ${text}`)));
      });
      expect(filled).toBeGreaterThanOrEqual(30_000);
      // At the default interval a check comes every fifth scan. A dump costs what the kernel
      // sends: with the port filter only this process's own, so the budget that spaces dumps
      // (200 times what the last took) allows one every few seconds. procfs has no filter and
      // reads the whole tables, about 3 µs per row, so its checks come every ~20 s.
      const waitMs = process.env.TCP_LEAK_AGENT_BACKEND === 'procfs' ? 50_000 : 12_000;
      const { result, notice } = await storm('server', 2500, 2000, waitMs, { TCP_LEAK_AGENT_INTERVAL_MS: '1000' });
      expect(notice, explain(result)).not.toBeNull();
      expect(notice!.count).toBeGreaterThanOrEqual(2000);
      expect(notice!.count).toBeLessThanOrEqual(2500); // only this process's own closes count
      const namespaceTotal = Number(/; (\d+) in the network namespace\)/.exec(result.stderr)?.[1]);
      expect(namespaceTotal).toBeGreaterThanOrEqual(30_000);
    } finally {
      filler.stdin.end();
    }
  }, 90_000);

  it('stays quiet below the threshold', async () => {
    const { result, notice } = await storm('server', 100, 1000, 2000);
    expect(notice, explain(result)).toBeNull();
    expect(result.stderr).toBe('');
  });
});
