/**
 * The application's OpenTelemetry, when it uses it: its active span (trace
 * context) and its logger provider. Read from the globals where every copy of
 * @opentelemetry/api 1.x and @opentelemetry/api-logs keeps what the
 * application registered, so the agent needs no copy of its own and sees the
 * application's, whichever version it loaded. A program without OpenTelemetry
 * pays one global read per look.
 */

/** Where @opentelemetry/api 1.x keeps the registered context manager and providers. */
const API_GLOBAL = Symbol.for('opentelemetry.js.api.1');
/** Where @opentelemetry/api-logs keeps the registered logger provider (a getter taking the API's compatibility version). */
const LOGS_GLOBAL = Symbol.for('io.opentelemetry.js.api.logs');
const LOGS_COMPATIBILITY = 1;
/** The context key under which the API stores the active span. */
const SPAN_KEY = Symbol.for('OpenTelemetry Context Key SPAN');
const INVALID_TRACE_ID = '00000000000000000000000000000000';

export interface SpanContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
}

interface Context {
  getValue(key: symbol): unknown;
  setValue(key: symbol, value: unknown): Context;
}

export interface LogRecord {
  timestamp?: number;
  severityNumber?: number;
  severityText?: string;
  body?: string;
  attributes?: Record<string, string | number | boolean>;
  context?: unknown;
}

/** What @opentelemetry/api 1.x registers under API_GLOBAL: its version and each global it was given. */
interface RegisteredApi {
  context?: { active?(): Context };
  metrics?: unknown;
}

function registeredApi(): RegisteredApi | undefined {
  return (globalThis as Record<symbol, RegisteredApi | undefined>)[API_GLOBAL];
}

/**
 * The meter provider the application registered (`metrics.setGlobalMeterProvider()`), or
 * undefined when it registered none. Read from the global rather than through a copy of the API:
 * loading the package at start cost every process that never used it (its module graph in the
 * young heap as the program's first requests ran made V8 keep a GC pattern that cost a client
 * making new connections about 10%: docs/figures.md).
 */
export function registeredMeterProvider(): unknown {
  try {
    return registeredApi()?.metrics;
  } catch {
    return undefined;
  }
}

function activeContext(): Context | undefined {
  const registered = registeredApi();
  try {
    return registered?.context?.active?.();
  } catch {
    return undefined;
  }
}

/**
 * The active span's context, when the application traces (a context manager is registered and
 * a span is active): one context lookup, no stack.
 */
export function activeSpanContext(): SpanContext | undefined {
  const span = activeContext()?.getValue(SPAN_KEY) as { spanContext?(): SpanContext } | undefined;
  const found = span?.spanContext?.();
  if (!found || typeof found.traceId !== 'string' || found.traceId === INVALID_TRACE_ID) return undefined;
  return { traceId: found.traceId, spanId: found.spanId, traceFlags: found.traceFlags };
}

/** A context holding `span` (as a span that only carries its context), for a log record to carry its trace. */
export function contextWithSpan(span: SpanContext): unknown {
  return activeContext()?.setValue(SPAN_KEY, { spanContext: () => span, isRecording: () => false });
}

/** The application's registered OpenTelemetry logger, or undefined when no logger provider is registered. */
export function registeredLogger(version: string): { emit(record: LogRecord): void } | undefined {
  const getter = (globalThis as Record<symbol, unknown>)[LOGS_GLOBAL];
  if (typeof getter !== 'function') return undefined;
  try {
    const provider = (getter as (version: number) => { getLogger?(name: string, version?: string): { emit(record: LogRecord): void } } | undefined)(LOGS_COMPATIBILITY);
    return provider?.getLogger?.('tcp-leak-agent', version);
  } catch {
    return undefined;
  }
}
