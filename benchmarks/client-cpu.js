'use strict';
// A service's outgoing calls: client CPU time (user + system) per request, bare and with the agent
// at its defaults, in interleaved rounds against one bare server; one line per mode. The figure
// is bare/agent CPU per request (1.00: the agent costs nothing).
//   node benchmarks/client-cpu.js [modes=keepalive-http,keepalive-fetch,new-connection] [rounds=5] [requests=10000]
const { interleaved, kill, spread, startChild } = require('./cpu/rounds');

const [modes = 'keepalive-http,keepalive-fetch,new-connection', rounds = '5', requests = '10000'] = process.argv.slice(2);

async function main() {
  const server = startChild('http-server.js', []);
  const { port } = await server.nextLine('ready');
  for (const mode of modes.split(',')) {
    const results = await interleaved(Number(rounds), async (variant) => {
      const client = startChild('http-client.js', [mode, String(port), requests, '1', 'measure'], { agent: variant === 'agent' });
      const { cpu_us_per_request: used } = await client.nextLine('result');
      await kill(client.child);
      return used;
    });
    const ratios = spread(results.bare.map((bare, i) => bare / results.agent[i]));
    console.log(
      `client-cpu mode=${mode} rounds=${rounds} requests=${requests} bare_us=${spread(results.bare).median} agent_us=${spread(results.agent).median} ` +
        `ratio=${ratios.median} ratio_min=${ratios.min} ratio_max=${ratios.max}`,
    );
  }
  await kill(server.child);
}
main();
