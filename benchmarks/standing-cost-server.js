'use strict';
// Standing cost of the agent in a server holding many idle accepted connections, with a few new
// ones a second or none: CPU time (user + system) per second of the server process, bare and
// with the agent preloaded, in interleaved rounds, its connections held and made by another
// process. One line per count, rate and backend.
//   node benchmarks/standing-cost-server.js [counts=1000,18000] [perSecond=0,50] [backends=native] [rounds=5] [windowMs=5000]
// (18,000 connections need `ulimit -n 20000` or more in the shell that runs it.)
const { cpuMsOf, interleaved, kill, spread, startChild } = require('./cpu/rounds');
const [counts = '1000,18000', rates = '0,50', backends = 'native', rounds = '5', windowMs = '5000'] = process.argv.slice(2);

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  for (const count of counts.split(',').map(Number)) {
    for (const perSecond of rates.split(',').map(Number)) {
      for (const backend of backends.split(',')) {
        const results = await interleaved(Number(rounds), async (variant) => {
          const server = startChild('idle-server.js', [], { agent: variant === 'agent', env: { TCP_LEAK_AGENT_BACKEND: backend }, quiet: true });
          const { port } = await server.nextLine('ready');
          const churner = startChild('idle-churner.js', [String(count), String(port), String(perSecond)], { quiet: true });
          await churner.nextLine('held');
          // Let start-up work (the first scans, the JIT) pass before measuring.
          await delay(3000);
          const before = cpuMsOf(server.child.pid);
          await delay(Number(windowMs));
          const used = ((cpuMsOf(server.child.pid) - before) / Number(windowMs)) * 1000;
          await kill(churner.child);
          await kill(server.child);
          return used;
        });
        const added = spread(results.agent.map((used, i) => used - results.bare[i]), 1);
        console.log(
          `standing-cost-server sockets=${count} new_per_s=${perSecond} backend=${backend} rounds=${rounds} bare_ms_per_s=${spread(results.bare, 1).median} ` +
            `agent_ms_per_s=${spread(results.agent, 1).median} added_ms_per_s=${added.median} added_min=${added.min} added_max=${added.max}`,
        );
      }
    }
  }
}
main();
