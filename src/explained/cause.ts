import type { Socket } from 'node:net';
import { httpParserOf, httpResponseOf, isHttpServer, isReading, readableStateOf, serverOf } from '../common/node-internals';
import type { SocketRecord } from '../remembered/registry';
import type { LeakCause } from '../common/types';

/**
 * The listener an http server handed an accepted socket to ('upgrade' or 'connect'), when the
 * server has listeners for only one of them; undefined when not handed over, or either could be.
 */
export function handedOverTo(socket: Socket): 'upgrade' | 'connect' | undefined {
  const server = serverOf(socket);
  if (httpParserOf(socket) !== null || !isHttpServer(server)) return undefined;
  const upgrade = (server?.listenerCount('upgrade') ?? 0) > 0;
  const connect = (server?.listenerCount('connect') ?? 0) > 0;
  return upgrade === connect ? undefined : upgrade ? 'upgrade' : 'connect';
}

/**
 * Why the socket leaked, from what its JavaScript side shows, with the fix
 * in one line. Runs only when a leak is reported. Says only what it knows:
 * when nothing specific fits, it lists the socket's state instead of guessing.
 */
export function classifyLeak(socket: Socket, record: SocketRecord): LeakCause {
  // A TLS server's accepted socket: the TLS socket reading its stream has the state to read.
  if (record.reader) return classifyLeak(record.reader, { ...record, reader: undefined });
  const readable = readableStateOf(socket);
  const server = serverOf(socket);
  const eofSeen = readable.ended === true;
  const endDelivered = readable.endEmitted === true;

  // The program ended its side while what the peer sent waits unread: Node reads no further, so
  // it never sees the peer's FIN and never destroys the socket. (engine.io refused unknown
  // upgrades this way.) Told before who was handed the socket: that listener did end it.
  if (socket.writableEnded && !endDelivered && ((readable.length ?? 0) > 0 || !isReading(socket))) {
    const buffered = readable.length ?? 0;
    return {
      code: 'ended-unread',
      summary:
        `the program ended its side (socket.end()) while what the peer sent was left unread${buffered > 0 ? ` (${buffered} bytes in Node's buffer)` : ''}: ` +
        "Node reads no further, never sees the peer's FIN, and so never destroys the socket",
      fix: 'call socket.destroy() instead of socket.end() when nothing more will be read (after writing a last answer, if any), or read the socket to its end (socket.resume())',
    };
  }

  // A server socket an http server no longer parses: it was handed to 'upgrade' or 'connect'.
  if (record.origin === 'server' && httpParserOf(socket) === null && isHttpServer(server)) {
    const upgrade = (server?.listenerCount('upgrade') ?? 0) > 0;
    const connect = (server?.listenerCount('connect') ?? 0) > 0;
    if (upgrade !== connect) {
      const which = upgrade ? 'upgrade' : 'connect';
      return {
        code: upgrade ? 'upgrade-not-closed' : 'connect-not-closed',
        summary: `the http server handed this socket to its '${which}' listener, which never closes it`,
        fix: `in the '${which}' listener, end or destroy the socket when the peer ends (socket.on('end', () => socket.end())) and on errors`,
      };
    }
    // Both listeners exist, and the socket does not show which request took it.
    return {
      code: 'upgrade-or-connect-not-closed',
      summary: "the http server handed this socket to its 'upgrade' listener (or, for a CONNECT request, to its 'connect' listener), which never closes it",
      fix: "in that listener, end or destroy the socket when the peer ends (socket.on('end', () => socket.end())) and on errors",
    };
  }

  // A client socket http handed to the request's 'upgrade' or 'connect' listener (see SocketSources).
  if (record.handedTo !== undefined) {
    const which = record.handedTo;
    return {
      code: `request-${which}-not-closed`,
      summary: `http handed this socket to the request's '${which}' listener, which never closes it`,
      fix: `in the request's '${which}' listener, read the socket and end it when the server ends (socket.on('end', () => socket.end())), or destroy it when done, and on errors`,
    };
  }

  // Under a TLS server whose handshake never completed, the raw socket's stream is bypassed: its state says nothing.
  if (record.reader === null && !isHttpServer(server)) {
    return {
      code: 'unknown',
      summary: "the TLS server's socket was never ended (the TLS layer reads it directly, and no TLS socket was seen for it, so its state cannot be read here)",
      fix: "end or destroy the TLS socket when the client ends: with allowHalfOpen, call socket.end() in its 'end' handler",
    };
  }

  // The program saw 'end' (allowHalfOpen) and never ended its side.
  if (endDelivered && !socket.writableEnded) {
    return {
      code: 'eof-not-ended',
      summary: "the program got the peer's 'end' but never ended its own side (allowHalfOpen)",
      fix: "call socket.end() in the socket's 'end' handler",
    };
  }

  // Data or the EOF is still waiting to be read.
  const response = httpResponseOf(socket);
  if (response && response.complete !== true) {
    return {
      code: 'unread-http-response',
      summary: 'the http response body was never read to its end',
      fix: 'read the body, or call res.resume() to discard it (or res.destroy() to abandon the request)',
    };
  }
  if (record.client !== undefined) {
    return {
      code: 'unread-fetch-body',
      summary: 'a fetch() Response body was never read to its end',
      fix: 'read the body (await response.text(), .json(), .arrayBuffer()) or call response.body.cancel()',
    };
  }
  const notReading = !isReading(socket);
  if (!endDelivered && (notReading || (readable.length ?? 0) > 0 || eofSeen)) {
    return {
      code: 'unread',
      summary: readable.flowing === false ? 'the stream was paused and never resumed' : 'the data or the EOF was never read: the stream is never consumed',
      fix: "consume the stream (socket.on('data', ...) or socket.resume()), or destroy it when you are done",
    };
  }

  return {
    code: 'unknown',
    summary: `readable: ${eofSeen ? 'EOF received' : 'open'}${endDelivered ? ", 'end' delivered" : ''}, ${readable.length ?? 0} bytes buffered in Node; writable: ${socket.writableEnded ? 'ended' : 'open'}`,
    fix: 'end or destroy this socket when the peer has closed',
  };
}
