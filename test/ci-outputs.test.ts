import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import Ajv04 from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { FAST, FIXTURES, markerLine, reportFile, ROOT, runFixture, runNode, scratchDir, withoutCi } from './helpers';

// What CI systems read, checked by real consumers: GitHub Actions' workflow commands compared with
// what @actions/core writes for the same annotation, SARIF validated against the official 2.1.0
// schema, JUnit XML parsed by an XML parser.

const CLI = path.join(ROOT, 'dist', 'cli.js');
const LEAKY = 'http-get-unread-body.js';
const LEAK_LINE = markerLine(LEAKY);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string>): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...withoutCi(process.env), ...env };
  for (const key of Object.keys(childEnv)) if (key.startsWith('VITEST') || key === 'NODE_OPTIONS') delete childEnv[key];
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, env: childEnv, timeout: 45_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

/** A fresh job: GitHub Actions' variables, with a summary file of its own. */
function githubJob(): { env: Record<string, string>; summary: string; dir: string } {
  const dir = scratchDir('ci');
  const summary = path.join(dir, 'summary.md');
  return { env: { GITHUB_ACTIONS: 'true', GITHUB_WORKSPACE: ROOT, GITHUB_STEP_SUMMARY: summary }, summary, dir };
}

/** What @actions/core writes for this annotation (it writes to stdout). */
function actionsCoreError(message: string, properties: core.AnnotationProperties): string {
  const written: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string) => written.push(String(chunk)) > 0) as typeof process.stdout.write;
  try {
    core.error(message, properties);
  } finally {
    process.stdout.write = write;
  }
  return written.join('');
}

function annotations(output: string): string[] {
  return output.split('\n').filter((line) => line.startsWith('::error') || line.startsWith('::warning'));
}

function sarifValidator() {
  const schema = JSON.parse(readFileSync(path.join(ROOT, 'node_modules', '@microsoft', 'jest-sarif', 'lib', 'schemas', 'sarif-2.1.0-rtm.5.json'), 'utf8')) as object;
  // The official schema is JSON Schema draft-04.
  const ajv = new Ajv04({ strict: false, allErrors: true, unicodeRegExp: false }); // (one of its patterns is not valid in unicode mode)
  addFormats(ajv);
  return ajv.compile(schema);
}

const FAST_FLAGS = ['--interval-ms', '50', '--close-wait-ms', '300'];

describe.concurrent('the CLI under GitHub Actions, with --junit and --sarif', () => {
  it('annotates the leaking line as @actions/core would, appends a summary row, and writes valid JUnit and SARIF', async () => {
    const job = githubJob();
    const junit = path.join(job.dir, 'leaks.xml');
    const sarif = path.join(job.dir, 'leaks.sarif');
    const run = await cli([...FAST_FLAGS, '--junit', junit, '--sarif', sarif, '--', process.execPath, path.join(FIXTURES, LEAKY)], job.env);
    expect(run.code, run.stderr).toBe(1);

    const [annotation, ...others] = annotations(run.stdout);
    expect(others).toEqual([]);
    const file = `test/fixtures/${LEAKY}`;
    const column = Number(/,col=(\d+)::/.exec(annotation!)?.[1]);
    const message = decodeURIComponent(annotation!.slice(annotation!.indexOf('::', 2) + 2).replace(/%0A/g, '\n'));
    expect(message).toContain('Fix: read the body, or call res.resume()');
    expect(`${annotation}\n`).toBe(actionsCoreError(message, { title: 'Leaked TCP socket: CLOSE_WAIT', file, startLine: LEAK_LINE, startColumn: column }));

    const summary = readFileSync(job.summary, 'utf8');
    expect(summary).toContain('### tcp-leak-agent: 1 leaked TCP socket');
    expect(summary).toContain(`| \`${file}:${LEAK_LINE}:${column}\` | Leaked TCP socket: CLOSE_WAIT | 1 |`);

    const log = JSON.parse(readFileSync(sarif, 'utf8')) as { runs: Array<{ results: Array<{ ruleId: string; locations: Array<{ physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number } } }> }> }> };
    const validate = sarifValidator();
    expect(validate(log), JSON.stringify(validate.errors)).toBe(true);
    expect(log.runs[0]!.results).toHaveLength(1);
    expect(log.runs[0]!.results[0]!.ruleId).toBe('close-wait');
    expect(log.runs[0]!.results[0]!.locations[0]!.physicalLocation).toMatchObject({ artifactLocation: { uri: file }, region: { startLine: LEAK_LINE } });

    const xml = readFileSync(junit, 'utf8');
    expect(XMLValidator.validate(xml)).toBe(true);
    const suite = (new XMLParser({ ignoreAttributes: false }).parse(xml) as { testsuites: { testsuite: Record<string, unknown> } }).testsuites.testsuite;
    expect(suite).toMatchObject({ '@_name': 'tcp-leak-agent', '@_tests': '1', '@_failures': '1' });
    const testcase = suite.testcase as Record<string, unknown> & { failure: Record<string, string> };
    expect(testcase).toMatchObject({ '@_file': file, '@_line': String(LEAK_LINE) });
    expect(testcase.failure['#text']).toContain(`${path.join(FIXTURES, LEAKY)}:${LEAK_LINE}:`);
  });

  it('a clean run: no annotation, no summary, one passing JUnit case, and SARIF with no result', async () => {
    const job = githubJob();
    const junit = path.join(job.dir, 'leaks.xml');
    const sarif = path.join(job.dir, 'leaks.sarif');
    const run = await cli([...FAST_FLAGS, '--junit', junit, '--sarif', sarif, '--', process.execPath, '-e', 'setTimeout(() => {}, 200)'], job.env);
    expect(run.code, run.stderr).toBe(0);
    expect(annotations(run.stdout)).toEqual([]);
    expect(() => readFileSync(job.summary)).toThrow();
    const suite = (new XMLParser({ ignoreAttributes: false }).parse(readFileSync(junit, 'utf8')) as { testsuites: { testsuite: Record<string, unknown> } }).testsuites.testsuite;
    expect(suite).toMatchObject({ '@_tests': '1', '@_failures': '0', testcase: { '@_name': 'no leaked TCP socket' } });
    const log = JSON.parse(readFileSync(sarif, 'utf8')) as { runs: Array<{ results: unknown[] }> };
    expect(sarifValidator()(log)).toBe(true);
    expect(log.runs[0]!.results).toEqual([]);
  });

  it('prints no workflow command outside GitHub Actions, and none with TCP_LEAK_AGENT_ANNOTATIONS=0', async () => {
    const plain = await cli([...FAST_FLAGS, '--', process.execPath, path.join(FIXTURES, LEAKY)], {});
    expect(plain.code).toBe(1);
    expect(annotations(plain.stdout + plain.stderr)).toEqual([]);
    const job = githubJob();
    const off = await cli([...FAST_FLAGS, '--', process.execPath, path.join(FIXTURES, LEAKY)], { ...job.env, TCP_LEAK_AGENT_ANNOTATIONS: '0' });
    expect(off.code).toBe(1);
    expect(annotations(off.stdout + off.stderr)).toEqual([]);
    expect(() => readFileSync(job.summary)).toThrow();
  });

  it('rejects a bad TCP_LEAK_AGENT_ANNOTATIONS in one line naming it', async () => {
    const run = await cli(['--', process.execPath, '-e', ''], { TCP_LEAK_AGENT_ANNOTATIONS: 'maybe' });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('TCP_LEAK_AGENT_ANNOTATIONS');
    expect(run.stderr).toContain('"maybe"');
  });
});

describe.concurrent('the preload under GitHub Actions', () => {
  it('annotates each leaking place as it is reported, and writes the job summary and TCP_LEAK_AGENT_JUNIT at exit', async () => {
    const job = githubJob();
    const junit = path.join(job.dir, 'preload.xml');
    const result = await runFixture(LEAKY, { env: { ...FAST, ...job.env, TCP_LEAK_AGENT_JUNIT: junit } });
    expect(result.code).toBe(0);
    const [annotation, ...others] = annotations(result.stdout);
    expect(others).toEqual([]);
    expect(annotation).toMatch(new RegExp(`^::error title=Leaked TCP socket%3A CLOSE_WAIT,file=test/fixtures/${LEAKY},line=${LEAK_LINE},col=\\d+::`));
    expect(readFileSync(job.summary, 'utf8')).toContain(`\`test/fixtures/${LEAKY}:${LEAK_LINE}:`);
    expect(XMLValidator.validate(readFileSync(junit, 'utf8'))).toBe(true);
    expect(readFileSync(junit, 'utf8')).toContain('failures="1"');
  });
});

// Each runner, on its fixture project (the same leaking line): the command, and where it runs.
const RUNNERS: Record<string, () => { args: string[]; cwd: string }> = {
  vitest: () => ({ args: [path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', path.join(FIXTURES, 'vitest-project'), '--pool', 'forks', '--reporter=json', `--outputFile=${reportFile('vitest')}`], cwd: ROOT }),
  jest: () => ({ args: [path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js'), '--rootDir', path.join(FIXTURES, 'jest-project'), '--ci', '--maxWorkers=2'], cwd: path.join(FIXTURES, 'jest-project') }),
  mocha: () => ({ args: [path.join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js')], cwd: path.join(FIXTURES, 'mocha-project') }),
  // The spec reporter (the default from Node 24): Node 22's default out of a terminal is TAP, which
  // prints a test file's output as TAP comments ("# ::error ..."), where the runner does not read them.
  'node:test': () => ({ args: ['--test', '--test-reporter=spec', '--import', 'tcp-leak-agent/node-test', 'orders.test.mjs'], cwd: path.join(FIXTURES, 'node-test-project') }),
};

describe.concurrent('each test-runner adapter under GitHub Actions', () => {
  it.for(Object.keys(RUNNERS))("%s: annotates the leaking line of the test that failed, and adds the failure to the job summary", async (runner) => {
    const job = githubJob();
    const { args, cwd } = RUNNERS[runner]!();
    const run = await runNode(args, { cwd, env: job.env, timeoutMs: 90_000 });
    expect(run.code).toBeGreaterThan(0); // (mocha exits with the number of failures)
    const ours = annotations(run.stdout).filter((line) => line.includes('title=Leaked TCP socket'));
    expect(ours.length, run.stdout).toBeGreaterThanOrEqual(1);
    expect(ours[0]).toContain(`file=test/fixtures/orders-api.cjs,line=${markerLine('orders-api.cjs')},`);
    expect(readFileSync(job.summary, 'utf8')).toContain(`\`test/fixtures/orders-api.cjs:${markerLine('orders-api.cjs')}:`);
  });
});
