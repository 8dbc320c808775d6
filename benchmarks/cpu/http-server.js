'use strict';
// A small keep-alive http server; prints "ready port=" and serves until killed. With "controlled",
// it takes commands on stdin, a line each: "start" and "stop" the agent through its API (at its
// defaults), "cpu" prints this process's CPU time (user + system) so far.
const http = require('node:http');
const body = Buffer.from('hello world\n');
const server = http.createServer((req, res) => {
  res.setHeader('Content-Type', 'text/plain');
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(`ready port=${server.address().port} pid=${process.pid}`));

if (process.argv[2] === 'controlled') {
  const agent = require('./stand-in').agentOrStandIn();
  require('node:readline')
    .createInterface({ input: process.stdin })
    .on('line', (command) => {
      if (command === 'start') agent.start();
      if (command === 'stop') agent.stop();
      if (command === 'cpu') {
        const used = process.cpuUsage();
        console.log(`cpu us=${used.user + used.system}`);
      }
    });
}
