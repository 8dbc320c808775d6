// ESM preload entry for `node --import tcp-leak-agent/register`.
import './register.js';
