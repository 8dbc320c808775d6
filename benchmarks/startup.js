'use strict';
// What the preload costs each process it starts in: a program that loads `http` and exits, bare
// and with the agent preloaded, in interleaved rounds. Per process: CPU time (user + system, from
// the program's 'exit' listener, which runs after the agent's exit scan), wall time from spawn to
// exit, and what the preload leaves the program: heap used, the young generation's size and the
// scavenges run before the program's first line. A test runner's workers and every CLI-started
// process pay this once each. One line.
//   node benchmarks/startup.js [rounds=21]
const { spawnSync } = require('node:child_process');
const { cleanEnv, interleaved, median, medianInterval, spread, PRELOAD } = require('./cpu/rounds');

const rounds = Number(process.argv[2] ?? 21);
if (!Number.isInteger(rounds) || rounds < 9) {
  console.error(`startup.js: rounds must be a whole number of 9 or more (the median's interval needs 9); got "${process.argv[2]}"`);
  process.exit(2);
}

// The program: its first line reads what the preload left, its 'exit' listener the CPU used.
const PROGRAM = [
  "const v8 = require('node:v8');",
  "const young = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space').space_size;",
  'const heap = process.memoryUsage().heapUsed;',
  "require('node:http');",
  "process.on('exit', () => { const cpu = process.cpuUsage(); console.log(`result cpuMs=${(cpu.user + cpu.system) / 1000} heapMB=${heap / 1048576} youngMB=${young / 1048576}`); });",
].join('\n');

function startOnce(variant) {
  const args = ['--trace-gc', ...(variant === 'agent' ? PRELOAD : []), '-e', PROGRAM];
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { env: cleanEnv(), encoding: 'utf8' });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  const lines = result.stdout.split('\n');
  const line = lines.find((text) => text.startsWith('result '));
  if (result.status !== 0 || !line) throw new Error(`the ${variant} program failed (${result.status}): ${result.stderr}`);
  const values = Object.fromEntries(line.slice('result '.length).split(' ').map((pair) => pair.split('=')).map(([key, value]) => [key, Number(value)]));
  // --trace-gc lines printed before the program's result: all of them ran before its first line
  // or during it; the program allocates too little to scavenge (bare shows 0).
  const scavenges = lines.filter((text) => text.includes('Scavenge')).length;
  return { ...values, wallMs, scavenges };
}

async function main() {
  // Warm-up: the file system cache holds both variants' files before anything is measured.
  startOnce('bare');
  startOnce('agent');
  const results = await interleaved(rounds, async (variant) => startOnce(variant));
  const added = results.agent.map((agent, round) => agent.cpuMs - results.bare[round].cpuMs);
  const addedWall = results.agent.map((agent, round) => agent.wallMs - results.bare[round].wallMs);
  const pick = (variant, key) => results[variant].map((run) => run[key]);
  const interval = medianInterval(added, 1);
  const fieldsOf = (variant) =>
    `${variant}CpuMs=${median(pick(variant, 'cpuMs')).toFixed(1)} ${variant}WallMs=${median(pick(variant, 'wallMs')).toFixed(1)} ` +
    `${variant}HeapMB=${median(pick(variant, 'heapMB')).toFixed(2)} ${variant}YoungMB=${median(pick(variant, 'youngMB')).toFixed(2)} ${variant}Scavenges=${median(pick(variant, 'scavenges'))}`;
  const addedSpread = spread(added, 1);
  console.log(
    `startup node=${process.version} rounds=${rounds} addedCpuMs=${addedSpread.median} addedCpuLow=${interval.low} addedCpuHigh=${interval.high} ` +
      `addedWallMs=${median(addedWall).toFixed(1)} ${fieldsOf('bare')} ${fieldsOf('agent')}`,
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
