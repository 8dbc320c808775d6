import { spawn } from 'node:child_process';
import * as diagnosticsChannel from 'node:diagnostics_channel';
import * as path from 'node:path';
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dump, start, stop, type Leak } from '../src/index';
import type { SocketDump } from '../src/explained/dump';
import { escapeRegExp, explain, FAST, FIXTURES, markerLine, ROOT, runFixture } from './helpers';
import { closeAll, leakOne } from './loopback';

const LOOPBACK = path.join(__dirname, 'loopback.ts');

/** A pull reader: the test collects when it wants, as an exporter's reader would on its schedule. */
class TestReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

function points(collected: ResourceMetrics, name: string): Array<{ attributes: Record<string, unknown>; value: unknown }> {
  for (const scope of collected.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name === name) return metric.dataPoints.map((point) => ({ attributes: point.attributes, value: point.value }));
    }
  }
  return [];
}

const logged: Array<[Record<string, unknown>, string]> = [];
const reader = new TestReader();

beforeAll(() => {
  start({
    intervalMs: 50,
    closeWaitMs: 100,
    stacks: 'all',
    logger: { warn: (object, message) => void logged.push([object as Record<string, unknown>, message]) },
  });
  // After start(), as when the agent is preloaded and the application sets up its SDK later.
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
});
afterAll(() => {
  closeAll();
  stop();
  metrics.disable();
});

function nextLeak(): Promise<Leak> {
  return new Promise((resolve) => {
    const onLeak = (message: unknown) => {
      diagnosticsChannel.unsubscribe('tcp-leak-agent:leak', onLeak);
      resolve((message as { leak: Leak }).leak);
    };
    diagnosticsChannel.subscribe('tcp-leak-agent:leak', onLeak);
  });
}

function nextScan(): Promise<void> {
  return new Promise((resolve) => {
    const onScan = () => {
      diagnosticsChannel.unsubscribe('tcp-leak-agent:scan', onScan);
      resolve();
    };
    diagnosticsChannel.subscribe('tcp-leak-agent:scan', onScan);
  });
}

describe('for operators, in process', () => {
  it('reports to the logger, the OpenTelemetry metrics and dump() alike', async () => {
    const leaked = nextLeak();
    const socket = await leakOne();
    await leaked;
    await nextScan(); // the metrics reading is refreshed after the scan that reported

    // Logger: pino-style warn(object, message); the message is the report's first line.
    const [object, message] = logged.find(([entry]) => entry.kind === 'close-wait')!;
    expect(message).toMatch(new RegExp(`^${escapeRegExp(LOOPBACK)}:\\d+:\\d+ in silentClient: leaked TCP socket, stuck in CLOSE_WAIT$`));
    expect(object).toMatchObject({ tool: 'tcp-leak-agent', kind: 'close-wait', fd: (socket as unknown as { _handle: { fd: number } })._handle.fd });

    // Metrics, read back through the SDK.
    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);
    expect(points(resourceMetrics, 'tcp_leak_agent.leak.count')).toContainEqual({ attributes: { 'tcp_leak_agent.leak.kind': 'close-wait' }, value: 1 });
    const sockets = points(resourceMetrics, 'tcp_leak_agent.socket.count');
    expect(sockets.find((point) => point.attributes['network.connection.state'] === 'close_wait')?.value).toBeGreaterThanOrEqual(1);
    expect(sockets[0]!.attributes['network.transport']).toBe('tcp');
    expect(points(resourceMetrics, 'process.unix.file_descriptor.count')[0]!.value).toBeGreaterThan(3);
    expect(points(resourceMetrics, 'tcp_leak_agent.file_descriptor.limit')[0]!.value).toBeGreaterThan(3);
    expect(points(resourceMetrics, 'tcp_leak_agent.time_wait.count')[0]!.value).toBeGreaterThanOrEqual(0);

    // dump(): every socket with its state and kind.
    const dumped = dump()!;
    const row = dumped.sockets.find((entry) => entry.fd === (socket as unknown as { _handle: { fd: number } })._handle.fd)!;
    expect(row).toMatchObject({ state: 'CLOSE_WAIT', kind: 'close-wait', origin: 'client' });
    expect(row.location?.file).toBe(LOOPBACK);
    expect(dumped.descriptors.open).toBeGreaterThan(3);
    expect(dumped.sites[0]!.count).toBeGreaterThanOrEqual(1);
    socket.destroy();
  });
});

describe('for operators, in a service', () => {
  const fixture = 'operator-tools.js';
  const file = path.join(FIXTURES, fixture);

  it('writes a dump of every socket on TCP_LEAK_AGENT_DUMP_SIGNAL', async () => {
    const child = spawn(process.execPath, ['--require', 'tcp-leak-agent/register', file, 'dump'], {
      cwd: ROOT,
      env: { ...process.env, ...FAST, TCP_LEAK_AGENT_DUMP_SIGNAL: 'SIGUSR2' },
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (data) => (stderr += data));
    child.stdout.on('data', (data) => {
      stdout += data;
      if (stdout.includes('ready\n')) child.kill('SIGUSR2');
    });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    const result = { code: code as number, stdout, stderr, leaks: [] };
    const lines = stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { type?: string });
    const dumped = lines.find((line) => line.type === 'dump') as SocketDump | undefined;
    expect(dumped, explain(result)).toBeDefined();
    expect(code).toBe(0);
    const at = (marker: string) => dumped!.sockets.find((entry) => entry.location?.line === markerLine(fixture, marker));
    expect(at('LEAK')).toMatchObject({ state: 'CLOSE_WAIT', kind: 'close-wait', origin: 'client' });
    expect(at('HEALTHY')).toMatchObject({ state: 'ESTABLISHED', kind: 'open', origin: 'client' });
    expect(dumped!.sockets.filter((entry) => entry.origin === 'server').length).toBeGreaterThanOrEqual(1);
  });

  it('refuses a signal that would change how the process ends, naming the setting', async () => {
    const result = await runFixture('quiet-program.js', { env: { TCP_LEAK_AGENT_DUMP_SIGNAL: 'SIGTERM' } });
    expect(result.stderr.trim(), explain(result)).toBe(
      'tcp-leak-agent: TCP_LEAK_AGENT_DUMP_SIGNAL="SIGTERM" is not accepted: expected one of SIGUSR2, SIGHUP, SIGWINCH, SIGPWR, SIGTTIN, SIGTTOU. The agent is not running.',
    );
  });

  it('the safety valve destroys a socket leaked for longer than the set time, with its report', async () => {
    const result = await runFixture(fixture, { args: ['valve'], env: { ...FAST, TCP_LEAK_AGENT_FORMAT: 'text', TCP_LEAK_AGENT_DESTROY_AFTER_MS: '300' } });
    expect(result.stdout, explain(result)).toBe('leaked socket destroyed: true\n');
    const place = `${file}:${markerLine(fixture, 'LEAK')}:`;
    expect(result.stderr).toMatch(
      new RegExp(`^tcp-leak-agent: destroyed a leaked TCP socket \\(fd \\d+\\) after \\d+ ms \\(safety valve: destroyLeakedAfterMs 300\\); the program keeps serving, the bug is still there\\. Its report:\\n${escapeRegExp(place)}`, 'm'),
    );
  });
});
