'use strict';
// What the same-process benchmarks start and stop in their agent blocks: the agent, or for
// calibration (BENCH_AGENT) something in its place:
// - "none" starts nothing: an A/A run, how far from 1 the harness alone puts the ratio;
// - "subscribers" subscribes a listener that does nothing to each of Node's channels the agent
//   listens to: what Node's publishing costs, without the agent's work;
// - "loaded" loads what the preload loads (its files and the addon) and starts nothing: what its
//   code being in the process costs; "loaded-all" loads the package's main entry (every file, and
//   what they load of Node's: http, tls...) and starts nothing; "loaded-js" and "loaded-addon"
//   split "loaded" in two: its JavaScript files alone, the addon alone.

function agentOrStandIn(name = process.env.BENCH_AGENT) {
  if (name === undefined || name === '' || name === 'agent') return require('../..');
  if (name === 'none') return { start() {}, stop() {} };
  if (name === 'loaded' || name === 'loaded-js') {
    // register.js's imports, without its call that starts the agent.
    require('../../dist/agent/environment');
    require('../../dist/agent/api');
    require('../../dist/cli/spawned-children');
    if (name === 'loaded') require('../../dist/measured/native').loadNative();
    return { start() {}, stop() {} };
  }
  if (name === 'loaded-addon') {
    require('../../dist/measured/native').loadNative();
    return { start() {}, stop() {} };
  }
  if (name === 'loaded-all') {
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
  throw new Error(`BENCH_AGENT=${JSON.stringify(name)} is not accepted: expected agent, none, loaded, loaded-js, loaded-addon, loaded-all or subscribers`);
}

module.exports = { agentOrStandIn };
