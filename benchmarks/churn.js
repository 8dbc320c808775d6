'use strict';
// Connection churn: connect to a local server and close, in a loop, for a
// fixed time. Run it bare and under the preload to compare.
// Prints: churn connections_per_s=X
const net = require('node:net');

const durationMs = Number(process.argv[2] || 3000);
const concurrency = 16;

async function main() {
  const server = net.createServer((socket) => socket.on('end', () => socket.end()).resume());
  await new Promise((resolve) => server.listen(0, '127.0.0.1', 1024, resolve));
  const port = server.address().port;
  let done = 0;
  const deadline = Date.now() + durationMs;
  const loop = async () => {
    while (Date.now() < deadline) {
      await new Promise((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.end());
        socket.resume();
        socket.on('close', resolve);
      });
      done++;
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, loop));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`churn connections_per_s=${(done / seconds).toFixed(0)}`);
  server.close();
}
main();
