/**
 * Preload entry: `node --require tcp-leak-agent/register app.js` or
 * `node --import tcp-leak-agent/register app.mjs`. Configured by the
 * TCP_LEAK_AGENT_* environment variables; a bad value is told in one line
 * naming the variable, and the agent does not start.
 */
import { ENVIRONMENT_VARIABLES, failOnLeakRequested, optionsFromEnvironment } from './agent/environment';
import { startWith } from './agent/api';
import { noteUncheckedChildren } from './cli/spawned-children';

startWith(() => optionsFromEnvironment(process.env), ENVIRONMENT_VARIABLES, failOnLeakRequested(process.env));
// Under the CLI: children that drop the preload must not go unnoticed.
noteUncheckedChildren(process.env);
