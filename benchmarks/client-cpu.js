'use strict';
// A service's outgoing calls: client CPU time (user + system) per request, bare and with the agent
// at its defaults, in interleaved rounds against one bare server; one line per mode. The figure
// is bare/agent CPU per request (1.00: the agent costs nothing).
//   node benchmarks/client-cpu.js [modes=keepalive-http,keepalive-fetch,new-connection] [rounds=5] [requests=10000] [placement=same-process] [settle-ms=0]
// placement "same-process" (the default): one client process per mode, the agent started and
// stopped through its API between rounds (http-client.js "same-process"). "processes": a client
// process per round with the agent preloaded: closer to a real deployment, and far noisier.
// settle-ms (same-process): traffic after each start() before the agent block is measured, so the
// agent's adaptive state (TIME_WAIT following on a connection per request) is as in a service
// that has run a while; 0 measures the agent's first seconds.
// BENCH_AGENT=none or subscribers (same-process): a stand-in for the agent, to calibrate the
// harness (see cpu/stand-in.js); the line then names it (agent=...).
// Named in the line when the agent blocks ran a stand-in (see cpu/stand-in.js).
const STAND_IN = process.env.BENCH_AGENT && process.env.BENCH_AGENT !== 'agent' ? ` agent=${process.env.BENCH_AGENT}` : '';
const { interleaved, kill, medianInterval, spread, startChild } = require('./cpu/rounds');

const [modes = 'keepalive-http,keepalive-fetch,new-connection', rounds = '5', requests = '10000', placement = 'same-process', settleMs = '0'] = process.argv.slice(2);

async function inProcesses(mode, port) {
  const results = await interleaved(Number(rounds), async (variant) => {
    const client = startChild('http-client.js', [mode, String(port), requests, '1', 'measure'], { agent: variant === 'agent', cpu: 0 });
    const { cpu_us_per_request: used } = await client.nextLine('result');
    await kill(client.child);
    return used;
  });
  return { ...results, ratios: results.bare.map((bare, i) => bare / results.agent[i]) };
}

async function inOneProcess(mode, port) {
  const client = startChild('http-client.js', [mode, String(port), requests, '1', 'same-process', rounds, settleMs], { cpu: 0 });
  const result = await client.nextLine('result');
  await kill(client.child);
  const list = (text) => String(text).split(',').map(Number);
  return { bare: list(result.bare_us), agent: list(result.agent_us), ratios: list(result.ratios) };
}

async function main() {
  const server = startChild('http-server.js', [], { cpu: 1 });
  const { port } = await server.nextLine('ready');
  for (const mode of modes.split(',')) {
    const results = placement === 'processes' ? await inProcesses(mode, port) : await inOneProcess(mode, port);
    const ratios = spread(results.ratios, 3);
    const interval = medianInterval(results.ratios);
    console.log(
      `client-cpu mode=${mode} placement=${placement}${placement === 'same-process' ? STAND_IN : ''} rounds=${rounds} requests=${requests} settle_ms=${settleMs} bare_us=${spread(results.bare).median} agent_us=${spread(results.agent).median} ` +
        `ratio=${ratios.median} ratio_ci95=${interval.low}..${interval.high} ratio_min=${ratios.min} ratio_max=${ratios.max}`,
    );
  }
  await kill(server.child);
}
main();
