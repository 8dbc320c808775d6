'use strict';
// The connection churn the benchmarks share: connect to a local server, end,
// wait for 'close', repeat, from `concurrency` loops at once.
const net = require('node:net');

/** A server that ends each connection when its client does. */
function listenEchoingEnd(backlog = 1024) {
  const server = net.createServer((socket) => socket.on('end', () => socket.end()).resume());
  return new Promise((resolve) => server.listen(0, '127.0.0.1', backlog, () => resolve(server)));
}

function connectAndClose(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end());
    socket.resume();
    socket.on('close', resolve);
  });
}

/**
 * Runs the churn until `keepGoing()` says stop; returns how many connections completed.
 * `keepGoing` is asked before each connection.
 */
async function churn(port, concurrency, keepGoing) {
  let done = 0;
  const loop = async () => {
    while (keepGoing()) {
      await connectAndClose(port);
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return done;
}

/** Exactly `count` connections. */
function churnCount(port, concurrency, count) {
  let left = count;
  return churn(port, concurrency, () => left-- > 0);
}

module.exports = { listenEchoingEnd, churn, churnCount };
