'use strict';
// A small keep-alive http server; prints "ready port=" and serves until killed. With "controlled",
// it takes commands on stdin, a line each: "start" and "stop" the agent through its API (at its
// defaults), "cpu" prints this process's CPU time (user + system) so far and the requests served.
// With "metered", only "cpu": the agent, if any, is preloaded (see preloaded-cpu.js).
const http = require('node:http');
const body = Buffer.from('hello world\n');
let served = 0;
const server = http.createServer((req, res) => {
  served++;
  res.setHeader('Content-Type', 'text/plain');
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(`ready port=${server.address().port} pid=${process.pid}`));

if (process.argv[2] === 'controlled' || process.argv[2] === 'metered') {
  const agent = process.argv[2] === 'controlled' ? require('./stand-in').agentOrStandIn() : undefined;
  require('node:readline')
    .createInterface({ input: process.stdin })
    .on('line', (command) => {
      if (command === 'start') agent?.start();
      if (command === 'stop') agent?.stop();
      if (command === 'cpu') {
        const used = process.cpuUsage();
        console.log(`cpu us=${used.user + used.system} served=${served}`);
      }
    });
}
