'use strict';
// Runs every benchmark, each in its own process, and prints the machine lines
// and a summary of ratios. Off/on pairs run back to back in one run, so a
// noisy machine hits both sides alike; a ratio is the median of the pairs'
// ratios, a rate the median of its runs. For figures that no neighbour on the
// machine can disturb, see instructions.sh.
//
// Agent variants: off, the preload's defaults (stacks sampled), and every stack.
//   npm run bench            (BENCH_QUICK=1 for a shorter run; BENCH_ONLY=scan,churn,http,heap for some)
const { execFileSync, spawn } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const autocannon = require('autocannon');

const quick = process.env.BENCH_QUICK === '1';
const here = __dirname;
const root = path.join(here, '..');
const preload = ['--require', path.join(root, 'dist', 'register.js')];
const rounds = quick ? 2 : 5;

function run(args, env = {}) {
  const out = execFileSync(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' });
  process.stdout.write(`  ${out.trim()}\n`);
  return out;
}

function field(line, name) {
  const match = new RegExp(`${name}=([\\d.]+)`).exec(line);
  if (!match) throw new Error(`no ${name} in: ${line}`);
  return Number(match[1]);
}

const { median } = require('./cpu/rounds');
// Each on run follows its off run at once, so the ratio within a pair sees the
// same machine load; the median of those ratios resists drift between rounds.
const pairedRatio = (on, off) => median(on.map((value, i) => value / off[i]));

function scanBenchmark() {
  console.log('scan: agent scan vs bare getsockopt(TCP_INFO), 5000 open sockets');
  // The ratio that counts is measured inside one process, over the same sockets (scan.js):
  // separate processes vary by up to 2x per socket from run to run, whatever runs in them.
  const ratios = [];
  const agent = [];
  for (let i = 0; i < rounds; i++) {
    const line = run([path.join(here, 'scan.js'), '5000', '50']);
    ratios.push(field(line, 'ratio'));
    agent.push(field(line, 'ns_per_socket'));
  }
  // Cross-check against a separate C program over its own 5000 sockets: compare floors.
  const binary = path.join(os.tmpdir(), `tcp-leak-agent-bare-getsockopt-${process.pid}`);
  execFileSync('gcc', ['-O2', '-o', binary, path.join(here, 'bare-getsockopt.c')]);
  const bare = [];
  for (let i = 0; i < 2 * rounds; i++) {
    const line = execFileSync(binary, ['5000', '50'], { encoding: 'utf8' });
    process.stdout.write(`  ${line.trim()}\n`);
    bare.push(field(line, 'ns_per_socket'));
  }
  return { ratio: median(ratios), agentNs: Math.min(...agent), bareProgramNs: Math.min(...bare) };
}

function churnBenchmark() {
  console.log('churn: connect + close loop, agent off vs default vs all stacks');
  const rates = Object.fromEntries(VARIANTS.map((variant) => [variant.name, []]));
  const ms = quick ? '2000' : '4000';
  for (let i = 0; i < rounds; i++) {
    for (const variant of rotated(VARIANTS, i)) {
      rates[variant.name].push(field(run([...variant.flags, path.join(here, 'churn.js'), ms], variant.env), 'connections_per_s'));
    }
  }
  const result = {};
  for (const variant of VARIANTS) result[variant.name] = { rate: median(rates[variant.name]), ratio: pairedRatio(rates[variant.name], rates.off) };
  return result;
}

// On a 2-core machine the server and the load generator fight for the same
// cores; pinning each to its own (when taskset exists) makes rounds comparable.
const canPin = (() => {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return os.cpus().length >= 2;
  } catch {
    return false;
  }
})();

// The agent as a service loads it: the preload with its defaults (stacks sampled), and with every stack.
const VARIANTS = [
  { name: 'off', flags: [], env: {} },
  { name: 'default', flags: preload, env: {} },
  { name: 'all', flags: preload, env: { TCP_LEAK_AGENT_STACKS: 'all' } },
];

const rotated = (list, by) => [...list.slice(by % list.length), ...list.slice(0, by % list.length)];

function startServer(variant) {
  const command = [process.execPath, ...variant.flags, path.join(here, 'http-server.js')];
  if (canPin) command.unshift('taskset', '-c', '0');
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...variant.env };
    const child = spawn(command[0], command.slice(1), { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.once('data', (data) => resolve({ child, port: field(String(data), 'port') }));
    child.once('error', reject);
  });
}

async function load(port, closeEach, duration) {
  // With "Connection: close" the server ends every connection after one
  // response, so each request is a new accepted socket for the agent to track.
  const headers = closeEach ? { connection: 'close' } : {};
  const result = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: 32, duration, headers });
  return result.requests.average;
}

async function httpBenchmark(closeEach) {
  const kind = closeEach ? 'a new connection per request (Connection: close)' : '32 keep-alive connections';
  console.log(`http: server under autocannon load, ${kind}, agent off vs default vs all stacks${canPin ? '; server on cpu 0, load on cpu 1' : ''}`);
  if (canPin) execFileSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' });
  const rates = Object.fromEntries(VARIANTS.map((variant) => [variant.name, []]));
  for (let i = 0; i < rounds; i++) {
    // Each round starts with another variant: whatever the previous run leaves behind
    // (TIME_WAIT by the ten thousand, a warm page cache) falls on each in turn.
    for (const variant of rotated(VARIANTS, i)) {
      const { child, port } = await startServer(variant);
      await load(port, closeEach, 1); // warm-up
      const rps = await load(port, closeEach, quick ? 3 : 5);
      console.log(`  http close_each=${closeEach} agent=${variant.name} requests_per_s=${rps.toFixed(0)}`);
      rates[variant.name].push(rps);
      child.kill();
    }
  }
  const result = {};
  for (const variant of VARIANTS) result[variant.name] = { rate: median(rates[variant.name]), ratio: pairedRatio(rates[variant.name], rates.off) };
  return result;
}

function heapBenchmark() {
  console.log('heap: retained per tracked socket, and after churn');
  const connections = 5000;
  const off = [];
  const on = [];
  for (let i = 0; i < Math.min(rounds, 3); i++) {
    off.push(field(run(['--expose-gc', path.join(here, 'heap.js'), 'open', String(connections)]), 'heap_bytes'));
    on.push(field(run(['--expose-gc', ...preload, path.join(here, 'heap.js'), 'open', String(connections)]), 'heap_bytes'));
  }
  const perSocket = (median(on) - median(off)) / (2 * connections);
  const churned = Number(process.env.BENCH_CHURN_COUNT || (quick ? 100_000 : 1_000_000));
  const line = run(['--expose-gc', ...preload, path.join(here, 'heap.js'), 'churn', String(churned)]);
  return { perSocketBytes: perSocket, churned, before: field(line, 'before'), after: field(line, 'after') };
}

async function main() {
  console.log(`machine: ${os.cpus().length} x ${os.cpus()[0].model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, Node ${process.version}`);
  const only = new Set((process.env.BENCH_ONLY || 'scan,churn,http,heap').split(','));
  const rows = [];
  if (only.has('scan')) {
    const scan = scanBenchmark();
    rows.push(`| scan, 5000 sockets, vs the bare getsockopt loop over the same sockets | ${scan.ratio.toFixed(2)}x (goal <= 1.5x) | best ${(scan.agentNs / 1000).toFixed(2)} µs/socket; a separate C program's best: ${(scan.bareProgramNs / 1000).toFixed(2)} µs |`);
  }
  // off | default (ratio) | all (ratio)
  const threeWay = (what, unit, r) =>
    `| ${what} | ${r.off.rate.toFixed(0)} ${unit} | ${r.default.rate.toFixed(0)} (**${r.default.ratio.toFixed(3)}**) | ${r.all.rate.toFixed(0)} (${r.all.ratio.toFixed(3)}) |`;
  if (only.has('churn')) rows.push(threeWay('connect+close churn', 'conn/s', churnBenchmark()));
  if (only.has('http')) {
    rows.push(threeWay('http server, autocannon, keep-alive', 'req/s', await httpBenchmark(false)));
    rows.push(threeWay('http server, autocannon, a connection per request', 'req/s', await httpBenchmark(true)));
  }
  if (only.has('heap')) {
    const heap = heapBenchmark();
    rows.push(`| heap per tracked socket | ${heap.perSocketBytes.toFixed(0)} bytes | |`);
    const delta = ((heap.after - heap.before) / 1024).toFixed(0);
    rows.push(`| heap after ${heap.churned} sockets opened and closed | ${delta} KiB above baseline (${(heap.before / 2 ** 20).toFixed(1)} -> ${(heap.after / 2 ** 20).toFixed(1)} MiB) | |`);
  }
  console.log(`\nsummary (off | default: stacks sampled, ratio to off | all stacks, ratio to off)\n${rows.join('\n')}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
