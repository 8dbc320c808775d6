'use strict';
// The service the soak measures (see soak.js): an http server whose routes call an upstream the
// ways services do (keep-alive http.get, fetch(), a new connection per call, a proxied route), a
// WebSocket endpoint, idle keep-alive clients, responses that close first, and, on request, a
// leak from one of several call sites. Each site is marked on its line with `soak-site:`; the
// soak holds the agent's reports to those lines.
//   node [--require tcp-leak-agent/register] service.js <upstream-port> <big-port> <big-fetch-port> <banner-port>
// Prints "ready port=<http> raw=<raw port> pid=", then one "leak {json}" line per leak the agent
// publishes on its leak channel (nothing when it is not preloaded). Commands on stdin, a line
// each: "exit", and "stats", which prints CPU time (user + system, µs), heap used and RSS (bytes), requests served.
const http = require('node:http');
const net = require('node:net');
const diagnosticsChannel = require('node:diagnostics_channel');
const { WebSocketServer } = require('ws');

const [upstreamPort, bigPort, bigFetchPort, bannerPort] = process.argv.slice(2).map(Number);
const upstream = `http://127.0.0.1:${upstreamPort}`;
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 16 });
// Responses kept and never read, as a cache of responses would: undici cancels the body of a
// Response that is garbage-collected, which would close the socket for the program.
const kept = [];
let served = 0;

/** The sites where a leak is made on request; each answers once the leak is under way. */
const leaks = {
  'unread-http'(done) {
    http.get(`http://127.0.0.1:${bigPort}/`, { agent: false }, () => done()); // soak-site: unread-http
  },
  'unread-fetch'(done) {
    fetch(`http://127.0.0.1:${bigFetchPort}/`).then((response) => done(kept.push(response)), done); // soak-site: unread-fetch
  },
  banner(done) {
    net.connect(bannerPort, '127.0.0.1', () => done()); // soak-site: banner
  },
};

function readBody(response) {
  return new Promise((resolve, reject) => {
    let size = 0;
    response.on('data', (chunk) => (size += chunk.length));
    response.on('end', () => resolve(size));
    response.on('error', reject);
  });
}

function getFrom(path, agent) {
  return new Promise((resolve, reject) => {
    http.get(`${upstream}${path}`, { agent }, (response) => readBody(response).then(resolve, reject)).on('error', reject);
  });
}

const routes = {
  '/local': async () => 'ok',
  '/http': () => getFrom('/small', keepAlive),
  '/new': () => getFrom('/small', false),
  '/fetch': async () => (await fetch(`${upstream}/small`)).text(),
};

const server = http.createServer((req, res) => {
  served++;
  if (req.url === '/proxy') {
    const outgoing = http.get(`${upstream}/small`, { agent: keepAlive }, (upstreamResponse) => {
      res.writeHead(upstreamResponse.statusCode, upstreamResponse.headers);
      upstreamResponse.pipe(res);
    });
    outgoing.on('error', () => res.destroy());
    return;
  }
  if (req.url === '/close') {
    res.setHeader('Connection', 'close');
    return res.end('bye');
  }
  const site = req.url.startsWith('/leak/') ? req.url.slice('/leak/'.length) : undefined;
  if (site !== undefined) {
    if (!leaks[site]) return res.writeHead(404).end();
    return leaks[site](() => res.end(site));
  }
  const route = routes[req.url];
  if (!route) return res.writeHead(404).end();
  route().then(
    (body) => res.end(String(body)),
    () => res.writeHead(502).end(),
  );
});
server.keepAliveTimeout = 120_000;
new WebSocketServer({ server }).on('connection', (socket) => socket.on('message', (data) => socket.send(data)));

// A raw protocol server, half-open by design: its 'end' handler forgets to end its side. An
// accepted socket's place is the server's: its 'connection' listener or its listen() call.
const raw = net.createServer({ allowHalfOpen: true }, (socket) => { // soak-site: half-open
  socket.on('data', () => {});
  socket.on('end', () => {});
});

diagnosticsChannel.subscribe('tcp-leak-agent:leak', ({ leak }) => {
  process.stdout.write(`leak ${JSON.stringify({ kind: leak.kind, location: leak.location, local: leak.local, remote: leak.remote, detectedAt: leak.detectedAt, origin: leak.origin })}\n`);
});

require('node:readline')
  .createInterface({ input: process.stdin })
  .on('line', (command) => {
    if (command === 'exit') process.exit(0);
    if (command !== 'stats') return;
    const cpu = process.cpuUsage();
    const memory = process.memoryUsage();
    console.log(`stats cpu_us=${cpu.user + cpu.system} heap=${memory.heapUsed} rss=${memory.rss} served=${served}`);
  });

const ready = () => console.log(`ready port=${server.address().port} raw=${raw.address().port} pid=${process.pid}`);
server.listen(0, '127.0.0.1', () => {
  raw.listen(0, '127.0.0.1', ready); // soak-site: half-open
});
