'use strict';
// A small http server for the load benchmark; prints its port, serves until killed.
const http = require('node:http');
const body = Buffer.from('hello world\n');
const server = http.createServer((req, res) => {
  res.setHeader('Content-Type', 'text/plain');
  res.end(body);
});
server.listen(0, '127.0.0.1', () => console.log(`port=${server.address().port}`));
