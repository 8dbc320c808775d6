'use strict';
// Makes <count> requests to <port>, <concurrency> at a time, in one of three modes:
//   keepalive-http  http.get over a keep-alive agent
//   keepalive-fetch fetch() (undici's pool)
//   new-connection  http.get with a new connection per request (agent: false)
// With "measure [warm-up=2000]", reports its own CPU time (user + system) per request after a
// warm-up of that many requests; with
// "same-process <rounds> [settle-ms]", bare and agent blocks alternate in this one process (see
// sameProcess); with "window <warm-up>", it warms up, prints "warm", waits for "go" on stdin, then
// makes requests for <count> ms and reports its CPU time per request (two processes measured side
// by side, see preloaded-cpu.js); without any, it is only the load for a measured server.
const http = require('node:http');
const { agentOrStandIn } = require('./stand-in');
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

/** Requests for `ms` of wall time. */
async function runFor(ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) await run(100);
}

async function run(total) {
  let next = 0;
  const worker = async () => {
    while (next++ < total) await get();
  };
  await Promise.all(Array.from({ length: Number(concurrency) }, worker));
}

/** Requests until `ms` of wall time have passed, `concurrency` at a time: CPU µs per request, and how many. */
async function cpuPerRequestFor(ms) {
  const until = Date.now() + ms;
  let done = 0;
  const before = process.cpuUsage();
  const worker = async () => {
    while (Date.now() < until) {
      await get();
      done++;
    }
  };
  await Promise.all(Array.from({ length: Number(concurrency) }, worker));
  const used = process.cpuUsage(before);
  return { us: (used.user + used.system) / done, done };
}

/** CPU time (user + system) in µs per request over `total` requests. */
async function cpuPerRequest(total) {
  const before = process.cpuUsage();
  await run(total);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / total;
}

/**
 * Bare and agent blocks in one process, the agent started and stopped through the API between
 * blocks, the order alternating: the same JIT state, heap and CPU for both, so the ratio is not
 * lost in the spread between processes. Prints one ratio per round.
 *
 * `settleMs`: traffic after each start() before the agent block is measured, so that what the
 * agent adapts to the traffic has adapted, as in a service that has run for a while. (On a
 * connection per request the TIME_WAIT check follows one client socket in 8 until its counts, 5
 * scans apart, find none of them in TIME_WAIT, then one in 64, then one in 512: about 11 s.)
 */
async function sameProcess(total, rounds, settleMs) {
  // Options other than the defaults, to see what one costs: BENCH_AGENT_OPTIONS='{"stacks":"off"}'.
  const options = process.env.BENCH_AGENT_OPTIONS ? JSON.parse(process.env.BENCH_AGENT_OPTIONS) : undefined;
  const agent = agentOrStandIn();
  const ratios = [];
  const bare = [];
  const withAgent = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? ['bare', 'agent'] : ['agent', 'bare'];
    const used = {};
    for (const variant of order) {
      if (variant === 'agent') agent.start(options);
      // Starting or stopping the agent makes V8 re-optimize the code that publishes to its
      // channels: once in a deployment, at every toggle here. That settles before the block is measured.
      await run(Math.min(1000, total));
      if (variant === 'agent' && settleMs > 0) await runFor(settleMs);
      used[variant] = await cpuPerRequest(total);
      if (variant === 'agent') agent.stop();
    }
    bare.push(used.bare);
    withAgent.push(used.agent);
    ratios.push(used.bare / used.agent);
  }
  console.log(`result ratios=${ratios.map((r) => r.toFixed(4)).join(',')} bare_us=${bare.map((u) => u.toFixed(2)).join(',')} agent_us=${withAgent.map((u) => u.toFixed(2)).join(',')}`);
}

async function main() {
  if (measure === 'window') {
    await run(Number(process.argv[7] || 1000));
    console.log('warm');
    await new Promise((resolve) => require('node:readline').createInterface({ input: process.stdin }).once('line', resolve));
    const { us, done } = await cpuPerRequestFor(Number(count));
    console.log(`result cpu_us_per_request=${us.toFixed(2)} requests=${done}`);
    process.exit(0);
  }
  if (measure !== 'measure' && measure !== 'same-process') {
    console.log('ready');
    await run(Number(count));
    console.log('result done=1');
    process.exit(0);
  }
  // Warm-up: JIT, pools.
  await run(measure === 'measure' && process.argv[7] ? Number(process.argv[7]) : Math.min(2000, Number(count)));
  if (measure === 'same-process') await sameProcess(Number(count), Number(process.argv[7] || 10), Number(process.argv[8] || 0));
  else console.log(`result cpu_us_per_request=${(await cpuPerRequest(Number(count))).toFixed(2)}`);
  process.exit(0);
}
main();
