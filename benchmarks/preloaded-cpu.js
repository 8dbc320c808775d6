'use strict';
// What a user measures: the agent preloaded as the README says (`node --require
// tcp-leak-agent/register`, nothing else set), the measured program and its load in separate
// processes, a fresh process per block, bare and preloaded alternating. CPU time (user + system)
// of the measured process per request, read by the process itself with process.cpuUsage(), after
// a warm-up. One line per path; the figure is bare/agent (1.00: the agent costs nothing), the
// median of the rounds with its 95% interval.
//   node benchmarks/preloaded-cpu.js [paths=all] [rounds=15] [placement=paired]
// placement "paired" (the default): each round runs a bare and a preloaded process side by side,
// on the same core, under the same load, for the same wall time, so what the machine does to one
// (a neighbour, a frequency change) it does to the other. "alternating": one process at a time,
// bare and preloaded in turn; the machine's drift then lands between the two, and a round's ratio
// here ranged from 0.6 to 1.4.
// Paths:
//   server-keepalive       a plain http server; autocannon, 32 keep-alive connections, 1 s of
//                          warm-up, then 3 s measured
//   server-new-connection  the same server; 16 requests in flight with keepAlive: false from a
//                          client process, 2,000 of warm-up, then 20,000 measured
//   client-keepalive-http  a client process, 16 in flight, 1,000 of warm-up, 10,000 measured, to a
//   client-keepalive-fetch bare server in another process: keep-alive http.get, fetch(), and a
//   client-new-connection  new connection per http.get
// Each line ends with the namespace's TIME_WAIT connections as its rounds began (the median): a
// new-connection path fills it (each closed connection keeps its 4-tuple for 60 s), and connect()
// and close() then cost more in the kernel, bare or not.
// The measured process runs on CPU 0, its load (or its server) on CPU 1.
// BENCH_AGENT=none, subscribers, loaded...: a stand-in preloaded in the agent's place (cpu/stand-in.js, which lists them), to
// calibrate the harness; the line then names it. BENCH_AGENT_ENV='{"TCP_LEAK_AGENT_STACKS":"off"}':
// settings for the preloaded agent, to see what one costs; the line names them too.
// BENCH_WARM_UP=30000: the client paths' warm-up, in requests (default 1000); the line names it.
const { readFileSync } = require('node:fs');
const path = require('node:path');
const { interleaved, kill, median, medianInterval, spread, startChild } = require('./cpu/rounds');

const ALL = ['server-keepalive', 'server-new-connection', 'client-keepalive-http', 'client-keepalive-fetch', 'client-new-connection'];
const [pathsArg = 'all', roundsArg = '15', placement = 'paired'] = process.argv.slice(2);
if (!['paired', 'alternating'].includes(placement)) throw new Error(`placement ${JSON.stringify(placement)} is not accepted: expected paired or alternating`);
const paths = pathsArg === 'all' ? ALL : pathsArg.split(',');
const rounds = Number(roundsArg);
const STAND_IN = process.env.BENCH_AGENT && process.env.BENCH_AGENT !== 'agent' ? process.env.BENCH_AGENT : undefined;
const PRELOAD = STAND_IN ? ['--require', path.join(__dirname, 'cpu', 'stand-in-preload.js')] : undefined;
const AGENT_ENV = process.env.BENCH_AGENT_ENV ? JSON.parse(process.env.BENCH_AGENT_ENV) : {};
/**
 * Requests a measured client makes before it is measured (BENCH_WARM_UP, default 1,000: the
 * process's first second, what a user timing a short run sees; 30,000 leaves the JIT settled).
 */
const CLIENT_WARM_UP = Number(process.env.BENCH_WARM_UP ?? 1000);
if (!Number.isInteger(CLIENT_WARM_UP) || CLIENT_WARM_UP < 0) throw new Error(`BENCH_WARM_UP=${JSON.stringify(process.env.BENCH_WARM_UP)} is not accepted: expected a whole number of requests`);
const LABEL = `${process.env.BENCH_WARM_UP ? ` warm_up=${CLIENT_WARM_UP}` : ''}${STAND_IN ? ` agent=${STAND_IN}` : ''}${process.env.BENCH_AGENT_ENV ? ` env=${JSON.stringify(AGENT_ENV).replace(/\s/g, '')}` : ''}`;
/** How the measured process is started in an agent block. */
const agentPlacement = (agent) => ({ agent, preload: PRELOAD, env: agent ? { ...AGENT_ENV, ...(STAND_IN ? { BENCH_AGENT: STAND_IN } : {}) } : {} });
for (const name of paths) if (!ALL.includes(name)) throw new Error(`path ${JSON.stringify(name)} is not accepted: expected all or a list of ${ALL.join(', ')}`);

async function finished(child) {
  const result = await child.nextLine('result');
  await kill(child.child);
  return result;
}

/** A server process (preloaded or bare) under load from other processes: CPU µs per request served. */
async function serverBlock(path, agent) {
  const server = startChild('http-server.js', ['metered'], { ...agentPlacement(agent), control: true, cpu: 0 });
  const { port } = await server.nextLine('ready');
  const cpu = async () => {
    server.send('cpu');
    return server.nextLine('cpu');
  };
  const load = (warmUp) =>
    path === 'server-keepalive'
      ? startChild('autocannon-load.js', [String(port), '32', warmUp ? '1' : '3'], { cpu: 1 })
      : startChild('http-client.js', ['new-connection', String(port), warmUp ? '2000' : '20000', '16'], { cpu: 1 });
  await finished(load(true));
  const before = await cpu();
  await finished(load(false));
  const after = await cpu();
  await kill(server.child);
  return (after.us - before.us) / (after.served - before.served);
}

/** A client process (preloaded or bare) against a bare server: its own CPU µs per request. */
async function clientBlock(path, agent, port) {
  const mode = path.replace('client-', '');
  const client = startChild('http-client.js', [mode, String(port), '10000', '16', 'measure', String(CLIENT_WARM_UP)], { ...agentPlacement(agent), cpu: 0 });
  return (await finished(client)).cpu_us_per_request;
}

/** Waits for every child's line starting with `prefix`. */
const all = (children, prefix) => Promise.all(children.map((child) => child.nextLine(prefix)));

/** A bare and a preloaded server side by side on CPU 0, loaded alike from CPU 1: CPU µs per request served, each. */
async function serverPair(path, agentFirst) {
  const variants = agentFirst ? [true, false] : [false, true];
  const servers = variants.map((agent) => startChild('http-server.js', ['metered'], { ...agentPlacement(agent), control: true, cpu: 0 }));
  const ports = (await all(servers, 'ready')).map((ready) => ready.port);
  const stats = async () => {
    for (const server of servers) server.send('cpu');
    return all(servers, 'cpu');
  };
  let loads;
  if (path === 'server-keepalive') {
    await Promise.all(ports.map((port) => finished(startChild('autocannon-load.js', [String(port), '32', '1'], { cpu: 1 }))));
    const before = await stats();
    await Promise.all(ports.map((port) => finished(startChild('autocannon-load.js', [String(port), '32', '3'], { cpu: 1 }))));
    loads = [before, await stats()];
  } else {
    const clients = ports.map((port) => startChild('http-client.js', ['new-connection', String(port), '3000', '16', 'window', '2000'], { control: true, cpu: 1 }));
    await all(clients, 'warm');
    const before = await stats();
    for (const client of clients) client.send('go');
    await Promise.all(clients.map(finished));
    loads = [before, await stats()];
  }
  await Promise.all(servers.map((server) => kill(server.child)));
  const [before, after] = loads;
  const perRequest = variants.map((_, i) => (after[i].us - before[i].us) / (after[i].served - before[i].served));
  return agentFirst ? { agent: perRequest[0], bare: perRequest[1] } : { bare: perRequest[0], agent: perRequest[1] };
}

/** A bare and a preloaded client side by side on CPU 0, for the same 3 s, against one bare server: their own CPU µs per request. */
async function clientPair(path, port, agentFirst) {
  const variants = agentFirst ? [true, false] : [false, true];
  const mode = path.replace('client-', '');
  const clients = variants.map((agent) => startChild('http-client.js', [mode, String(port), '3000', '16', 'window', String(CLIENT_WARM_UP)], { ...agentPlacement(agent), control: true, cpu: 0 }));
  await all(clients, 'warm');
  for (const client of clients) client.send('go');
  const [first, second] = (await Promise.all(clients.map(finished))).map((result) => result.cpu_us_per_request);
  return agentFirst ? { agent: first, bare: second } : { bare: first, agent: second };
}

/** The network namespace's TIME_WAIT connections now (/proc/net/sockstat), -1 where it cannot be read. */
function timeWaitNow() {
  try {
    return Number(/\btw (\d+)/.exec(readFileSync('/proc/net/sockstat', 'utf8'))?.[1] ?? -1);
  } catch {
    return -1;
  }
}

async function paired(rounds, block) {
  const results = { bare: [], agent: [], timeWait: [] };
  for (let round = 0; round < rounds; round++) {
    results.timeWait.push(timeWaitNow());
    const { bare, agent } = await block(round % 2 === 1);
    results.bare.push(bare);
    results.agent.push(agent);
  }
  return results;
}

async function main() {
  // One bare server for every client path.
  const server = paths.some((path) => path.startsWith('client-')) ? startChild('http-server.js', [], { cpu: 1 }) : undefined;
  const port = server && (await server.nextLine('ready')).port;
  for (const path of paths) {
    let results;
    if (placement === 'paired') {
      results = await paired(rounds, path.startsWith('server-') ? (agentFirst) => serverPair(path, agentFirst) : (agentFirst) => clientPair(path, port, agentFirst));
    } else {
      const measure = path.startsWith('server-') ? (variant) => serverBlock(path, variant === 'agent') : (variant) => clientBlock(path, variant === 'agent', port);
      results = await interleaved(rounds, measure);
    }
    const list = results.bare.map((bare, i) => bare / results.agent[i]);
    const ratios = spread(list, 3);
    const interval = medianInterval(list);
    console.log(
      `preloaded-cpu path=${path}${LABEL} placement=${placement} node=${process.version} rounds=${rounds} bare_us=${spread(results.bare).median} agent_us=${spread(results.agent).median} ` +
        `ratio=${ratios.median} ratio_ci95=${interval.low}..${interval.high} ratio_min=${ratios.min} ratio_max=${ratios.max}` +
        (results.timeWait ? ` time_wait=${median(results.timeWait)}` : ''),
    );
  }
  if (server) await kill(server.child);
}
main();
