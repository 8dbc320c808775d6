'use strict';
// The load benchmark's server, for instruction counting: prints its port,
// serves `total` requests, then exits.
const http = require('node:http');

const total = Number(process.argv[2] || 10000);
const body = Buffer.from('hello world\n');
let served = 0;
const server = http.createServer((req, res) => {
  res.setHeader('Content-Type', 'text/plain');
  res.end(body);
  if (++served === total) res.on('finish', () => process.exit(0));
});
server.listen(0, '127.0.0.1', () => console.log(`port=${server.address().port}`));
