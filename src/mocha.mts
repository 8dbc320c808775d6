// ESM entry of the Mocha adapter (Mocha loads --require modules with import()).
export { mochaHooks } from './mocha.js';
