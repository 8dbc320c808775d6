'use strict';
// What the same-process benchmarks start and stop in their agent blocks: the agent, or for
// calibration (BENCH_AGENT) something in its place:
// - "none" starts nothing: an A/A run, how far from 1 the harness alone puts the ratio;
// - "subscribers" subscribes a listener that does nothing to each of Node's channels the agent
//   listens to: what Node's publishing costs, without the agent's work;
// - "loaded" loads the agent and starts nothing: what its code being in the process costs.

function agentOrStandIn(name = process.env.BENCH_AGENT) {
  if (name === undefined || name === '' || name === 'agent') return require('../..');
  if (name === 'none') return { start() {}, stop() {} };
  if (name === 'loaded') {
    require('../..');
    return { start() {}, stop() {} };
  }
  if (name === 'subscribers') {
    const channels = require('node:diagnostics_channel');
    const names = Object.values(require('../../dist/common/channels').NODE_CHANNELS);
    const nothing = () => {};
    return {
      start: () => names.forEach((channel) => channels.subscribe(channel, nothing)),
      stop: () => names.forEach((channel) => channels.unsubscribe(channel, nothing)),
    };
  }
  throw new Error(`BENCH_AGENT=${JSON.stringify(name)} is not accepted: expected agent, none, loaded or subscribers`);
}

module.exports = { agentOrStandIn };
