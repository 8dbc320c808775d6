import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { explain, FAST, FIXTURES, markerLine, parseLeaks, ROOT, runFixture, runNode } from './helpers';

// A network namespace of our own needs root (CI runs as root); elsewhere this test cannot run.
const canUnshare = spawnSync('unshare', ['-n', 'true']).status === 0;

describe.concurrent('dead peers', () => {
  it.runIf(canUnshare)('reports a connection whose peer stopped answering, with the retransmissions', async () => {
    const fixture = path.join(FIXTURES, 'dead-peer.js');
    const script = `ip link set lo up && ip addr add 10.9.9.1/32 dev lo && exec "${process.execPath}" --require tcp-leak-agent/register "${fixture}"`;
    const result = await runNode(['-e', `process.exitCode = require('node:child_process').spawnSync('unshare', ['-n', 'sh', '-c', ${JSON.stringify(script)}], { stdio: 'inherit' }).status`], {
      cwd: ROOT,
      env: { ...FAST, TCP_LEAK_AGENT_DEAD_PEER_RETRIES: '3' },
    });
    const leaks = parseLeaks(result.stderr);
    expect(leaks.map((leak) => leak.kind), explain({ ...result, leaks })).toEqual(['dead-peer']);
    expect(leaks[0]!.unanswered).toBeGreaterThanOrEqual(3);
    expect(leaks[0]!.location).toMatchObject({ file: fixture, line: markerLine('dead-peer.js', 'DEAD') });
    expect(leaks[0]!.remote).toMatchObject({ address: '10.9.9.1', port: 7000 });
  });

  // procfs has no send or receive times and no keepalive flag: the idle check needs the addon.
  it.skipIf(process.env.TCP_LEAK_AGENT_BACKEND === 'procfs')('reports a connection silent for idleMs with keepalive off, and says what to do', async () => {
    const result = await runFixture('idle-connection.js', { env: { ...FAST, TCP_LEAK_AGENT_IDLE_MS: '500', TCP_LEAK_AGENT_FORMAT: 'text' } });
    const place = `${path.join(FIXTURES, 'idle-connection.js')}:${markerLine('idle-connection.js', 'IDLE')}:`;
    // Both ends are idle; the client's report names its connect() line.
    expect(result.stderr, explain(result)).toMatch(new RegExp(`^${place.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\d+ in .*: dead peer: the connection is open, but the other end stopped answering$`, 'm'));
    expect(result.stderr).toContain('and TCP keepalive is off');
    expect(result.stderr).toContain('What to do: turn on TCP keepalive');
  });

  it('leaves an idle connection with keepalive on alone', async () => {
    const result = await runFixture('idle-connection.js', { args: ['keepalive'], env: { ...FAST, TCP_LEAK_AGENT_IDLE_MS: '500' } });
    expect(result.code, explain(result)).toBe(0);
    expect(result.stderr).toBe('');
  });
});
