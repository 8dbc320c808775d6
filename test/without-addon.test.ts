import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain, FAST, parseLeaks, ROOT, runNode } from './helpers';

// The package as an install without any binary looks: dist/ and package.json,
// no build/ and no prebuilds/ (a platform no prebuild fits, with install scripts
// blocked or no compiler). The same program runs on it as Linux, then as a
// platform with no /proc (process.platform set before the agent loads).
let project: string;

// A client whose peer closes first and which never ends its side: CLOSE_WAIT.
// It stops at the first leak report, or after 2 s when none can come.
const PROGRAM = `'use strict';
const net = require('node:net');
const diagnosticsChannel = require('node:diagnostics_channel');
const agent = require('tcp-leak-agent');
const server = net.createServer((socket) => socket.end('bye'));
server.listen(0, '127.0.0.1', () => {
  const client = net.connect({ port: server.address().port, host: '127.0.0.1', allowHalfOpen: true });
  client.resume();
  client.on('end', () => {
    const finish = () => {
      clearTimeout(deadline);
      diagnosticsChannel.unsubscribe('tcp-leak-agent:leak', finish);
      const tracked = agent.snapshot().filter((s) => s.remote && s.remote.port === server.address().port).length;
      console.log(JSON.stringify({ backend: agent.backend, platform: process.platform, tracked }));
      client.destroy();
      server.close();
    };
    const deadline = setTimeout(finish, 2000);
    diagnosticsChannel.subscribe('tcp-leak-agent:leak', finish);
  });
});
`;

beforeAll(() => {
  project = mkdtempSync(path.join(tmpdir(), 'tcp-leak-agent-no-addon-'));
  const installed = path.join(project, 'node_modules', 'tcp-leak-agent');
  cpSync(path.join(ROOT, 'dist'), path.join(installed, 'dist'), { recursive: true });
  cpSync(path.join(ROOT, 'package.json'), path.join(installed, 'package.json'));
  symlinkSync(path.join(ROOT, 'node_modules', 'node-gyp-build'), path.join(project, 'node_modules', 'node-gyp-build'));
  writeFileSync(path.join(project, 'program.js'), PROGRAM);
  writeFileSync(path.join(project, 'as-windows.js'), "Object.defineProperty(process, 'platform', { value: 'win32' });\n");
});

afterAll(() => rmSync(project, { recursive: true, force: true }));

function run(preloads: string[], env: Record<string, string> = {}) {
  const args = preloads.flatMap((preload) => ['--require', preload]);
  // The backend is left to choose (the suite also runs with TCP_LEAK_AGENT_BACKEND=procfs set).
  const defaults = { ...FAST, TCP_LEAK_AGENT_FAIL_ON_LEAK: '1', TCP_LEAK_AGENT_BACKEND: '' };
  return runNode([...args, 'program.js'], { cwd: project, env: { ...defaults, ...env } });
}

describe.concurrent('without the addon', () => {
  it('falls back to procfs on Linux and still catches the leak', async () => {
    const result = await run(['tcp-leak-agent/register']);
    expect(result.code, explain(result)).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({ backend: 'procfs', platform: 'linux', tracked: 1 });
    expect(parseLeaks(result.stderr).map((leak) => leak.state)).toEqual(['CLOSE_WAIT']);
  });

  it('refuses TCP_LEAK_AGENT_BACKEND=native in one line naming the missing addon, and does not start', async () => {
    const result = await run(['tcp-leak-agent/register'], { TCP_LEAK_AGENT_BACKEND: 'native' });
    const lines = result.stderr.trim().split('\n');
    expect(lines, explain(result)).toHaveLength(1);
    expect(lines[0]).toMatch(/^tcp-leak-agent: the native addon is not available .*The agent is not running\.$/);
    expect(result.code).toBe(1); // FAIL_ON_LEAK was asked for and the agent could not run
  });

  it('on a platform without /proc: says so once, tracks sockets, never throws, lets the program end', async () => {
    const result = await run(['./as-windows.js', 'tcp-leak-agent/register']);
    expect(result.code, explain(result)).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ backend: 'none', platform: 'win32', tracked: 1 });
    expect(result.stderr).toBe(
      'tcp-leak-agent: kernel TCP state is not available on win32: sockets are tracked (snapshot()), but no leak can be detected.\n',
    );
  });

  it('on a platform without /proc, refuses TCP_LEAK_AGENT_BACKEND=procfs by name', async () => {
    const result = await run(['./as-windows.js', 'tcp-leak-agent/register'], { TCP_LEAK_AGENT_BACKEND: 'procfs' });
    expect(result.stderr.trim().split('\n'), explain(result)).toEqual([
      expect.stringMatching(/^tcp-leak-agent: TCP_LEAK_AGENT_BACKEND="procfs" .*this is win32\. The agent is not running\.$/),
    ]);
  });
});
