'use strict';
// Run with --expose-gc. Two measurements:
//   per-socket: heap retained while N connections (2N sockets) are open, to
//     be compared bare and under the agent;
//   churn: heap before and after M sockets were opened and closed, under the agent.
// Prints: heap open_sockets=2N heap_bytes=X   and   heap churned=M before=X after=Y
const net = require('node:net');
const { churnCount } = require('./connect-close');

const mode = process.argv[2];
const count = Number(process.argv[3]);

function settledHeap() {
  for (let i = 0; i < 4; i++) global.gc();
  return process.memoryUsage().heapUsed;
}

async function openConnections(port, n) {
  const sockets = [];
  for (let i = 0; i < n; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, n - i) }, () =>
      new Promise((resolve) => sockets.push(net.connect(port, '127.0.0.1', resolve)))));
  }
  return sockets;
}

async function main() {
  const accepted = [];
  const server = net.createServer((socket) => {
    accepted.push(socket);
    socket.on('end', () => socket.end()).resume();
    socket.on('close', () => accepted.splice(accepted.indexOf(socket), 1));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', 4096, resolve));
  const port = server.address().port;
  // Warm up the paths (and the agent's lazy parts) before the baseline.
  await churnCount(port, 32, 200);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const before = settledHeap();
  if (mode === 'open') {
    const sockets = await openConnections(port, count);
    while (accepted.length < count) await new Promise((resolve) => setImmediate(resolve));
    const during = settledHeap();
    console.log(`heap open_sockets=${2 * count} heap_bytes=${during - before}`);
    for (const socket of sockets) socket.destroy();
  } else {
    await churnCount(port, 32, count);
    // Give the agent's scan a pass to drop what it tracked, then collect.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const after = settledHeap();
    console.log(`heap churned=${count} before=${before} after=${after}`);
  }
  server.close();
}
main();
