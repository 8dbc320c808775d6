'use strict';
// Shared by the CPU-time benchmarks: children of known roles, CPU time read from /proc, interleaved
// rounds of bare and agent, and the summary line. CPU time is user + system, so GC and kernel work
// count; every variant runs in a process of its own.
const { spawn, spawnSync } = require('node:child_process');
const { readFileSync } = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const PRELOAD = ['--require', path.join(ROOT, 'dist', 'register.js')];
const TICKS_PER_SECOND = 100; // USER_HZ on Linux
/** Whether children can be pinned to CPUs: taskset(1) is there and there are two CPUs or more. */
const PINNING = require('node:os').availableParallelism() >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;

/** An environment without test-runner variables (they change the agent's defaults). */
function cleanEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  for (const key of Object.keys(env)) {
    if (key.startsWith('VITEST') || key === 'NODE_ENV' || key === 'JEST_WORKER_ID' || key === 'NODE_TEST_CONTEXT' || key === 'NODE_OPTIONS') delete env[key];
    if (key.startsWith('TCP_LEAK_AGENT_') && !(key in extra)) delete env[key];
  }
  return env;
}

/**
 * Starts `node [nodeArgs] [preload] script args`: the child, and nextLine(prefix), which resolves
 * with the fields of the first line it prints that starts with `prefix`, lines, every line it has
 * printed and not taken so, and send(command), a line to its stdin when started with `control`.
 * `agent`: preload the agent at its defaults (or `preload`, the arguments that preload something
 * else in its place). `nodeArgs`: Node's own options (--trace-gc).
 */
function startChild(script, args, { agent = false, env = {}, quiet = false, control = false, cpu, preload = PRELOAD, nodeArgs = [] } = {}) {
  const command = [process.execPath, ...nodeArgs, ...(agent ? preload : []), path.join(__dirname, script), ...args];
  // cpu: pinned to that CPU (taskset execs node: same pid), so that a client and a server on a
  // two-core machine stop trading places: that migration was much of the noise between blocks.
  const pinned = cpu !== undefined && PINNING ? ['taskset', '-c', String(cpu), ...command] : command;
  const child = spawn(pinned[0], pinned.slice(1), {
    env: cleanEnv(env),
    // quiet: the agent's own notices (a descriptor warning at 18,000 sockets) are not the benchmark's output.
    // control: commands go to the child's stdin, a line each (see send).
    stdio: [control ? 'pipe' : 'ignore', 'pipe', quiet ? 'ignore' : 'inherit'],
  });
  const lines = [];
  let buffered = '';
  const waiters = [];
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    let newline;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      lines.push(line);
      for (const waiter of waiters.splice(0)) waiter();
    }
  });
  // An exit wakes every waiter, which then fails: one listener for the child's whole life.
  child.once('exit', () => waiters.splice(0).forEach((waiter) => waiter()));
  const nextLine = (prefix) =>
    new Promise((resolve, reject) => {
      const look = () => {
        const found = lines.findIndex((line) => line.startsWith(prefix));
        if (found >= 0) return resolve(fields(lines.splice(found, 1)[0]));
        if (child.exitCode !== null) return reject(new Error(`${script} exited (${child.exitCode}) before printing "${prefix}"`));
        waiters.push(look);
      };
      look();
    });
  const send = (command) => child.stdin.write(`${command}\n`);
  return { child, nextLine, lines, send };
}

/** "key=value key=value" into an object of numbers (or strings). */
function fields(line) {
  const out = {};
  for (const part of line.trim().split(/\s+/).slice(1)) {
    const [key, value] = part.split('=');
    out[key] = Number.isNaN(Number(value)) ? value : Number(value);
  }
  return out;
}

/** CPU time (user + system) a process has used, in ms, from /proc/<pid>/stat. */
function cpuMsOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
  return ((Number(after[11]) + Number(after[12])) * 1000) / TICKS_PER_SECOND;
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

/** "median (min to max)" of a list, to `digits` decimals. */
function spread(values, digits = 2) {
  return { median: Number(median(values).toFixed(digits)), min: Number(Math.min(...values).toFixed(digits)), max: Number(Math.max(...values).toFixed(digits)) };
}

/**
 * A distribution-free 95% confidence interval of the median of `values` (order statistics:
 * ranks n/2 ∓ 0.98·√n): on this noisy kind of machine a ratio's spread is wide, and whether a
 * goal is met is read from this interval, not from the median alone. Needs 9 or more values.
 */
function medianInterval(values, digits = 3) {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const k = Math.floor(n / 2 - 0.98 * Math.sqrt(n));
  if (k < 1) return { low: NaN, high: NaN };
  return { low: Number(sorted[k - 1].toFixed(digits)), high: Number(sorted[n - k].toFixed(digits)) };
}

/**
 * Runs `measure(variant)` for 'bare' and 'agent' in interleaved rounds, the order alternating
 * each round, and resolves with each variant's results in round order.
 */
async function interleaved(rounds, measure) {
  const results = { bare: [], agent: [] };
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? ['bare', 'agent'] : ['agent', 'bare'];
    for (const variant of order) results[variant].push(await measure(variant));
  }
  return results;
}

function kill(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill('SIGKILL');
  });
}

module.exports = { cleanEnv, cpuMsOf, fields, interleaved, kill, median, medianInterval, spread, startChild, PRELOAD, ROOT };
