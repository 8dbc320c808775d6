import * as core from '@actions/core';
import { describe, expect, it } from 'vitest';
import { workflowCommands, type CiPlace } from '../../src/told/ci-formats';

/** What @actions/core writes for this annotation (it writes to stdout). */
function actionsCore(level: 'error' | 'warning', message: string, properties: core.AnnotationProperties): string {
  const written: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string) => written.push(String(chunk)) > 0) as typeof process.stdout.write;
  try {
    core[level](message, properties);
  } finally {
    process.stdout.write = write;
  }
  return written.join('');
}

const place = (overrides: Partial<CiPlace>): CiPlace => ({
  kind: 'close-wait',
  level: 'error',
  title: 'Leaked TCP socket: CLOSE_WAIT',
  location: { file: '/repo/src/a, b: c.js', line: 12, column: 5 },
  place: '/repo/src/a, b: c.js:12:5',
  count: 1,
  message: '100% of it\r\nwas never read: call res.resume(), then retry',
  report: '',
  ...overrides,
});

describe('GitHub Actions workflow commands', () => {
  it("escape the message and the properties exactly as @actions/core does ('%', CR, LF; ':' and ',' in properties)", () => {
    const ours = workflowCommands([place({})], { GITHUB_WORKSPACE: '/repo' });
    expect(ours).toBe(actionsCore('error', '100% of it\r\nwas never read: call res.resume(), then retry', { title: 'Leaked TCP socket: CLOSE_WAIT', file: 'src/a, b: c.js', startLine: 12, startColumn: 5 }));
  });

  it('give a warning with its count in the title, and a place with no line no file', () => {
    const ours = workflowCommands([place({ level: 'warning', kind: 'time-wait', title: 'TIME_WAIT connections piling up', count: 7000, location: null, message: 'm' })], {});
    expect(ours).toBe(actionsCore('warning', 'm', { title: 'TIME_WAIT connections piling up (7000)' }));
  });

  it('keep a file outside the workspace absolute, and name only the file of a location in compiled code', () => {
    const ours = workflowCommands([place({ location: { file: '/elsewhere/x.ts', line: 3, column: 1, compiled: true }, message: 'm' })], { GITHUB_WORKSPACE: '/repo' });
    expect(ours).toBe(actionsCore('error', 'm', { title: 'Leaked TCP socket: CLOSE_WAIT', file: '/elsewhere/x.ts' }));
  });
});
