'use strict';
// An http server's cost: server CPU time (user + system) per request, bare and with the agent at
// its defaults, in interleaved rounds, under the same load from a bare client process (8 at a
// time); one line per mode. The figure is bare/agent CPU per request.
//   node benchmarks/server-cpu.js [modes=keepalive-http,new-connection] [rounds=5] [requests=20000] [placement=same-process]
// placement "same-process" (the default): one server process, the agent started and stopped
// through its API between rounds, CPU read with process.cpuUsage(): the same JIT state, heap and
// CPU for both variants. "processes": a server process per round, the agent preloaded, CPU read
// from /proc/<pid>/stat (10 ms ticks): closer to a real deployment, and far noisier.
// BENCH_AGENT=none or subscribers (same-process): a stand-in for the agent, to calibrate the
// harness (see cpu/stand-in.js); the line then names it (agent=...).
// Named in the line when the agent blocks ran a stand-in (see cpu/stand-in.js).
const STAND_IN = process.env.BENCH_AGENT && process.env.BENCH_AGENT !== 'agent' ? ` agent=${process.env.BENCH_AGENT}` : '';
const { cpuMsOf, interleaved, kill, medianInterval, spread, startChild } = require('./cpu/rounds');

const [modes = 'keepalive-http,new-connection', rounds = '5', requests = '20000', placement = 'same-process'] = process.argv.slice(2);

async function load(mode, port, count) {
  const client = startChild('http-client.js', [mode, String(port), String(count), '8'], { cpu: 1 });
  await client.nextLine('result');
  await kill(client.child);
}

async function inProcesses(mode) {
  return interleaved(Number(rounds), async (variant) => {
    const server = startChild('http-server.js', [], { agent: variant === 'agent', cpu: 0 });
    const { port, pid } = await server.nextLine('ready');
    await load(mode, port, 2000); // warm-up
    const before = cpuMsOf(pid);
    await load(mode, port, Number(requests));
    const usedMs = cpuMsOf(pid) - before;
    await kill(server.child);
    return (usedMs * 1000) / Number(requests);
  });
}

const WARM_UP_AFTER_TOGGLE = 1000;

async function inOneProcess(mode) {
  const server = startChild('http-server.js', ['controlled'], { control: true, cpu: 0 });
  const { port } = await server.nextLine('ready');
  await load(mode, port, 2000); // warm-up
  const cpu = async () => {
    server.send('cpu');
    return (await server.nextLine('cpu')).us;
  };
  const results = await interleaved(Number(rounds), async (variant) => {
    if (variant === 'agent') server.send('start');
    // Starting or stopping the agent makes V8 re-optimize the code that publishes to its channels,
    // once in a deployment and at every toggle here: that settles before the block is measured.
    await load(mode, port, WARM_UP_AFTER_TOGGLE);
    const before = await cpu();
    await load(mode, port, Number(requests));
    const used = (await cpu()) - before;
    if (variant === 'agent') server.send('stop');
    return used / Number(requests);
  });
  await kill(server.child);
  return results;
}

async function main() {
  for (const mode of modes.split(',')) {
    const results = placement === 'processes' ? await inProcesses(mode) : await inOneProcess(mode);
    const list = results.bare.map((bare, i) => bare / results.agent[i]);
    const ratios = spread(list, 3);
    const interval = medianInterval(list);
    console.log(
      `server-cpu mode=${mode} placement=${placement}${placement === 'same-process' ? STAND_IN : ''} rounds=${rounds} requests=${requests} bare_us=${spread(results.bare).median} agent_us=${spread(results.agent).median} ` +
        `ratio=${ratios.median} ratio_ci95=${interval.low}..${interval.high} ratio_min=${ratios.min} ratio_max=${ratios.max}`,
    );
  }
}
main();
