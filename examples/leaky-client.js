// A small program with a real leak: it asks a server for a report and never
// reads the body. The server closes the connection after sending it, so the
// client's socket sits in CLOSE_WAIT until the process exits.
//
//   node --require tcp-leak-agent/register examples/leaky-client.js
'use strict';
const http = require('node:http');
const diagnosticsChannel = require('node:diagnostics_channel');

const server = http.createServer((req, res) => {
  res.setHeader('Connection', 'close');
  res.end(Buffer.alloc(150 * 1024, 'x')); // big enough that Node stops reading when nobody consumes it
});

function fetchReport(port) {
  http.get({ host: '127.0.0.1', port, path: '/report' }, (res) => {
    console.log(`got ${res.statusCode}; forgetting to read the body...`);
  });
}

server.listen(0, '127.0.0.1', () => {
  fetchReport(server.address().port);
});

// Stop once the agent has reported (or after 10 s if it is not loaded).
const done = () => server.close();
diagnosticsChannel.subscribe('tcp-leak-agent:leak', done);
setTimeout(done, 10_000).unref();
