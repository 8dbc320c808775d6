'use strict';
// The agent's scan over N open, tracked loopback sockets (N/2 connections,
// both ends): registry walk, descriptor reads, one native batch call, and
// the detector. Timed against the bare C loop of getsockopt(TCP_INFO) in the
// addon over the same descriptors, in the same process, passes alternating,
// so both see the same sockets and the same machine.
// Prints: agent-scan sockets=N ns_per_socket=X bare_ns_per_socket=Y ratio=Z
const net = require('node:net');
const { performance } = require('node:perf_hooks');
const { start, findLeaks } = require('..');

const n = Number(process.argv[2] || 5000);
const passes = Number(process.argv[3] || 50);

async function main() {
  start({ intervalMs: 3_600_000, output: 'none' });
  const server = net.createServer({ pauseOnConnect: true });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', 4096, resolve));
  const port = server.address().port;
  const sockets = [];
  server.on('connection', (socket) => sockets.push(socket));
  for (let i = 0; i < n / 2; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, n / 2 - i) }, () =>
        new Promise((resolve) => {
          const socket = net.connect(port, '127.0.0.1', () => resolve());
          sockets.push(socket);
        })),
    );
  }
  while (sockets.length < n) await new Promise((resolve) => setImmediate(resolve));
  const binding = require('../build/Release/tcp_leak_agent.node');
  const fds = Int32Array.from(sockets.map((socket) => socket._handle.fd));
  const out = new Int32Array(fds.length * binding.SAMPLE_STRIDE);
  let best = Infinity;
  let bestBare = Infinity;
  for (let p = 0; p < passes; p++) {
    const t0 = performance.now();
    if (findLeaks().length !== 0) throw new Error('unexpected leak');
    const t1 = performance.now();
    binding.scanSockets(fds, fds.length, out);
    const t2 = performance.now();
    best = Math.min(best, t1 - t0);
    bestBare = Math.min(bestBare, t2 - t1);
  }
  const perSocket = (ms) => ((ms * 1e6) / n).toFixed(1);
  console.log(`agent-scan sockets=${n} ns_per_socket=${perSocket(best)} bare_ns_per_socket=${perSocket(bestBare)} ratio=${(best / bestBare).toFixed(2)}`);
  for (const socket of sockets) socket.destroy();
  server.close();
}
main();
