'use strict';
// Connection churn: connect to a local server and close, in a loop, for a
// fixed time. Run it bare and under the preload to compare.
// Prints: churn connections_per_s=X
const { churn, listenEchoingEnd } = require('./connect-close');

const durationMs = Number(process.argv[2] || 3000);

async function main() {
  const server = await listenEchoingEnd();
  const deadline = Date.now() + durationMs;
  const t0 = process.hrtime.bigint();
  const done = await churn(server.address().port, 16, () => Date.now() < deadline);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`churn connections_per_s=${(done / seconds).toFixed(0)}`);
  server.close();
}
main();
