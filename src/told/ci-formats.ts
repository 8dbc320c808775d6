import * as path from 'node:path';
import { formatEndpoint } from '../common/endpoints';
import { formatLocation } from '../common/stack';
import type { Leak, LeakKind, LeakSummaryReport, Location } from '../common/types';
import type { Notice } from './notices';
import { formatTextReport } from './report-text';

/**
 * Reports turned into what CI systems read, all in this one module: GitHub Actions workflow
 * commands (annotations on the line) and job summaries, JUnit XML, and SARIF 2.1.0. Everything
 * starts from places: the leaks of one kind at one location (or with no line), counted.
 */

/** The leaks (or warnings) of one kind at one place. */
export interface CiPlace {
  /** A leak kind, or the warning's type. */
  kind: LeakKind | 'time-wait' | 'descriptor-pressure';
  level: 'error' | 'warning';
  /** "Leaked TCP socket: CLOSE_WAIT". */
  title: string;
  /** Where, when the evidence names a line; a location in compiled code names only its file. */
  location: Location | null;
  /** "file:line:column", or what is known when there is no line. */
  place: string;
  count: number;
  /** What happened and what to do, in a few sentences. */
  message: string;
  /** The whole text report of the first leak (or the warning). */
  report: string;
}

/** A process that ran without the agent, as the CLI found it. */
export interface UncheckedLine {
  /** "pid 123: node worker.js". */
  title: string;
  detail: string;
}

const TITLES: Record<CiPlace['kind'], string> = {
  'close-wait': 'Leaked TCP socket: CLOSE_WAIT',
  'descriptor-without-connection': 'Leaked TCP descriptor: connection over, socket never destroyed',
  'stalled-reader': 'Stalled TCP socket: data left unread',
  'left-open': 'TCP socket left open at the end of its test',
  'dead-peer': 'Dead peer: connection open, other end silent',
  'time-wait': 'TIME_WAIT connections piling up',
  'descriptor-pressure': 'File descriptors running out',
};

/** What every leak kind is, for SARIF's rules. */
const KIND_HELP: Record<CiPlace['kind'], string> = {
  'close-wait':
    'The peer closed the connection; this process never closed its side, so the socket holds a file descriptor until the process exits. Usually a response body nobody read, a paused stream, or a socket handed to a handler that dropped it. Read or destroy the body (or the socket) on every path.',
  'descriptor-without-connection': 'The connection is over in the kernel, but the socket was never destroyed: the descriptor stays open. Destroy the socket (socket.destroy()) once it is done.',
  'stalled-reader': 'Data waits unread in the kernel and nothing reads it: the peer is blocked and the connection never ends. Resume or destroy the stream.',
  'left-open': 'A socket the test opened was still open when the test ended (strict check). Close it in the test, or in an after hook.',
  'dead-peer': 'The connection is open, but the other end stopped answering. Set a timeout or keepalive and destroy the socket when it fires.',
  'time-wait': 'This process closes connections first, so their 4-tuples stay in TIME_WAIT for 60 s. Reuse connections (keep-alive) or let the peer close first.',
  'descriptor-pressure': 'Open file descriptors are near RLIMIT_NOFILE: at the limit, connects and accepts fail with EMFILE. The dump names where the sockets were opened.',
};

/** The cause and what to do; with no known cause, what the text report says after its first line. */
function leakMessage(leak: Leak, report: string): string {
  if (leak.cause) return `${leak.cause.summary}. Fix: ${leak.cause.fix}.`;
  return report.split('\n').slice(1, 3).join(' ').trim();
}

/** What names a leak with no line: the request that last used its socket, else its peer. */
function whatIsKnown(leak: Leak): string {
  if (leak.lastUse) return `${leak.lastUse.method} ${leak.lastUse.url}`;
  return leak.remote ? `connected to ${formatEndpoint(leak.remote)}` : 'a socket of unknown origin';
}

/** The places of these leaks (and summaries of leaks held back): one per kind and place, counted. */
export function leakPlaces(leaks: readonly Leak[], summaries: readonly LeakSummaryReport[] = []): CiPlace[] {
  const places = new Map<string, CiPlace>();
  for (const leak of leaks) {
    const where = leak.location ? formatLocation(leak.location) : whatIsKnown(leak);
    const key = `${leak.kind} ${where}`;
    const place = places.get(key);
    if (place) {
      place.count += leak.count ?? 1;
      continue;
    }
    const report = formatTextReport(leak);
    // With no line, the report's first line says why, and what is known instead.
    const message = leak.location ? leakMessage(leak, report) : `${report.split('\n', 1)[0]!}. ${leakMessage(leak, report)}`;
    places.set(key, { kind: leak.kind, level: 'error', title: TITLES[leak.kind], location: leak.location, place: where, count: leak.count ?? 1, message, report });
  }
  for (const summary of summaries) {
    const key = `${summary.kind} ${summary.location ? formatLocation(summary.location) : 'no line'}`;
    const place = places.get(key);
    if (place) place.count += summary.count;
    else {
      const text = `${summary.place}: ${summary.count} more leaked TCP socket(s) from this place`;
      places.set(key, { kind: summary.kind, level: 'error', title: TITLES[summary.kind], location: summary.location, place: summary.place, count: summary.count, message: text, report: text });
    }
  }
  return [...places.values()];
}

/** The warnings among notices (TIME_WAIT, descriptors), as places: warnings, not failures. */
export function noticePlaces(notices: readonly Notice[], report: (notice: Notice) => string): CiPlace[] {
  const places: CiPlace[] = [];
  for (const notice of notices) {
    if (notice.type !== 'time-wait' && notice.type !== 'descriptor-pressure') continue;
    const text = report(notice);
    const top = notice.type === 'descriptor-pressure' ? notice.sites[0] : undefined;
    const location = top?.location ?? null;
    const count = notice.type === 'time-wait' ? notice.count : notice.open;
    const headline = text.split('\n', 1)[0]!.replace(/^tcp-leak-agent: /, '');
    places.push({ kind: notice.type, level: 'warning', title: TITLES[notice.type], location, place: location ? formatLocation(location) : headline, count, message: headline, report: text });
  }
  return places;
}

// ---- GitHub Actions ----

/** Whether to print GitHub Actions annotations and a job summary: under GitHub Actions, unless turned off. */
export function githubActionsWanted(env: NodeJS.ProcessEnv, annotations: boolean): boolean {
  return annotations && env.GITHUB_ACTIONS === 'true';
}

/** A workflow command's message, escaped as the runner requires (as @actions/core does). */
export function escapeData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** A workflow command's property value: the message's escapes, and ':' and ','. */
export function escapeProperty(text: string): string {
  return escapeData(text).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** A file as the repository sees it: relative to `root` (GITHUB_WORKSPACE) when inside it. */
export function repositoryPath(file: string, root: string | undefined): string {
  if (!root) return file;
  const relative = path.relative(root, file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative.split(path.sep).join('/') : file;
}

/**
 * One `::error` or `::warning` line per place, at its line (a place with no line gets no file), and
 * one `::error` per process that ran without the agent.
 */
export function workflowCommands(places: readonly CiPlace[], env: NodeJS.ProcessEnv, unchecked: readonly UncheckedLine[] = []): string {
  const processes = unchecked.map((process) => `::error title=${escapeProperty('Node.js process ran without tcp-leak-agent')}::${escapeData(`${process.title}: ${process.detail}`)}\n`);
  return places
    .map((place) => {
      // In @actions/core's order: title, file, line, col.
      const count = place.count > 1 ? ` (${place.count})` : '';
      const properties = [`title=${escapeProperty(`${place.title}${count}`)}`];
      if (place.location) {
        properties.push(`file=${escapeProperty(repositoryPath(place.location.file, env.GITHUB_WORKSPACE))}`);
        if (!place.location.compiled) properties.push(`line=${place.location.line}`, `col=${place.location.column}`);
      }
      return `::${place.level} ${properties.join(',')}::${escapeData(place.message)}\n`;
    })
    .join('') + processes.join('');
}

/** A Markdown table cell: one line, pipes escaped. */
function cell(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

/** The job summary: a table of places, and the processes that ran without the agent. */
export function jobSummary(places: readonly CiPlace[], unchecked: readonly UncheckedLine[], root: string | undefined): string {
  const leaks = places.filter((place) => place.level === 'error').reduce((sum, place) => sum + place.count, 0);
  let text = `### tcp-leak-agent: ${leaks} leaked TCP socket${leaks === 1 ? '' : 's'}\n\n`;
  if (places.length > 0) {
    text += '| Location | Kind | Count | What happened and what to do |\n|---|---|---|---|\n';
    for (const place of places) {
      const where = place.location ? `\`${repositoryPath(place.location.file, root)}${place.location.compiled ? '' : `:${place.location.line}:${place.location.column}`}\`` : cell(place.place);
      text += `| ${where} | ${cell(place.title)} | ${place.count} | ${cell(place.message)} |\n`;
    }
  }
  if (unchecked.length > 0) {
    text += `\n**${unchecked.length} Node.js process${unchecked.length === 1 ? '' : 'es'} ran without the agent** (nothing was checked there):\n\n`;
    for (const process of unchecked) text += `- ${cell(process.title)}: ${cell(process.detail)}\n`;
  }
  return `${text}\n`;
}

// ---- JUnit XML ----

function xml(text: string): string {
  // Characters XML 1.0 cannot hold at all are dropped; the rest escaped.
  // eslint-disable-next-line no-control-regex
  return text.replace(/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * One test suite, one test case per place (a failure holding its text report) and per process
 * that ran without the agent (a failure too). A clean run has one passing case, so CI shows that
 * the check ran.
 */
export function junitXml(places: readonly CiPlace[], unchecked: readonly UncheckedLine[], root: string | undefined): string {
  const failures = places.filter((place) => place.level === 'error');
  const cases: string[] = [];
  for (const place of failures) {
    const name = `${place.title}${place.location ? ` at ${repositoryPath(place.location.file, root)}:${place.location.line}` : `: ${place.place}`}`;
    const file = place.location ? ` file="${xml(repositoryPath(place.location.file, root))}" line="${place.location.line}"` : '';
    cases.push(
      `  <testcase classname="tcp-leak-agent.${place.kind}" name="${xml(name)}"${file}>\n` +
        `    <failure type="${place.kind}" message="${xml(`${place.count} x ${place.title}: ${place.message}`)}">${xml(place.report)}</failure>\n  </testcase>`,
    );
  }
  for (const process of unchecked) {
    cases.push(`  <testcase classname="tcp-leak-agent.unchecked-process" name="${xml(process.title)}">\n    <failure type="unchecked-process" message="${xml(`ran without the agent: ${process.detail}`)}">${xml(process.detail)}</failure>\n  </testcase>`);
  }
  if (cases.length === 0) cases.push('  <testcase classname="tcp-leak-agent" name="no leaked TCP socket"/>');
  const failed = failures.length + unchecked.length;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="tcp-leak-agent" tests="${cases.length}" failures="${failed}" errors="0">\n<testsuite name="tcp-leak-agent" tests="${cases.length}" failures="${failed}" errors="0" skipped="0">\n${cases.join('\n')}\n</testsuite>\n</testsuites>\n`;
}

// ---- SARIF 2.1.0 ----

/**
 * A SARIF 2.1.0 log: one rule per leak kind, one result per place with a line (a physical
 * location relative to the repository root). Code scanning rejects a result without a location,
 * so places with no line go in the run's notifications instead, where viewers still show them.
 */
export function sarifLog(places: readonly CiPlace[], root: string | undefined, version: string): object {
  const kinds = [...new Set(places.map((place) => place.kind))];
  const located = places.filter((place) => place.location);
  const unlocated = places.filter((place) => !place.location);
  const uri = (file: string) => {
    const relative = repositoryPath(file, root);
    return relative === file ? { uri: `file://${file.split(path.sep).map(encodeURIComponent).join('/')}` } : { uri: relative.split('/').map(encodeURIComponent).join('/'), uriBaseId: '%SRCROOT%' };
  };
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'tcp-leak-agent',
            semanticVersion: version,
            informationUri: 'https://www.npmjs.com/package/tcp-leak-agent',
            rules: kinds.map((kind) => ({
              id: kind,
              name: TITLES[kind].replace(/[^A-Za-z]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : '')),
              shortDescription: { text: TITLES[kind] },
              fullDescription: { text: KIND_HELP[kind] },
              help: { text: KIND_HELP[kind] },
              defaultConfiguration: { level: kind === 'time-wait' || kind === 'descriptor-pressure' ? 'warning' : 'error' },
            })),
          },
        },
        ...(root ? { originalUriBaseIds: { '%SRCROOT%': { uri: `file://${root.split(path.sep).map(encodeURIComponent).join('/')}/` } } } : {}),
        invocations: [
          {
            executionSuccessful: true,
            toolExecutionNotifications: unlocated.map((place) => ({ level: place.level, message: { text: `${place.title} (${place.count}): ${place.place}. ${place.message}` } })),
          },
        ],
        results: located.map((place) => ({
          ruleId: place.kind,
          ruleIndex: kinds.indexOf(place.kind),
          level: place.level,
          message: { text: `${place.title}${place.count > 1 ? ` (${place.count} sockets)` : ''}: ${place.message}` },
          locations: [
            {
              physicalLocation: {
                artifactLocation: uri(place.location!.file),
                ...(place.location!.compiled ? {} : { region: { startLine: place.location!.line, startColumn: place.location!.column } }),
              },
            },
          ],
        })),
      },
    ],
  };
}
