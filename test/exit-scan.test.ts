import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { explain, FIXTURES, markerLine, runFixture } from './helpers';

const fixture = 'paused-socket-left-at-exit.js';
// A closeWaitMs the run never reaches: only the exit scan can report.
const AT_EXIT_ONLY = { TCP_LEAK_AGENT_INTERVAL_MS: '50', TCP_LEAK_AGENT_CLOSE_WAIT_MS: '600000' };

describe('the exit scan', () => {
  it('reports a paused socket left in CLOSE_WAIT when the program exits on its own, and fails the run', async () => {
    const result = await runFixture(fixture, { env: { ...AT_EXIT_ONLY, TCP_LEAK_AGENT_FAIL_ON_LEAK: '1' } });
    expect(result.code, explain(result)).toBe(1);
    const firstLine = result.stderr.split('\n')[0]!;
    expect(firstLine).toMatch(new RegExp(`^${path.join(FIXTURES, fixture)}:${markerLine(fixture)}:\\d+ in main: leaked TCP socket`));
    expect(result.stderr).toContain('before the process exited');
    expect(result.stderr).toContain('What to do:');
  });

  it('keeps the exit code at 0 without TCP_LEAK_AGENT_FAIL_ON_LEAK, and writes JSON when asked', async () => {
    const result = await runFixture(fixture, { env: { ...AT_EXIT_ONLY, TCP_LEAK_AGENT_FORMAT: 'json' } });
    expect(result.code, explain(result)).toBe(0);
    expect(result.leaks).toHaveLength(1);
    expect(result.leaks[0]).toMatchObject({ atExit: true, origin: 'client', location: { line: markerLine(fixture) } });
  });
});

describe('the exit scan, when the event loop empties', () => {
  const download = 'download-left-at-exit.js';

  it('reports a download nobody read as a stalled reader, and fails the run', async () => {
    const result = await runFixture(download, { env: { ...AT_EXIT_ONLY, TCP_LEAK_AGENT_FORMAT: 'json', TCP_LEAK_AGENT_FAIL_ON_LEAK: '1' } });
    expect(result.code, explain(result)).toBe(1);
    expect(result.leaks, explain(result)).toHaveLength(1);
    expect(result.leaks[0]).toMatchObject({ kind: 'stalled-reader', atExit: true, location: { line: markerLine(download) } });
    expect(result.leaks[0]!.unreadBytes).toBeGreaterThan(0);
  });

  it('says nothing of a paused download when the program calls process.exit() itself', async () => {
    const result = await runFixture(download, {
      env: { ...AT_EXIT_ONLY, TCP_LEAK_AGENT_FORMAT: 'json', TCP_LEAK_AGENT_FAIL_ON_LEAK: '1' },
      args: ['--exit-explicitly'],
    });
    expect(result.code, explain(result)).toBe(0);
    expect(result.stderr, explain(result)).toBe('');
  });
});
