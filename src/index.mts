// ESM entry: the same single instance as the CommonJS entry, with named exports.
export * from './index.js';
