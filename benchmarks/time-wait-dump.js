'use strict';
// What one TIME_WAIT dump costs (the addon's listTimeWait, Linux): a server in this process closes
// <connections> connections first, from clients spread over 127.0.0.2 to 127.0.0.6 (so the pile
// can outgrow one address's ephemeral ports), which leaves them in TIME_WAIT for 60 s; then the
// dump is timed <calls> times asking for the server's own port (every one of its rows answered)
// and for a port nothing uses (the kernel walks the namespace and answers none). The kernel walks
// every TIME_WAIT connection of the network namespace for a dump, so ms_per_1000_in_namespace is
// the figure to compare between machines; run it where the namespace holds nothing else for a
// clean one (another run's pile counts for 60 s).
//   node benchmarks/time-wait-dump.js [connections=30000] [calls=15]
// Prints: time-wait-dump node=... namespace=N own=K own_ms=X none_ms=Y ms_per_1000_in_namespace=Z
const net = require('node:net');
const { readFileSync } = require('node:fs');
const { loadNative } = require('../dist/measured/native');

const connections = Number(process.argv[2] || 30000);
const calls = Number(process.argv[3] || 15);
const { binding } = loadNative();
if (!binding) throw new Error('the addon did not load: build it first (npm install)');

const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
const namespaceTimeWait = () => Number(/\btw (\d+)/.exec(readFileSync('/proc/net/sockstat', 'utf8'))[1]);

/** Opens `count` connections to `port`, 64 at a time; each is closed first by the server. */
function pile(port, count) {
  return new Promise((resolve) => {
    let started = 0;
    let closed = 0;
    const next = () => {
      if (started === count) return;
      const socket = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${2 + (started++ % 5)}` });
      socket.on('error', () => {});
      socket.resume();
      socket.on('close', () => (++closed === count ? resolve() : next()));
    };
    for (let i = 0; i < Math.min(64, count); i++) next();
  });
}

/** Milliseconds per listTimeWait call asking for `ports` (server side), the median of `calls`. */
function timed(ports) {
  const asked = Int32Array.from(ports);
  const none = new Int32Array(0);
  const times = [];
  let rows = 0;
  for (let i = 0; i < calls; i++) {
    const started = process.hrtime.bigint();
    rows = binding.listTimeWait(asked, none).serverCounts[0];
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return { ms: median(times), rows };
}

const server = net.createServer((socket) => socket.end());
server.listen(0, '127.0.0.1', async () => {
  const { port } = server.address();
  await pile(port, connections);
  server.close();
  const own = timed([port]);
  // Port 1: nothing listens there on this machine, so the dump answers none and only the walk is left.
  const none = timed([1]);
  const namespace = namespaceTimeWait();
  console.log(
    `time-wait-dump node=${process.version} namespace=${namespace} own=${own.rows} own_ms=${own.ms.toFixed(2)} none_ms=${none.ms.toFixed(2)} ms_per_1000_in_namespace=${((none.ms * 1000) / namespace).toFixed(3)}`,
  );
});
