'use strict';
// What V8's young-generation GC keeps of a client making a new connection per request, bare and
// with the agent preloaded: a client process (16 http.get in flight, keepAlive: false) against a
// bare server, run with --trace-gc --trace-gc-nvp; per run, the mean of what survived each
// scavenge over the second half of the run. Runs above PHASE_KB are in the costly phase where V8
// allocates Node's per-connection `_events` objects in the old generation (docs/figures.md): a
// run enters it or not early on, and stays. Also the young generation a process starts its
// program with (what the preload left). One line per variant.
//   node benchmarks/gc-survival.js [runs=6] [requests=60000]
const { spawnSync } = require('node:child_process');
const { cleanEnv, kill, median, startChild, PRELOAD } = require('./cpu/rounds');

const [runsArg = '6', requestsArg = '60000'] = process.argv.slice(2);
/** Survived per scavenge above which a run is in the phase: outside it this client keeps under 1 MB here, inside about 5 MB. */
const PHASE_KB = 2500;

/** One client run: the mean KB surviving each scavenge over the second half of its scavenges. */
async function clientRun(port, agent) {
  const client = startChild('http-client.js', ['new-connection', String(port), requestsArg, '16'], { agent, nodeArgs: ['--trace-gc', '--trace-gc-nvp'], cpu: 0 });
  await client.nextLine('result');
  await kill(client.child);
  const survived = [];
  for (const line of client.lines) {
    const json = /GC: (\{.*\})/.exec(line)?.[1];
    if (!json) continue;
    const gc = JSON.parse(json);
    if (gc.gc === 's') survived.push(gc.new_space_survived);
  }
  const last = survived.slice(Math.floor(survived.length / 2));
  if (last.length === 0) throw new Error('the client printed no scavenge');
  return last.reduce((sum, bytes) => sum + bytes, 0) / last.length / 1024;
}

/** The young generation's size (MB) when the program's first line runs. */
function youngAtStart(agent) {
  const script = "require('node:http'); const s = require('node:v8').getHeapSpaceStatistics().find((space) => space.space_name === 'new_space'); console.log((s.space_size / 1e6).toFixed(1))";
  const result = spawnSync(process.execPath, [...(agent ? PRELOAD : []), '-e', script], { env: cleanEnv(), encoding: 'utf8' });
  return Number(result.stdout.trim());
}

async function main() {
  const server = startChild('http-server.js', [], { cpu: 1 });
  const { port } = await server.nextLine('ready');
  const results = { bare: [], agent: [] };
  for (let run = 0; run < Number(runsArg); run++) {
    // Alternating which goes first: the machine's state (its TIME_WAIT pile among it) moves between runs.
    const order = run % 2 === 0 ? ['bare', 'agent'] : ['agent', 'bare'];
    for (const variant of order) results[variant].push(await clientRun(port, variant === 'agent'));
  }
  await kill(server.child);
  for (const variant of ['bare', 'agent']) {
    const kb = results[variant];
    console.log(
      `gc-survival variant=${variant} node=${process.version} runs=${kb.length} in_phase=${kb.filter((v) => v > PHASE_KB).length} ` +
        `survived_kb_median=${Math.round(median(kb))} survived_kb=${kb.map(Math.round).join(',')} young_at_start_mb=${youngAtStart(variant === 'agent')}`,
    );
  }
}
main();
