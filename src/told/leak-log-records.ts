import { contextWithSpan, registeredLogger, type LogRecord } from '../common/opentelemetry';
import type { Leak } from '../common/types';
import { formatTextReport } from './report-text';
import { realNow } from '../common/real-time';

/** OpenTelemetry's severity number for WARN. */
const SEVERITY_WARN = 13;

/**
 * Each leak as an OpenTelemetry log record, when the application registered a
 * logger provider (@opentelemetry/api-logs): the body is the report's first
 * line, the attributes say where (code.*: file, line, column, function), what
 * (the kind, the cause and its fix) and with whom (the peer, the last request),
 * and the record carries the trace of the request that leaked the socket. A
 * fleet of services then gathers its leaks in the backend it already has.
 * Nothing is built when no provider is registered.
 */
export function emitLeakRecords(leaks: readonly Leak[], version: string): void {
  if (leaks.length === 0) return;
  const logger = registeredLogger(version);
  if (!logger) return;
  for (const leak of leaks) {
    try {
      logger.emit(recordOf(leak));
    } catch {
      // The application's logging pipeline refused one: the other outputs still have it.
    }
  }
}

function recordOf(leak: Leak): LogRecord {
  const attributes: NonNullable<LogRecord['attributes']> = {
    'tcp_leak_agent.leak.kind': leak.kind,
    'network.transport': 'tcp',
    'network.connection.state': leak.state.toLowerCase(),
    'tcp_leak_agent.socket.origin': leak.origin,
  };
  if (leak.location) {
    attributes['code.file.path'] = leak.location.file;
    attributes['code.line.number'] = leak.location.line;
    attributes['code.column.number'] = leak.location.column;
    if (leak.location.function) attributes['code.function.name'] = leak.location.function;
  } else if (leak.stackNote) {
    attributes['tcp_leak_agent.location.missing'] = leak.stackNote;
  }
  if (leak.cause) {
    attributes['tcp_leak_agent.leak.cause'] = leak.cause.code;
    attributes['tcp_leak_agent.leak.fix'] = leak.cause.fix;
  }
  if (leak.remote) {
    attributes['network.peer.address'] = leak.remote.address;
    attributes['network.peer.port'] = leak.remote.port;
  }
  if (leak.lastUse) {
    attributes['http.request.method'] = leak.lastUse.method;
    attributes['url.full'] = leak.lastUse.url;
  }
  const trace = leak.lastUse?.trace;
  return {
    timestamp: realNow(),
    severityNumber: SEVERITY_WARN,
    severityText: 'WARN',
    body: formatTextReport(leak).split('\n')[0],
    attributes,
    ...(trace ? { context: contextWithSpan(trace) } : {}),
  };
}
