import { tcpStateName } from '../common/tcp-states';
import type { LeakKind } from '../common/types';
import { slotOf } from '../measured/kernel-reader';
import type { Measurement } from '../measured/scanner';
import { registeredMeterProvider } from '../common/opentelemetry';

/** What the metrics report, read when an exporter collects. */
export interface MetricsReading {
  /** Tracked sockets by kernel state name ('ESTABLISHED', 'CLOSE_WAIT', ...). */
  socketsByState: Map<string, number>;
  /** Open descriptors and RLIMIT_NOFILE; -1 when unknown. */
  descriptors: { open: number; limit: number };
  /** TIME_WAIT connections this process closed first, at the last check; -1 before one ran. */
  timeWait: number;
}

// The slices of @opentelemetry/api's metrics the agent uses (the application's own copy, found
// through its global: typed here so the package builds and runs without it).
interface Attributes {
  [key: string]: string;
}
interface ObservableResult {
  observe(value: number, attributes?: Attributes): void;
}
interface Observable {
  addCallback(callback: (result: ObservableResult) => void): void;
}
interface Meter {
  createCounter(name: string, options: { description: string; unit: string }): { add(value: number, attributes?: Attributes): void };
  createObservableGauge(name: string, options: { description: string; unit: string }): Observable;
  createObservableUpDownCounter(name: string, options: { description: string; unit: string }): Observable;
}
interface MeterProvider {
  getMeter(name: string, version?: string): Meter;
}

function isMeterProvider(value: unknown): value is MeterProvider {
  return typeof (value as MeterProvider | undefined)?.getMeter === 'function';
}

/**
 * OpenTelemetry metrics through the meter provider the application registered with its own
 * @opentelemetry/api. Nothing when it registered none. The preload starts before the application
 * registers its SDK, so the provider is looked up again at each scan and the instruments move to
 * a new one.
 *
 * Names follow the semantic conventions where they exist
 * (process.unix.file_descriptor.count, network.connection.state); the rest
 * live under tcp_leak_agent.*.
 */
export class AgentMetrics {
  private provider: MeterProvider | undefined;
  private leakCounter: { add(value: number, attributes?: Attributes): void } | undefined;

  constructor(
    private readonly version: string,
    private readonly reading: () => MetricsReading,
  ) {
    this.refresh();
  }

  /** Creates the instruments on the registered provider if it changed (the application registered its SDK, or another). */
  refresh(): void {
    const registered = registeredMeterProvider();
    const provider = isMeterProvider(registered) ? registered : undefined;
    if (provider === this.provider) return;
    this.provider = provider;
    this.leakCounter = undefined;
    if (!provider) return;
    const meter = provider.getMeter('tcp-leak-agent', this.version);
    this.leakCounter = meter.createCounter('tcp_leak_agent.leak.count', {
      description: 'Leaked TCP sockets reported, by kind',
      unit: '{socket}',
    });
    meter
      .createObservableUpDownCounter('tcp_leak_agent.socket.count', { description: 'TCP sockets the agent tracks, by kernel state', unit: '{socket}' })
      .addCallback((result) => {
        for (const [state, count] of this.reading().socketsByState) {
          result.observe(count, { 'network.transport': 'tcp', 'network.connection.state': state.toLowerCase() });
        }
      });
    meter
      .createObservableUpDownCounter('process.unix.file_descriptor.count', { description: 'Number of unix file descriptors in use by the process', unit: '{file_descriptor}' })
      .addCallback((result) => {
        const { open } = this.reading().descriptors;
        if (open >= 0) result.observe(open);
      });
    meter
      .createObservableGauge('tcp_leak_agent.file_descriptor.limit', { description: 'RLIMIT_NOFILE (soft): where connects and accepts start failing with EMFILE', unit: '{file_descriptor}' })
      .addCallback((result) => {
        const { limit } = this.reading().descriptors;
        if (limit > 0 && Number.isFinite(limit)) result.observe(limit);
      });
    meter
      .createObservableGauge('tcp_leak_agent.time_wait.count', { description: 'TIME_WAIT connections this process closed first, on its own ports', unit: '{connection}' })
      .addCallback((result) => {
        const count = this.reading().timeWait;
        if (count >= 0) result.observe(count);
      });
  }

  leaked(kind: LeakKind, count: number): void {
    this.leakCounter?.add(count, { 'tcp_leak_agent.leak.kind': kind });
  }
}

/** What the metrics observe, from a measurement and the resource checks' counts. */
export function readingOf(m: Measurement, descriptors: { open: number; limit: number }, timeWait: number): MetricsReading {
  const socketsByState = new Map<string, number>();
  for (let i = 0; i < m.count; i++) {
    const state = slotOf(m.rows, m.stride, i, 'state');
    if (state < 0) continue;
    const name = tcpStateName(state);
    socketsByState.set(name, (socketsByState.get(name) ?? 0) + 1);
  }
  return { socketsByState, descriptors, timeWait };
}
