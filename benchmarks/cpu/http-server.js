'use strict';
// A small keep-alive http server; prints "ready port=" and serves until killed.
const http = require('node:http');
const body = Buffer.from('hello world\n');
const server = http.createServer((req, res) => {
  res.setHeader('Content-Type', 'text/plain');
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(`ready port=${server.address().port} pid=${process.pid}`));
