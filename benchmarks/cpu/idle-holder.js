'use strict';
// Opens <count> loopback connections to <port>, lets them sit idle, then measures its own CPU
// time (user + system) over <windowMs>: the standing cost of whatever else runs in the process.
const net = require('node:net');
const [count, port, windowMs] = process.argv.slice(2).map(Number);

async function main() {
  const sockets = [];
  for (let opened = 0; opened < count; opened += 200) {
    await Promise.all(
      Array.from({ length: Math.min(200, count - opened) }, () =>
        new Promise((resolve, reject) => {
          const socket = net.connect(port, '127.0.0.1', resolve);
          socket.on('error', reject);
          sockets.push(socket);
        })),
    );
  }
  // Let start-up work (first scans, JIT) pass before measuring.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const before = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const used = process.cpuUsage(before);
  const msPerSecond = ((used.user + used.system) / 1000 / windowMs) * 1000;
  console.log(`result sockets=${sockets.length} cpu_ms_per_s=${msPerSecond.toFixed(2)}`);
  process.exit(0);
}
main();
