/**
 * The CLI: parses its command line (flags from the settings table), runs the
 * command with the preload in NODE_OPTIONS, watches for Node processes that
 * run without it, and prints one summary of what every process reported.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../common/errors';
import { packageVersion, REGISTER_PATH } from '../common/package-paths';
import { SETTINGS } from '../common/settings';
import { formatLeaks, formatSummaries } from '../told/format';
import { githubActionsWanted, jobSummary, junitXml, leakPlaces, sarifLog, workflowCommands, type UncheckedLine } from '../told/ci-formats';
import { appendSummary } from '../told/ci-teller';
import { annotationsRequested } from '../agent/environment';
import type { Leak, LeakSummaryReport } from '../common/types';
import { readArguments } from './arguments';
import { attach } from './attach';
import { describeUnchecked, POLL_MS, UncheckedProcessWatch, type UncheckedProcess } from './unchecked-processes';
import { RUN_MARKER } from './run-marker';

/** The agent's settings the CLI takes as flags and hands to its command's processes (see common/settings.ts). */
const FLAG_SETTINGS = SETTINGS.filter((setting) => setting.flag && setting.variable && setting.fromText);

const USAGE = `Usage: tcp-leak-agent [options] -- <command> [args...]
       tcp-leak-agent attach <pid> [--format text|json] [--stay]   (see attach --help)

Runs <command> with tcp-leak-agent preloaded into every Node.js process it starts
(through NODE_OPTIONS), prints one summary of the leaked TCP sockets they reported,
and exits 1 when there was a leak (or with the command's own exit code when that
is not 0). A clean run prints nothing.

A Node.js process of the command that runs without the agent (its NODE_OPTIONS
was replaced rather than added to) is named, and fails the run too: its sockets
went unchecked.

Options:
${FLAG_SETTINGS.map((setting) => `  --${`${setting.flag} <n>`.padEnd(21)}${setting.summary}\n${' '.repeat(25)}(${setting.variable} of each process; default ${setting.defaultText})`).join('\n')}
  --format <text|json>   the summary's format (default text)
  --output <path>        write the summary to a file instead of stderr (written in every run)
  --junit <path>         also write JUnit XML: a failing test case per leaking place and per
                         unchecked process, or one passing case (written in every run)
  --sarif <path>         also write SARIF 2.1.0 for code scanning: a result per leaking line
                         (written in every run)
  --no-fail              report leaks (and unchecked processes) but keep the command's exit code
  --allow-unchecked      accept Node.js processes that ran without the agent (still named)
  -h, --help             show this help
  -v, --version          show the version

Example:
  tcp-leak-agent --close-wait-ms 200 -- npm test
`;


interface CliOptions {
  env: Record<string, string>;
  format: 'text' | 'json';
  output: string | undefined;
  junit: string | undefined;
  sarif: string | undefined;
  fail: boolean;
  allowUnchecked: boolean;
  command: string[];
}

function parse(argv: string[]): CliOptions | 'help' | 'version' {
  const separator = argv.indexOf('--');
  const own = separator < 0 ? argv : argv.slice(0, separator);
  const command = separator < 0 ? [] : argv.slice(separator + 1);
  let values;
  try {
    ({ values } = parseArgs({
      args: own,
      options: {
        ...Object.fromEntries(FLAG_SETTINGS.map((setting) => [setting.flag!, { type: 'string' as const }])),
        format: { type: 'string' },
        output: { type: 'string' },
        junit: { type: 'string' },
        sarif: { type: 'string' },
        'no-fail': { type: 'boolean' },
        'allow-unchecked': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError(`${(error as Error).message.split('\n')[0]} (see --help; put the command after --)`);
  }
  if (values.help) return 'help';
  if (values.version) return 'version';
  if (command.length === 0) throw new UsageError('no command given: put it after --, as in: tcp-leak-agent -- node app.js');
  const format = values.format ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError(`--format=${JSON.stringify(format)} is not accepted: expected "text" or "json"`);
  const env: Record<string, string> = {};
  for (const setting of FLAG_SETTINGS) {
    const value = (values as Record<string, unknown>)[setting.flag!];
    if (typeof value !== 'string') continue;
    // Checked here, so a bad flag is one line of ours rather than one per process.
    try {
      setting.fromText!(value, `--${setting.flag}`);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    env[setting.variable!] = value;
  }
  try {
    annotationsRequested(process.env);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  for (const flag of ['output', 'junit', 'sarif'] as const) {
    if (values[flag] === '') throw new UsageError(`--${flag}="" is not accepted: expected a file path`);
  }
  return { env, format, output: values.output, junit: values.junit, sarif: values.sarif, fail: !values['no-fail'], allowUnchecked: Boolean(values['allow-unchecked']), command };
}

const REGISTER = REGISTER_PATH;

/** NODE_OPTIONS with our preload added; quoted, since NODE_OPTIONS splits on spaces. */
function nodeOptionsWithPreload(existing: string | undefined): string {
  const register = REGISTER;
  return `${existing ? `${existing} ` : ''}--require "${register.replace(/(["\\\\])/g, '\\\\$1')}"`;
}

interface Reports {
  leaks: Leak[];
  /** Leaks held back by each process's rate limit, summed up per place. */
  summaries: LeakSummaryReport[];
}

function readReports(file: string): Reports {
  const reports: Reports = { leaks: [], summaries: [] };
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return reports;
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const report = JSON.parse(line) as Leak | LeakSummaryReport;
      if ('type' in report && report.type === 'leak-summary') reports.summaries.push(report);
      else reports.leaks.push(report as Leak);
    } catch {
      // A process killed mid-write leaves a partial line: skip it.
    }
  }
  return reports;
}

function socketCount({ leaks, summaries }: Reports): number {
  return leaks.reduce((sum, leak) => sum + (leak.count ?? 1), 0) + summaries.reduce((sum, summary) => sum + summary.count, 0);
}

function summarize(reports: Reports, format: 'text' | 'json'): string {
  const { leaks, summaries } = reports;
  if (format === 'json') return formatLeaks(leaks, 'json') + formatSummaries(summaries, 'json');
  const sockets = socketCount(reports);
  const processes = new Set([...leaks.map((leak) => leak.pid), ...summaries.map((summary) => summary.pid)]).size;
  const header = `tcp-leak-agent: ${sockets} leaked TCP socket${sockets === 1 ? '' : 's'} in ${processes} process${processes === 1 ? '' : 'es'}\n\n`;
  return header + formatLeaks(leaks, 'text') + (summaries.length > 0 ? `\n${formatSummaries(summaries, 'text')}` : '');
}

function tellUnchecked(unchecked: UncheckedProcess[], format: 'text' | 'json'): string {
  if (format === 'text') return describeUnchecked(unchecked);
  return unchecked.map((process) => `${JSON.stringify({ type: 'unchecked-process', ...process })}\n`).join('');
}

/**
 * Where CI users look: under GitHub Actions an annotation per place and a job summary (unless
 * TCP_LEAK_AGENT_ANNOTATIONS=0); --junit and --sarif files, written in every run.
 */
function tellCi(found: Reports, unchecked: UncheckedProcess[], options: CliOptions): void {
  const places = leakPlaces(found.leaks, found.summaries);
  const lines: UncheckedLine[] = unchecked.map((process) => ({
    title: `pid ${process.pid}: ${process.command.join(' ') || '(command line unknown)'}`,
    detail: `ran without the agent (${process.nodeOptions === undefined ? 'NODE_OPTIONS unset' : `NODE_OPTIONS=${JSON.stringify(process.nodeOptions)}`}): something in the command set NODE_OPTIONS instead of adding to it`,
  }));
  const env = process.env;
  const root = env.GITHUB_WORKSPACE ?? process.cwd();
  if (githubActionsWanted(env, annotationsRequested(env))) {
    process.stdout.write(workflowCommands(places, env, lines));
    if (places.length > 0 || lines.length > 0) appendSummary(env, jobSummary(places, lines, env.GITHUB_WORKSPACE));
  }
  if (options.junit) fs.writeFileSync(options.junit, junitXml(places, lines, root));
  if (options.sarif) fs.writeFileSync(options.sarif, `${JSON.stringify(sarifLog(places, root, packageVersion()), null, 2)}\n`);
}

/** Runs the CLI with its arguments; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'attach') return attach(argv.slice(1));
  const read = readArguments(() => parse(argv), USAGE);
  if ('exitCode' in read) return read.exitCode;
  const options = read.options;
  if (options === 'version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcp-leak-agent-'));
  const reports = path.join(dir, 'reports.jsonl');
  const env: NodeJS.ProcessEnv = {
    // CI wants the line of every leak: every stack, unless the caller chose otherwise.
    TCP_LEAK_AGENT_STACKS: 'all',
    ...process.env,
    ...options.env,
    NODE_OPTIONS: nodeOptionsWithPreload(process.env.NODE_OPTIONS),
    TCP_LEAK_AGENT_FORMAT: 'json',
    TCP_LEAK_AGENT_OUTPUT: reports,
    // Survives a replaced NODE_OPTIONS: how the run's processes are recognised.
    [RUN_MARKER]: dir,
  };
  // The children report; the summary decides the exit code, and tells CI (annotations, files) once.
  delete env.TCP_LEAK_AGENT_FAIL_ON_LEAK;
  delete env.TCP_LEAK_AGENT_JUNIT;
  env.TCP_LEAK_AGENT_ANNOTATIONS = '0';

  const [command, ...args] = options.command as [string, ...string[]];
  const child = spawn(command, args, { stdio: 'inherit', env });
  const watch = child.pid === undefined ? undefined : new UncheckedProcessWatch(dir, REGISTER, child.pid);
  watch?.poll();
  const polling = setInterval(() => watch?.poll(), POLL_MS);
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const handlers = signals.map((signal) => [signal, forward(signal)] as const);
  for (const [signal, handler] of handlers) process.on(signal, handler);

  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  clearInterval(polling);
  for (const [signal, handler] of handlers) process.off(signal, handler);

  const unchecked = watch?.found() ?? [];
  const found = readReports(reports);
  const leaked = socketCount(found) > 0;
  fs.rmSync(dir, { recursive: true, force: true });
  if (exit.error) {
    process.stderr.write(`tcp-leak-agent: could not run ${JSON.stringify(command)}: ${exit.error.message}\n`);
    return 127;
  }
  let text = leaked ? summarize(found, options.format) : '';
  if (unchecked.length > 0) text += (text && options.format === 'text' ? '\n' : '') + tellUnchecked(unchecked, options.format);
  // A file is written for every run, so a job that keeps or parses it finds one: a clean run's
  // says so in a line (text), or holds no record (JSON lines: the empty list). stderr stays quiet.
  if (options.output) fs.writeFileSync(options.output, text || (options.format === 'text' ? 'tcp-leak-agent: no leaked TCP socket\n' : ''));
  else if (text) process.stderr.write(text);
  tellCi(found, unchecked, options);
  const commandCode = exit.code ?? (exit.signal ? 128 + (os.constants.signals[exit.signal] ?? 0) : 1);
  if (commandCode !== 0) return commandCode;
  if (!options.fail) return 0;
  return leaked || (unchecked.length > 0 && !options.allowUnchecked) ? 1 : 0;
}
