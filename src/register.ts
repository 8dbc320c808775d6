/**
 * Preload entry: `node --require tcp-leak-agent/register app.js` or
 * `node --import tcp-leak-agent/register app.mjs`. Configured by the
 * TCP_LEAK_AGENT_* environment variables; a bad value is told in one line
 * naming the variable, and the agent does not start.
 */
import { ENVIRONMENT_VARIABLES, failOnLeakRequested, optionsFromEnvironment } from './environment';
import { startWith } from './index';

startWith(() => optionsFromEnvironment(process.env), ENVIRONMENT_VARIABLES, failOnLeakRequested(process.env));
