import { describe, expect, it } from 'vitest';
import { groupReport, ReportLimiter } from '../../src/told/report-limiter';
import type { Leak } from '../../src/common/types';

const T0 = 1_700_000_000_000;

function leakAt(line: number, fd: number, kind: Leak['kind'] = 'close-wait'): Leak {
  return {
    kind,
    state: 'CLOSE_WAIT',
    fd,
    local: null,
    remote: null,
    closeWaitMs: 1000,
    lastDataSentMs: 1000,
    createdAt: new Date(T0).toISOString(),
    detectedAt: new Date(T0).toISOString(),
    origin: 'client',
    location: { file: '/app/client.js', line, column: 5 },
    creation: null,
    stack: '',
    atExit: false,
    threadId: 0,
    pid: 1,
  };
}

describe('the report limiter', () => {
  it('tells the leaks of one place and kind found in one scan as one report with a count', () => {
    const limiter = new ReportLimiter(60_000);
    const { groups, summaries } = limiter.admit([leakAt(10, 20), leakAt(10, 21), leakAt(10, 22), leakAt(11, 23)], T0);
    expect(groups.map((group) => [group.leak.location!.line, group.leaks.length])).toEqual([[10, 3], [11, 1]]);
    expect(groupReport(groups[0]!)).toMatchObject({ fd: 20, count: 3, others: [{ fd: 21 }, { fd: 22 }] });
    expect(groupReport(groups[1]!)).not.toHaveProperty('count');
    expect(summaries).toEqual([]);
  });

  it('keeps kinds apart at one place', () => {
    const { groups } = new ReportLimiter(60_000).admit([leakAt(10, 20), leakAt(10, 21, 'stalled-reader')], T0);
    expect(groups).toHaveLength(2);
  });

  it('counts later leaks from a place already told, and sums them up once the interval has passed, then at exit', () => {
    const limiter = new ReportLimiter(60_000);
    limiter.admit([leakAt(10, 20)], T0);
    expect(limiter.admit([leakAt(10, 21), leakAt(10, 22)], T0 + 1000)).toEqual({ groups: [], summaries: [] });
    const { summaries } = limiter.admit([leakAt(10, 23)], T0 + 60_000);
    expect(summaries).toMatchObject([{ type: 'leak-summary', place: '/app/client.js:10:5', count: 3, total: 4 }]);
    limiter.admit([leakAt(10, 24)], T0 + 61_000);
    expect(limiter.flush(T0 + 62_000)).toMatchObject([{ count: 1, total: 5 }]);
    expect(limiter.flush(T0 + 63_000)).toEqual([]);
  });

  it('tells at most 20 new places in full per interval; the rest are summed up at once, one line each', () => {
    const limiter = new ReportLimiter(60_000);
    const leaks = Array.from({ length: 25 }, (_, i) => leakAt(100 + i, 20 + i));
    const { groups, summaries } = limiter.admit(leaks, T0);
    expect(groups).toHaveLength(20);
    expect(summaries.map((summary) => [summary.place, summary.lastReportedAt])).toEqual(
      leaks.slice(20).map((leak) => [`/app/client.js:${leak.location!.line}:5`, null]),
    );
  });
});
