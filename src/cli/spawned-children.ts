/**
 * In a process the CLI checks: notes each child it spawns that runs Node
 * without the agent (see unchecked-processes.ts). The CLI's own look at /proc
 * can miss a child that lives less than a poll; the parent cannot, since it
 * hears of each child as it starts. Only under the CLI (RUN_MARKER set).
 */
import type { ChildProcess } from 'node:child_process';
import * as diagnosticsChannel from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NODE_CHANNELS } from '../common/channels';
import { REGISTER_PATH } from '../common/package-paths';
import { RUN_MARKER, UNCHECKED_FILE } from './run-marker';

/** Starts noting unchecked children when this process runs under the CLI. */
export function noteUncheckedChildren(env: NodeJS.ProcessEnv): void {
  const runDir = env[RUN_MARKER];
  if (!runDir) return;
  // The CLI's look at processes, loaded only under the CLI.
  const { lookAtProcess } = require('./unchecked-processes') as typeof import('./unchecked-processes');
  // Published as a ChildProcess is created, before it spawns: look once it has (after exec).
  diagnosticsChannel.subscribe(NODE_CHANNELS.childProcess, (message) => {
    const child = (message as { process?: ChildProcess }).process;
    child?.once?.('spawn', () => {
      try {
        if (child.pid === undefined) return;
        const look = lookAtProcess(child.pid, runDir, REGISTER_PATH, true);
        if (look.kind === 'unchecked') fs.appendFileSync(path.join(runDir, UNCHECKED_FILE), `${JSON.stringify(look.process)}\n`);
      } catch {
        // The CLI's own look at /proc remains; never disturb the program.
      }
    });
  });
}
