import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Leak, LeakSummaryReport } from '../src/common/types';
import { escapeRegExp, explain, FAST, FIXTURES, markerLine, runFixture } from './helpers';

const FIXTURE = 'mass-leak.js';
const LINE = markerLine(FIXTURE);
const PLACE = `${path.join(FIXTURES, FIXTURE)}:${LINE}:`;

/** The JSON lines of a run: full reports and the rate limit's summaries. */
function reportsOf(stderr: string): { leaks: Leak[]; summaries: LeakSummaryReport[] } {
  const lines = stderr
    .split('\n')
    .filter((line) => line.startsWith('{"tool":"tcp-leak-agent"'))
    .map((line) => JSON.parse(line) as Leak | LeakSummaryReport);
  return {
    leaks: lines.filter((line): line is Leak => !('type' in line)),
    summaries: lines.filter((line): line is LeakSummaryReport => 'type' in line && line.type === 'leak-summary'),
  };
}

const sockets = (reports: Array<{ count?: number }>) => reports.reduce((sum, report) => sum + (report.count ?? 1), 0);

describe.concurrent('a mass leak', () => {
  it('is told as one report with a count, not one report per socket', async () => {
    const result = await runFixture(FIXTURE, { args: ['1', '20'], env: FAST });
    const { leaks, summaries } = reportsOf(result.stderr);
    expect(leaks, explain(result)).toHaveLength(1);
    expect(leaks[0]!.location).toMatchObject({ file: path.join(FIXTURES, FIXTURE), line: LINE });
    // A wave can straddle two scans: what the second scan found is summed up at exit.
    expect(sockets(leaks) + sockets(summaries)).toBe(20);
    expect(summaries.length).toBeLessThanOrEqual(1); // 20 sockets, at most two lines
    const count = leaks[0]!.count ?? 1;
    expect(leaks[0]!.others?.length ?? 0).toBe(Math.min(10, count - 1));
  });

  it('sums up later leaks from a reported place in one line that starts with the place', async () => {
    const result = await runFixture(FIXTURE, { args: ['2', '10'], env: { ...FAST, TCP_LEAK_AGENT_FORMAT: 'text' } });
    const lines = result.stderr.split('\n');
    // On a loaded machine the first scan may catch a single socket of the wave: then no count.
    expect(lines[0], explain(result)).toMatch(new RegExp(`^${escapeRegExp(PLACE)}\\d+ in connectAll: leaked TCP socket, stuck in CLOSE_WAIT( \\(\\d+ sockets from this line\\))?$`));
    const reported = Number(/\((\d+) sockets from this line\)/.exec(lines[0]!)?.[1] ?? 1);
    const summary = lines.filter((line) => line.startsWith(PLACE) && line.includes('more leaked TCP sockets'));
    expect(summary, explain(result)).toHaveLength(1);
    const [, held, total] = /: (\d+) more leaked TCP sockets from this place \(stuck in CLOSE_WAIT\) since it was reported at .*; (\d+) in all/.exec(summary[0]!)!;
    expect(reported + Number(held)).toBe(20);
    expect(Number(total)).toBe(20);
    // One full report in all: the second wave is not told socket by socket.
    expect(lines.filter((line) => line.startsWith(PLACE))).toHaveLength(2);
  });

  it('with sampled stacks, names no wrong line, says why a socket has none, and names every one once the hunt is on', async () => {
    // Three waves of 10 from one line. The first socket is sampled (the first of its kind), the
    // others of the first wave mostly not (1 in 200 at random); their report starts the hunt, so
    // every socket of the next wave is captured (the second, or the third when the first wave's
    // reports come after the second wave began).
    const result = await runFixture(FIXTURE, { args: ['3', '10'], env: { ...FAST, TCP_LEAK_AGENT_STACKS: 'sampled' } });
    const { leaks, summaries } = reportsOf(result.stderr);
    const reports = [...leaks, ...summaries];
    const located = reports.filter((report) => report.location !== null);
    const unlocated = reports.filter((report) => report.location === null);
    expect(located.every((report) => report.location?.line === LINE), explain(result)).toBe(true);
    expect(sockets(located) + sockets(unlocated), explain(result)).toBe(30);
    expect(sockets(located), explain(result)).toBeGreaterThanOrEqual(11);
    if (unlocated.length > 0) {
      expect(leaks.find((leak) => leak.location === null)?.stackNote).toBe(
        'this socket\'s creation stack was not sampled (stacks: "sampled", the first call to each place and 1 in 200 at random); ' +
          'every new socket is captured from now on, so the line is named when this leak happens again',
      );
    }
  });

  it('is sampled by default outside test runs', async () => {
    // Vitest sets NODE_ENV=test, which children inherit and which asks for every stack.
    const env = { ...FAST, NODE_ENV: 'production', TCP_LEAK_AGENT_STACKS: '', TCP_LEAK_AGENT_STACK_SAMPLE_EVERY: '5' };
    const result = await runFixture(FIXTURE, { args: ['1', '10'], env });
    const { leaks, summaries } = reportsOf(result.stderr);
    const located = sockets([...leaks, ...summaries].filter((report) => report.location?.line === LINE));
    // The first socket, and one in 5 of the others at random: all 10 only once in two million runs.
    expect(located, explain(result)).toBeGreaterThanOrEqual(1);
    expect(located).toBeLessThan(10);
  });

  it('names no line with stacks off, and says so', async () => {
    const result = await runFixture(FIXTURE, { args: ['1', '3'], env: { ...FAST, TCP_LEAK_AGENT_STACKS: 'off', TCP_LEAK_AGENT_FORMAT: 'text' } });
    expect(result.stderr, explain(result)).toMatch(/^fd \d+ 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ \(no line: its creation stack was not captured\)/);
    expect(result.stderr).toContain('No line to name: creation stacks are off (stacks: "off"). TCP_LEAK_AGENT_STACKS=all');
  });
});
