import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Leak } from '../src/common/types';
import { FIXTURES, markerLine, ROOT, runNode, scratchDir } from './helpers';

const CLI = path.join(ROOT, 'dist', 'cli.js');
const SERVICE = path.join(FIXTURES, 'attach-service.js');
const running: ChildProcess[] = [];

/** Starts the service without the agent; resolves once it says its sockets are in place. */
async function startService(mode: 'leaky' | 'clean', nodeArgs: string[] = []): Promise<ChildProcess> {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const service = spawn(process.execPath, [...nodeArgs, SERVICE, mode], { stdio: ['pipe', 'pipe', 'pipe'], env });
  running.push(service);
  (service as ChildProcess & { errors?: string }).errors = '';
  service.stderr!.on('data', (chunk: Buffer) => {
    (service as ChildProcess & { errors?: string }).errors += chunk.toString();
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    service.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('ready')) resolve();
    });
    service.once('exit', (code) => reject(new Error(`the service exited (${code}) before it was ready: ${out}`)));
  });
  return service;
}

/** Whether the process listens on the inspector's port (its namespace's table, its descriptors). */
function listensOnInspectorPort(pid: number): boolean {
  const inodes = ['tcp', 'tcp6'].flatMap((table) =>
    fs
      .readFileSync(`/proc/${pid}/net/${table}`, 'latin1')
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter((fields) => fields[1]?.endsWith(':2405') && fields[3] === '0A')
      .map((fields) => `socket:[${fields[9]}]`),
  );
  return fs.readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try {
      return inodes.includes(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      return false;
    }
  });
}

/** What the service wrote to stderr so far (kept by startService). */
function serviceErrors(service: ChildProcess): string {
  const ended = service.exitCode !== null || service.signalCode !== null ? ` (the service ended: ${service.exitCode ?? service.signalCode})` : '';
  return `${(service as ChildProcess & { errors?: string }).errors ?? ''}${ended}`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

afterEach(() => {
  for (const service of running.splice(0)) service.kill();
});

// One at a time: each attach opens the inspector on 127.0.0.1:9229.
describe('tcp-leak-agent attach <pid>', () => {
  it('names the lines behind leaks that already happened, exits 1, and leaves the service running with its inspector closed', async () => {
    const service = await startService('leaky');
    const pid = service.pid!;
    const result = await runNode([CLI, 'attach', String(pid), '--format', 'json'], { cwd: ROOT });
    const leaks = result.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Leak);
    expect(result.code, result.stderr).toBe(1);
    expect(leaks.map((leak) => leak.location?.line).sort()).toEqual([markerLine('attach-service.js', 'UPGRADE'), markerLine('attach-service.js', 'END')].sort());
    const unread = leaks.find((leak) => leak.origin === 'client')!;
    expect(unread.cause?.code).toBe('unread-http-response');
    expect(unread.lastUse?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/export\?token=…$/);
    expect(unread.listener?.what).toBe("a 'end' listener on the response");
    expect(leaks.every((leak) => leak.afterTheFact === true && leak.state === 'CLOSE_WAIT')).toBe(true);
    expect(result.stderr).toMatch(new RegExp(`^tcp-leak-agent attach: pid ${pid}: \\d+ TCP sockets checked, 2 leaked sockets; its inspector \\(127\\.0\\.0\\.1:9229 only\\) was open for \\d+ ms and is closed\\.$`, 'm'));
    expect(alive(pid), serviceErrors(service)).toBe(true);
    expect(listensOnInspectorPort(pid)).toBe(false);
  }, 30_000);

  it('writes text reports that start with the line', async () => {
    const service = await startService('leaky');
    const result = await runNode([CLI, 'attach', String(service.pid)], { cwd: ROOT });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stdout).toContain(`${SERVICE}:${markerLine('attach-service.js', 'UPGRADE')}:`);
    expect(result.stdout).toContain("Handed to the server's 'upgrade' listener at");
  }, 30_000);

  it('exits 0 for a clean service, which keeps running', async () => {
    const service = await startService('clean');
    const result = await runNode([CLI, 'attach', String(service.pid)], { cwd: ROOT });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/no leaked socket; its inspector .* is closed\.\n$/);
    expect(alive(service.pid!), serviceErrors(service)).toBe(true);
    expect(listensOnInspectorPort(service.pid!)).toBe(false);
  }, 30_000);

  it('with --stay, leaves the agent running in the service: its scans report to --output', async () => {
    const service = await startService('leaky');
    const output = path.join(scratchDir('attach'), 'leaks.log');
    const result = await runNode([CLI, 'attach', String(service.pid), '--stay', '--output', output], { cwd: ROOT });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain(`the agent stays in the process (writing to ${output})`);
    // Sockets older than the agent are found among the process's descriptors by its periodic scan.
    const deadline = Date.now() + 20_000;
    while (!(fs.existsSync(output) && fs.readFileSync(output, 'utf8').includes('leaked TCP socket')) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(fs.existsSync(output) ? fs.readFileSync(output, 'utf8') : '', serviceErrors(service)).toContain('leaked TCP socket, stuck in CLOSE_WAIT');
    expect(listensOnInspectorPort(service.pid!)).toBe(false);
  }, 40_000);

  it('exits 2 with one line for a pid that does not exist', async () => {
    const result = await runNode([CLI, 'attach', '4194999'], { cwd: ROOT });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('tcp-leak-agent attach: no process with pid 4194999\n');
  });

  it('exits 2 with one line for a process started with --disable-sigusr1, and leaves it untouched', async () => {
    const service = await startService('clean', ['--disable-sigusr1']);
    const result = await runNode([CLI, 'attach', String(service.pid)], { cwd: ROOT });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`^tcp-leak-agent attach: pid ${service.pid} was started with --disable-sigusr1: .*\\n$`));
    expect(alive(service.pid!)).toBe(true);
  });
});
