#!/usr/bin/env node
/**
 * tcp-leak-agent [options] -- <command> [args...]
 *
 * Runs a command with the agent preloaded into every Node process it starts
 * (through NODE_OPTIONS), gathers their reports, prints one summary at the
 * end, and exits non-zero when a leak was found (or with the command's own
 * code when that is non-zero). A clean run prints nothing of ours.
 */
import { main } from './cli/main';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`tcp-leak-agent: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
