'use strict';
// Makes <count> requests to <port>, <concurrency> at a time, in one of three modes:
//   keepalive-http  http.get over a keep-alive agent
//   keepalive-fetch fetch() (undici's pool)
//   new-connection  http.get with a new connection per request (agent: false)
// With "measure", reports its own CPU time (user + system) per request after a warm-up; without,
// it is only the load for a measured server.
const http = require('node:http');
const [mode, port, count, concurrency, measure] = process.argv.slice(2);
const url = `http://127.0.0.1:${port}/`;
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: Number(concurrency) });

function get() {
  if (mode === 'keepalive-fetch') return fetch(url).then((response) => response.text());
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: mode === 'new-connection' ? false : keepAlive }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    request.on('error', reject);
  });
}

async function run(total) {
  let next = 0;
  const worker = async () => {
    while (next++ < total) await get();
  };
  await Promise.all(Array.from({ length: Number(concurrency) }, worker));
}

async function main() {
  if (measure !== 'measure') {
    console.log('ready');
    await run(Number(count));
    console.log('result done=1');
    process.exit(0);
  }
  await run(Math.min(2000, Number(count))); // warm-up: JIT, pools
  const before = process.cpuUsage();
  await run(Number(count));
  const used = process.cpuUsage(before);
  console.log(`result cpu_us_per_request=${((used.user + used.system) / Number(count)).toFixed(2)}`);
  process.exit(0);
}
main();
