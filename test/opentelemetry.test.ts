import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { explain, FAST, FIXTURES, markerLine, runFixture } from './helpers';

describe('with OpenTelemetry (the real SDKs)', () => {
  it('puts the trace of the request that leaked in the report, and emits the leak as a log record with code.* attributes', async () => {
    const fixture = 'otel-traced-leak.js';
    const result = await runFixture(fixture, { env: { ...FAST, TCP_LEAK_AGENT_STALL_MS: '60000' } });
    expect(result.code, explain(result)).toBe(0);
    const out = JSON.parse(result.stdout.trim().split('\n').pop()!) as {
      span: { traceId: string; spanId: string };
      trace?: { traceId: string; spanId: string };
      records: Array<{ body: string; severityText: string; attributes: Record<string, unknown>; traceId?: string; spanId?: string }>;
    };
    expect(out.trace, explain(result)).toMatchObject(out.span);
    expect(out.records).toHaveLength(1);
    const [record] = out.records;
    expect(record!.severityText).toBe('WARN');
    expect(record!.body).toBe(`${path.join(FIXTURES, fixture)}:${markerLine(fixture)}:10: leaked TCP socket, stuck in CLOSE_WAIT`);
    expect(record!.attributes).toMatchObject({
      'code.file.path': path.join(FIXTURES, fixture),
      'code.line.number': markerLine(fixture),
      'tcp_leak_agent.leak.kind': 'close-wait',
      'tcp_leak_agent.leak.cause': 'unread-http-response',
      'http.request.method': 'GET',
    });
    // The record carries the leaking request's trace: the backend joins it to the span.
    expect({ traceId: record!.traceId, spanId: record!.spanId }).toEqual(out.span);
  });
});
