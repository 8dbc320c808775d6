// How often TIME_WAIT is counted, on the real backend and real loopback connections: every fifth
// scan; further apart while dumps of the namespace find little of this process's own (each dump
// walks the whole namespace, whatever it finds); every fifth scan again once they find a quarter
// of the threshold.
import { execFile } from 'node:child_process';
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResourceChecks } from '../src/agent/resource-checks';
import { selectBackend } from '../src/measured/backend';
import { resolveOptions } from '../src/common/options';
import { namespaceTimeWait } from '../src/measured/proc-net-tables';

const backend = selectBackend();
const dumpsAt: number[] = [];
let scan = 0;
// The real reader, each dump noted with the scan it came at.
const reader = Object.create(backend.binding) as typeof backend.binding;
reader.listTimeWait = (...args: Parameters<typeof backend.binding.listTimeWait>) => {
  dumpsAt.push(scan);
  return backend.binding.listTimeWait(...args);
};

// A server that ends each connection after a greeting when `serverClosesFirst`, else waits for the client's end.
let serverClosesFirst = false;
const server = net.createServer((socket) => {
  socket.resume();
  if (serverClosesFirst) socket.end('bye');
  else {
    socket.write('hello');
    socket.on('end', () => socket.end());
  }
});
let port = 0;

/** `count` connections to the server, each closed first by the side the server says. */
async function connections(count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('error', reject);
      socket.once('data', () => {
        if (!serverClosesFirst) socket.end();
      });
      socket.on('end', () => socket.end());
      socket.resume();
      socket.once('close', () => resolve());
    });
  }
}

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(() => server.close());

describe('TIME_WAIT counts', () => {
  it("come further apart while little of the namespace's TIME_WAIT is this process's, and every fifth scan once a quarter of the threshold is", async () => {
    const checks = new ResourceChecks(reader, resolveOptions({ timeWaitWarn: 40, fdWarnPercent: 0 }), (error) => {
      throw error;
    });
    // This process's server: its port is what the dumps look for. The connections' TIME_WAIT is
    // their clients' (they close first), on other ports: the namespace's, not this server's.
    checks.hooks().listening!(server, undefined);
    await connections(60);
    // Scans 10 minutes apart, from 10 minutes after start: neither the budget that spaces dumps by
    // what the last took nor the one counted from start (see the last test) decides here.
    const start = Date.now() + 600_000;
    const scans = (count: number) => {
      const from = scan;
      dumpsAt.length = 0;
      for (let i = 0; i < count; i++, scan++) checks.afterScan(0, () => [], start + scan * 600_000);
      return dumpsAt.map((at) => at - from);
    };
    // Every fifth scan would be 16 dumps; two that find none, then 10, 20 and 40 scans apart.
    expect(scans(80)).toEqual([0, 5, 15, 35, 75]);

    // A few of its own (5, under a quarter of the threshold of 40): still 40 scans apart.
    serverClosesFirst = true;
    await connections(5);
    expect(scans(80)).toEqual([35, 75]);

    // A quarter of the threshold and more (25 in all): found at the next count, and the counts
    // after it come every fifth scan.
    await connections(20);
    const found = scans(50);
    expect(found[0]).toBeLessThanOrEqual(40);
    expect(found.slice(1, 3)).toEqual([found[0]! + 5, found[0]! + 10]);
  });

  it('are not made while the sockets this process has seen could not hold a quarter of the threshold, whatever the namespace holds', async () => {
    // A neighbour's pile: another process makes 600 connections to this server and closes each
    // first, so their TIME_WAIT is its own, in this namespace.
    serverClosesFirst = false;
    const neighbour = `const net = require('node:net');
      (async () => { for (let i = 0; i < 600; i++) await new Promise((resolve, reject) => {
        const socket = net.connect(${port}, '127.0.0.1');
        socket.once('error', reject).once('data', () => socket.end()).on('end', () => socket.end()).once('close', resolve).resume();
      }); })();`;
    await new Promise<void>((resolve, reject) => execFile(process.execPath, ['-e', neighbour], (error) => (error ? reject(error) : resolve())));
    const options = resolveOptions({ timeWaitWarn: 400, fdWarnPercent: 0 });
    // The premise: this worker's open descriptors (the other half of the bound) are under a quarter of 400.
    expect(backend.binding.countDescriptors()).toBeLessThan(100);
    // From 10 minutes after start, as above.
    const start = Date.now() + 600_000;
    const dumpsOver = (checks: ResourceChecks, socketsSeen: number) => {
      // This process's server, whose side of the pile a dump would look for.
      checks.hooks().listening!(server, undefined);
      const from = scan;
      dumpsAt.length = 0;
      for (let i = 0; i < 30; i++, scan++) checks.afterScan(0, () => [], start + (scan - from) * 600_000, undefined, socketsSeen);
      return dumpsAt.map((at) => at - from);
    };
    // No socket seen (and this worker's few descriptors): no count. (An agent started late in its
    // process counts in its first 60 s, as connections closed before it could be in TIME_WAIT;
    // these scans come 10 minutes after start.)
    const quiet = dumpsOver(new ResourceChecks(reader, options, (error) => { throw error; }), 0);
    expect(quiet).toEqual([]);
    // 100 seen, a quarter of the threshold and more: counted as before, from the first scan on.
    const counted = dumpsOver(new ResourceChecks(reader, options, (error) => { throw error; }), 100);
    expect(counted.slice(0, 2)).toEqual([0, 5]);
  });

  it('are spaced by the CPU time a check took, not by the time it waited', () => {
    // A dump that waits 100 ms without using a core, as one does on a busy machine waiting for
    // one: charged that wall time, the next count would wait 20 s (200 times it).
    const waiting = Object.create(backend.binding) as typeof backend.binding;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    waiting.listTimeWait = (...args: Parameters<typeof backend.binding.listTimeWait>) => {
      dumpsAt.push(scan);
      Atomics.wait(pause, 0, 0, 100);
      return backend.binding.listTimeWait(...args);
    };
    // The neighbour's pile of the test above (600) is still there: TIME_WAIT lasts 60 s.
    expect(namespaceTimeWait()).toBeGreaterThanOrEqual(600);
    const checks = new ResourceChecks(waiting, resolveOptions({ timeWaitWarn: 400, fdWarnPercent: 0 }), (error) => {
      throw error;
    });
    checks.hooks().listening!(server, undefined);
    // Scans a second apart, from 10 minutes after start (the budget from start does not decide).
    const start = Date.now() + 600_000;
    const from = scan;
    dumpsAt.length = 0;
    for (let i = 0; i < 15; i++, scan++) checks.afterScan(0, () => [], start + (scan - from) * 1000, undefined, 100);
    expect(dumpsAt.map((at) => at - from).slice(0, 2)).toEqual([0, 5]);
  });

  it('wait until the time since start pays for the first: 0.5% of it, at the cost of walking the namespace', async () => {
    // The pile of the test above (600, a neighbour's) is still there: TIME_WAIT lasts 60 s.
    const options = resolveOptions({ timeWaitWarn: 400, fdWarnPercent: 0 });
    const before = namespaceTimeWait();
    expect(before).toBeGreaterThanOrEqual(600);
    const checks = new ResourceChecks(reader, options, (error) => {
      throw error;
    });
    // Read after the agent started, so that scan k comes at least k seconds after its start.
    const start = Date.now();
    checks.hooks().listening!(server, undefined);
    const from = scan;
    dumpsAt.length = 0;
    // Scans a second apart from start, 100 sockets seen (past the bound of the test above).
    for (let i = 0; i < 30; i++, scan++) checks.afterScan(0, () => [], start + (scan - from) * 1000, undefined, 100);
    const after = namespaceTimeWait();
    const first = dumpsAt[0]! - from;
    // Before a dump was timed here, it is priced at 0.5 µs a connection (3 µs a row where the
    // backend reads whole tables): 0.5% of a second pays for 10,000 (1,667). Not at the first
    // scan, whatever the namespace holds (600 or more); by the first second that pays for the
    // most it held.
    const paidPerSecond = backend.binding.readsWholeTables ? 5 / 0.003 : 5 / 0.0005;
    expect(first).toBeGreaterThanOrEqual(1);
    expect(first).toBeLessThanOrEqual(Math.ceil(Math.max(before, after) / paidPerSecond));
  });
});
