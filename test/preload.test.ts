import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { explain, FAST, markerLine, parseLeaks, ROOT, runFixture, runNode, scratchDir } from './helpers';

describe.concurrent('the preload', () => {
  it('stays silent and never keeps a finished program alive', async () => {
    const started = Date.now();
    const result = await runFixture('quiet-program.js', { env: { TCP_LEAK_AGENT_FAIL_ON_LEAK: '1' } });
    expect(result.code, explain(result)).toBe(0);
    expect(result.stderr + result.stdout).toBe('');
    // The default scan interval is 1000 ms; an unref'd timer lets the program end well before a second one.
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  for (const [variable, value, accepted] of [
    ['TCP_LEAK_AGENT_INTERVAL_MS', 'soon', 'whole number of milliseconds'],
    ['TCP_LEAK_AGENT_CLOSE_WAIT_MS', '-5', 'whole number of milliseconds'],
    ['TCP_LEAK_AGENT_STALL_MS', '1m', 'whole number of milliseconds'],
    ['TCP_LEAK_AGENT_FORMAT', 'xml', '"text" or "json"'],
    ['TCP_LEAK_AGENT_OUTPUT', '/nonexistent-dir/leaks.log', 'file path that can be opened'],
    ['TCP_LEAK_AGENT_FAIL_ON_LEAK', 'maybe', '1 or 0'],
  ] as const) {
    it(`rejects ${variable}=${value} in one line, does not start, and fails the run under FAIL_ON_LEAK`, async () => {
      const env: Record<string, string> = { TCP_LEAK_AGENT_FAIL_ON_LEAK: '1', [variable]: value };
      const result = await runFixture('quiet-program.js', { env });
      const lines = result.stderr.trim().split('\n');
      expect(lines, explain(result)).toHaveLength(1);
      expect(lines[0]).toContain(`${variable}=${JSON.stringify(value)}`);
      expect(lines[0]).toContain(accepted);
      expect(lines[0]).toContain('The agent is not running.');
      expect(result.code, explain(result)).toBe(1);
    });
  }

  it('loads what watching needs and no more: no tls, http or report code before a leak is told', async () => {
    // What a program finds loaded on its first line: every process the preload starts in pays for it.
    const look = "console.log(JSON.stringify({ builtins: process.moduleLoadList, files: Object.keys(require.cache) }))";
    const result = await runNode(['--require', 'tcp-leak-agent/register', '-e', look], { cwd: ROOT });
    expect(result.code, explain({ ...result, leaks: [] })).toBe(0);
    const { builtins, files } = JSON.parse(result.stdout) as { builtins: string[]; files: string[] };
    expect(builtins).not.toContain('NativeModule tls');
    expect(builtins).not.toContain('NativeModule http');
    const agentFiles = files.filter((file) => file.includes(`${path.sep}dist${path.sep}`)).map((file) => path.relative(path.join(ROOT, 'dist'), file));
    expect(agentFiles).toContain(path.join('seen', 'socket-sources.js'));
    for (const later of ['explained/leak.js', 'explained/dump.js', 'told/format.js', 'told/reporter.js', 'told/ci-teller.js', 'cli/unchecked-processes.js']) {
      expect(agentFiles).not.toContain(path.join(...later.split('/')));
    }
  });

  it('rejects a bad variable without failing the run when FAIL_ON_LEAK is not set', async () => {
    const result = await runFixture('quiet-program.js', { env: { TCP_LEAK_AGENT_INTERVAL_MS: '0' } });
    expect(result.code, explain(result)).toBe(0);
    expect(result.stderr).toContain('TCP_LEAK_AGENT_INTERVAL_MS=0 is not accepted: expected a whole number of milliseconds from 10');
  });

  it('appends reports to the file named by TCP_LEAK_AGENT_OUTPUT', async () => {
    const file = path.join(scratchDir('output'), 'leaks.jsonl');
    const result = await runFixture('http-get-unread-body.js', { env: { ...FAST, TCP_LEAK_AGENT_OUTPUT: file } });
    expect(result.code, explain(result)).toBe(0);
    expect(result.stderr).toBe('');
    const leaks = parseLeaks(readFileSync(file, 'utf8'));
    expect(leaks).toHaveLength(1);
    expect(leaks[0]!.location?.line).toBe(markerLine('http-get-unread-body.js'));
  });

  it('works inside worker_threads', async () => {
    const result = await runFixture('worker-thread-leak.js', { env: FAST });
    expect(result.code, explain(result)).toBe(0);
    expect(result.stdout).toContain('worker exited 0');
    expect(result.leaks, explain(result)).toHaveLength(1);
    expect(result.leaks[0]!.threadId).toBeGreaterThan(0);
    expect(result.leaks[0]!.location?.line).toBe(markerLine('worker-thread-leak.js'));
  });

  it('never keeps a closed socket alive: every one is garbage collected', async () => {
    const result = await runFixture('closed-sockets-are-collected.js', {
      env: { TCP_LEAK_AGENT_INTERVAL_MS: '20' },
      nodeArgs: ['--expose-gc', '--require', 'tcp-leak-agent/register'],
    });
    expect(result.code, explain(result)).toBe(0);
    expect(result.stdout).toContain('collected 200 of 200');
  });
});
