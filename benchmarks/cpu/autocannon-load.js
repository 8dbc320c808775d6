'use strict';
// The load for a measured keep-alive server, from a process of its own: autocannon against
// http://127.0.0.1:<port>/ with <connections> keep-alive connections for <seconds>; prints
// "result requests=<completed>".
const autocannon = require('autocannon');
const [port, connections = '32', seconds = '3'] = process.argv.slice(2);
autocannon({ url: `http://127.0.0.1:${port}/`, connections: Number(connections), duration: Number(seconds) }, (error, result) => {
  if (error) throw error;
  console.log(`result requests=${result.requests.total}`);
});
