import { UsageError } from '../common/errors';

/**
 * Parses a command line for the CLI and its subcommands: the options, or the exit code when
 * there is nothing to run. A bad argument is one line on stderr and exit code 2; --help
 * prints `usage` and exits 0.
 */
export function readArguments<T>(parse: () => T | 'help', usage: string): { options: T } | { exitCode: number } {
  let parsed: T | 'help';
  try {
    parsed = parse();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`tcp-leak-agent: ${error.message}\n`);
    return { exitCode: 2 };
  }
  if (parsed === 'help') {
    process.stdout.write(usage);
    return { exitCode: 0 };
  }
  return { options: parsed };
}
