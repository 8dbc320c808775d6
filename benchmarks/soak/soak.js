'use strict';
// A whole service for a while, bare and with the agent preloaded: two copies of service.js side
// by side under the same load from this process (keep-alive http and fetch() calls to an upstream,
// a new connection per call, a proxied route, WebSocket upgrades, idle keep-alive connections,
// responses the service closes first), and now and then the same leak injected into both from one
// of several call sites. One result line: leaks injected and reported per site (named at the
// site's line, with no line, at a wrong line), false reports, time to report, CPU per request
// bare/agent, and heap and RSS growth after warm-up, both copies.
//   node benchmarks/soak/soak.js [minutes=10 | short] [requests-per-second=300]
// "short" is one minute. Not part of `npm test`.
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const { readFileSync } = require('node:fs');
const WebSocket = require('ws');
const { cleanEnv, fields, median } = require('../cpu/rounds');

const [minutesArg = '10', rateArg = '300'] = process.argv.slice(2);
const minutes = minutesArg === 'short' ? 1 : Number(minutesArg);
const rate = Number(rateArg);
if (!(minutes > 0) || !(rate > 0)) throw new Error(`expected [minutes | short] [requests-per-second], got ${process.argv.slice(2).join(' ')}`);
const durationMs = minutes * 60_000;
const warmUpMs = Math.min(60_000, durationMs / 5);
// Leaks are injected until this long before the end, so that each has time to be reported.
const lastLeakBeforeEndMs = 10_000;
const leakEveryMs = minutes === 1 ? 4_000 : 10_000;
const IDLE_CONNECTIONS = 500;
const SERVICE = path.join(__dirname, 'service.js');
const PRELOAD = ['--require', path.join(__dirname, '..', '..', 'dist', 'register.js')];

/** The lines each leak site may be named at, from the `soak-site:` marks in service.js. */
function siteLines() {
  const lines = {};
  readFileSync(SERVICE, 'utf8')
    .split('\n')
    .forEach((text, index) => {
      const mark = /soak-site: ([\w-]+)/.exec(text);
      if (mark) (lines[mark[1]] ??= []).push(index + 1);
    });
  return lines;
}
const SITES = siteLines();

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

/** The upstreams the services call, in this process: a small answer, big answers that close, a banner. */
async function upstreams() {
  const big = Buffer.alloc(150 * 1024, 'x');
  const bigServer = () =>
    http.createServer((req, res) => {
      res.setHeader('Connection', 'close');
      res.end(big);
    });
  return {
    upstream: await listen(http.createServer((req, res) => res.end('hello'))),
    big: await listen(bigServer()),
    bigFetch: await listen(bigServer()),
    banner: await listen(net.createServer((socket) => socket.end('220 ready\r\n'))),
  };
}

/** A copy of the service, bare or preloaded: its ports, stats on request, and its leak reports. */
function startService(agent, ports) {
  // SOAK_CPU_PROF=<dir>: both copies write a CPU profile there (node --cpu-prof) as they exit.
  const profile = process.env.SOAK_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.SOAK_CPU_PROF, '--cpu-prof-name', `${agent ? 'agent' : 'bare'}.cpuprofile`] : [];
  const args = [...profile, ...(agent ? PRELOAD : []), SERVICE, ports.upstream, ports.big, ports.bigFetch, ports.banner].map(String);
  const child = require('node:child_process').spawn(process.execPath, args, { env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  const service = { agent, child, leaks: [], stats: [], stderr: '', ready: undefined };
  service.ready = new Promise((resolve) => {
    require('node:readline')
      .createInterface({ input: child.stdout })
      .on('line', (line) => {
        if (line.startsWith('ready ')) resolve(fields(line));
        if (line.startsWith('leak ')) service.leaks.push({ ...JSON.parse(line.slice(5)), seenAt: Date.now() });
        if (line.startsWith('stats ')) service.stats.push({ at: Date.now(), ...fields(line) });
      });
  });
  // The agent's own reports: kept to show when something is off, not parsed.
  child.stderr.on('data', (chunk) => (service.stderr += chunk));
  return service;
}

/** The request mix, one call at a time, round robin. */
const MIX = ['/local', '/http', '/fetch', '/new', '/proxy', '/close', '/local', '/http', '/fetch', '/proxy', 'ws'];

function call(port, route, agent) {
  if (route === 'ws') {
    return new Promise((resolve) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/`);
      socket.on('open', () => socket.send('ping'));
      socket.on('message', () => socket.close());
      socket.on('close', resolve);
      socket.on('error', resolve);
    });
  }
  return new Promise((resolve) => {
    http
      .get({ host: '127.0.0.1', port, path: route, agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      })
      .on('error', resolve);
  });
}

/** Keeps IDLE_CONNECTIONS keep-alive connections open to the service, used once a minute. */
function idleConnections(port) {
  const pool = new http.Agent({ keepAlive: true, maxSockets: IDLE_CONNECTIONS });
  const touch = () => Promise.all(Array.from({ length: IDLE_CONNECTIONS }, () => call(port, '/local', pool)));
  return { touch, pool };
}

async function inject(service, ports, site, held) {
  const at = Date.now();
  if (site === 'half-open') {
    // The peer half-closes; the service's 'end' handler forgets its side. The client socket is
    // held here (FIN_WAIT2), as a real peer would wait.
    const socket = net.connect(ports.raw, '127.0.0.1', () => socket.end('x'));
    socket.on('error', () => {});
    held.push(socket);
  } else {
    await call(ports.port, `/leak/${site}`, false);
  }
  return { site, at };
}

/** The site a reported leak belongs to, by its ports; undefined for none (a false report). */
function siteOf(leak, ports, servicePorts) {
  const remote = leak.remote?.port;
  if (remote === ports.big) return 'unread-http';
  if (remote === ports.bigFetch) return 'unread-fetch';
  if (remote === ports.banner) return 'banner';
  if (leak.local?.port === servicePorts.raw) return 'half-open';
  return undefined;
}

/** Least-squares slope of (at, value) in units per minute. */
function slopePerMinute(points) {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((sum, p) => sum + p.at, 0) / n;
  const my = points.reduce((sum, p) => sum + p.value, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.at - mx) * (p.value - my);
    den += (p.at - mx) ** 2;
  }
  return (num / den) * 60_000;
}

async function main() {
  const ports = await upstreams();
  const services = [startService(false, ports), startService(true, ports)];
  const servicePorts = await Promise.all(services.map((service) => service.ready));
  const idle = servicePorts.map((p) => idleConnections(p.port));
  await Promise.all(idle.map((pool) => pool.touch()));
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const started = Date.now();
  const end = started + durationMs;
  const injected = services.map(() => []);
  const held = [];

  // Load: every 10 ms, the next calls of the mix to both services alike.
  let next = 0;
  let inFlight = 0;
  const perTick = rate / 100;
  let owed = 0;
  const load = setInterval(() => {
    owed += perTick;
    while (owed >= 1 && inFlight < 256) {
      owed--;
      const route = MIX[next++ % MIX.length];
      for (const p of servicePorts) {
        inFlight++;
        call(p.port, route, route === '/close' ? false : keepAlive).finally(() => inFlight--);
      }
    }
  }, 10);
  const touchIdle = setInterval(() => idle.forEach((pool) => pool.touch()), 60_000);
  const askStats = () => services.forEach((service) => service.child.stdin.write('stats\n'));
  const stats = setInterval(askStats, 5_000);
  askStats();

  // Leaks: the next site every leakEveryMs, into both services, until shortly before the end.
  const siteNames = Object.keys(SITES);
  let leakCount = 0;
  const leaking = setInterval(() => {
    if (Date.now() > end - lastLeakBeforeEndMs) return;
    const site = siteNames[leakCount++ % siteNames.length];
    services.forEach((service, i) => inject(service, servicePorts[i], site, held).then((record) => injected[i].push(record)));
  }, leakEveryMs);

  await new Promise((resolve) => setTimeout(resolve, durationMs));
  for (const timer of [load, touchIdle, stats, leaking]) clearInterval(timer);
  askStats();
  await new Promise((resolve) => setTimeout(resolve, 500));

  // The preloaded copy's reports, against what was injected into it.
  const agentService = services[1];
  const bareService = services[0];
  const agentPorts = servicePorts[1];
  const perSite = Object.fromEntries(siteNames.map((site) => [site, { injected: 0, reported: 0, named: 0, noLine: 0, wrongLine: 0 }]));
  for (const { site } of injected[1]) perSite[site].injected++;
  let falseReports = 0;
  const delays = [];
  const pending = Object.fromEntries(siteNames.map((site) => [site, injected[1].filter((record) => record.site === site).map((record) => record.at)]));
  for (const leak of agentService.leaks) {
    const site = siteOf(leak, ports, agentPorts);
    if (site === undefined || pending[site].length === 0) {
      falseReports++;
      continue;
    }
    const row = perSite[site];
    row.reported++;
    delays.push(leak.seenAt - pending[site].shift());
    if (!leak.location) row.noLine++;
    else if (leak.location.file === SERVICE && SITES[site].includes(leak.location.line)) row.named++;
    else {
      row.wrongLine++;
      console.error(`wrong line for ${site}: ${leak.location.file}:${leak.location.line}`);
    }
  }
  if (bareService.leaks.length > 0) console.error('the bare copy published leaks: the harness is wrong');

  // CPU per request and memory growth, after warm-up.
  const after = (service) => service.stats.filter((s) => s.at >= started + warmUpMs);
  const cpuPerRequest = (service) => {
    const list = after(service);
    const first = list[0];
    const last = list[list.length - 1];
    return (last.cpu_us - first.cpu_us) / (last.served - first.served);
  };
  const slope = (service, key) => slopePerMinute(after(service).map((s) => ({ at: s.at, value: s[key] / 1024 })));
  const bareUs = cpuPerRequest(bareService);
  const agentUs = cpuPerRequest(agentService);
  const sum = (key) => Object.values(perSite).reduce((total, row) => total + row[key], 0);
  const fixed = (value, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : 'NaN');
  console.log(
    `soak node=${process.version} minutes=${minutes} rate=${rate} idle=${IDLE_CONNECTIONS} served=${after(agentService).at(-1)?.served ?? 0} ` +
      `sites=${siteNames.map((site) => `${site}:${perSite[site].reported}/${perSite[site].injected}`).join(',')} ` +
      `injected=${sum('injected')} reported=${sum('reported')} named=${sum('named')} no_line=${sum('noLine')} wrong_lines=${sum('wrongLine')} false_reports=${falseReports} ` +
      `report_s_median=${fixed(median(delays.length ? delays : [NaN]) / 1000, 1)} report_s_max=${fixed(Math.max(...delays) / 1000, 1)} ` +
      `bare_us=${fixed(bareUs, 1)} agent_us=${fixed(agentUs, 1)} cpu_ratio=${fixed(bareUs / agentUs, 3)} ` +
      `heap_kb_per_min_bare=${fixed(slope(bareService, 'heap'))} heap_kb_per_min_agent=${fixed(slope(agentService, 'heap'))} ` +
      `rss_kb_per_min_bare=${fixed(slope(bareService, 'rss'))} rss_kb_per_min_agent=${fixed(slope(agentService, 'rss'))}`,
  );
  if (process.env.SOAK_AGENT_LOG) require('node:fs').writeFileSync(process.env.SOAK_AGENT_LOG, agentService.stderr);
  for (const socket of held) socket.destroy();
  await Promise.all(
    services.map((service) => {
      service.child.stdin.write('exit\n');
      return new Promise((resolve) => service.child.once('exit', resolve));
    }),
  );
  keepAlive.destroy();
  idle.forEach((pool) => pool.pool.destroy());
  process.exit(0);
}
main();
