'use strict';
// Standing cost of the agent at its defaults with many idle connections in one process: CPU time
// (user + system) per second of a process holding N idle loopback connections, bare and with
// the agent preloaded, in interleaved rounds; one line per count and backend.
//   node benchmarks/standing-cost.js [counts=1000,5000,18000] [backends=native,procfs] [rounds=3] [windowMs=5000]
const { interleaved, kill, spread, startChild } = require('./cpu/rounds');

const [counts = '1000,5000,18000', backends = 'native,procfs', rounds = '3', windowMs = '5000'] = process.argv.slice(2);

async function main() {
  for (const count of counts.split(',').map(Number)) {
    const server = startChild('idle-server.js', []);
    const { port } = await server.nextLine('ready');
    for (const backend of backends.split(',')) {
      const results = await interleaved(Number(rounds), async (variant) => {
        const holder = startChild('idle-holder.js', [String(count), String(port), windowMs], { agent: variant === 'agent', env: { TCP_LEAK_AGENT_BACKEND: backend }, quiet: true });
        const { cpu_ms_per_s: used } = await holder.nextLine('result');
        await kill(holder.child);
        return used;
      });
      const added = spread(results.agent.map((used, i) => used - results.bare[i]), 1);
      console.log(
        `standing-cost sockets=${count} backend=${backend} rounds=${rounds} bare_ms_per_s=${spread(results.bare, 1).median} ` +
          `agent_ms_per_s=${spread(results.agent, 1).median} added_ms_per_s=${added.median} added_min=${added.min} added_max=${added.max}`,
      );
    }
    await kill(server.child);
  }
}
main();
