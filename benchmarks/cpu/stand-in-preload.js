'use strict';
// Preloaded in place of the agent by preloaded-cpu.js when BENCH_AGENT is "none" or "subscribers"
// (see stand-in.js): the harness's own error (none), and what Node's publishing to the agent's
// channels costs (subscribers), each measured exactly as the preloaded agent is.
require('./stand-in').agentOrStandIn().start();
