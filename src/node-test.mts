// ESM entry of the node:test adapter, for `node --test --import tcp-leak-agent/node-test`.
import './node-test.js';
