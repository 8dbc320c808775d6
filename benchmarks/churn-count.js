'use strict';
// A fixed number of connect + close pairs (client and server in one process),
// for instruction counting: the same work every run, whatever the clock says.
const { churnCount, listenEchoingEnd } = require('./connect-close');

const total = Number(process.argv[2] || 3000);

async function main() {
  const server = await listenEchoingEnd();
  await churnCount(server.address().port, 16, total);
  server.close();
}
main();
