import type { Socket } from 'node:net';
import { httpRequestOf } from '../common/node-internals';
import type { Frame } from '../common/stack';
import type { LeakCause, Location } from '../common/types';
import type { SocketRecord } from '../remembered/socket-record';

/** The libraries whose calls the advice can name: HTTP clients and proxies, and ws (a server's 'upgrade' listener). */
export type ClientLibrary = 'node-fetch' | 'undici' | 'axios' | 'got' | 'http-proxy' | 'ws';

const BY_PATH: ReadonlyArray<[RegExp, ClientLibrary]> = [
  [/[\\/]node_modules[\\/]node-fetch[\\/]/, 'node-fetch'],
  [/[\\/]node_modules[\\/]axios[\\/]/, 'axios'],
  [/[\\/]node_modules[\\/]got[\\/]/, 'got'],
  [/[\\/]node_modules[\\/]undici[\\/]/, 'undici'],
  [/[\\/]node_modules[\\/]http-proxy[\\/]/, 'http-proxy'],
];

// Each library's default User-Agent (a program can set its own: then the frames and listeners decide).
const BY_USER_AGENT: ReadonlyArray<[RegExp, ClientLibrary]> = [
  [/^node-fetch\b/, 'node-fetch'],
  [/^axios\//, 'axios'],
  [/^got\b/, 'got'],
];

/**
 * Which library made the socket's last request, from what is at hand when the
 * report is built: undici's request() (told apart from fetch() when the request
 * was sent), the request's User-Agent header, the files of the functions
 * listening on the request, and the files of the captured stacks.
 */
export function clientLibraryOf(socket: Socket, record: SocketRecord, listenerFiles: readonly Location[], frames: readonly Frame[]): ClientLibrary | undefined {
  if (record.client === 'undici') return 'undici';
  const request = httpRequestOf(socket) as { getHeader?(name: string): unknown } | null | undefined;
  let agent: unknown;
  try {
    agent = request?.getHeader?.('user-agent');
  } catch {
    agent = undefined;
  }
  const userAgent = Array.isArray(agent) ? String(agent[0]) : typeof agent === 'string' ? agent : '';
  for (const [pattern, library] of BY_USER_AGENT) if (pattern.test(userAgent)) return library;
  for (const file of [...listenerFiles.map((location) => location.file), ...frames.map((frame) => frame.file ?? '')]) {
    for (const [pattern, library] of BY_PATH) if (pattern.test(file)) return library;
  }
  return undefined;
}

/** The cause in the library's own terms: its objects and its calls. Other causes are kept. */
export function inLibraryTerms(cause: LeakCause, library: ClientLibrary | undefined): LeakCause {
  if (library === 'ws' && cause.code === 'upgrade-not-closed') {
    return {
      code: 'upgrade-not-routed',
      summary: "the 'upgrade' listener hands some requests to a WebSocketServer (ws: handleUpgrade()) and left this one, which nobody closes",
      fix: 'destroy every socket the listener does not hand to wss.handleUpgrade() (socket.destroy(), after writing an HTTP error status if you like)',
    };
  }
  if (cause.code !== 'unread-http-response' && cause.code !== 'unread-fetch-body') return cause;
  switch (library) {
    case 'node-fetch':
      return {
        code: 'unread-node-fetch-body',
        summary: 'a node-fetch Response body was never read to its end',
        fix: 'read the body (await res.text(), res.json(), res.arrayBuffer()), or discard it with res.body.resume() (res.body.destroy() to abandon it)',
      };
    case 'undici':
      return {
        code: 'unread-undici-body',
        summary: "an undici request() response body was never read to its end",
        fix: 'read the body (await body.text(), body.json(), body.arrayBuffer()), or discard it with await body.dump()',
      };
    case 'axios':
      return {
        code: 'unread-axios-stream',
        summary: "an axios response stream (responseType: 'stream') was never read to its end",
        fix: 'consume response.data (pipe it somewhere), or discard it with response.data.resume() (response.data.destroy() to abandon it)',
      };
    case 'got':
      return {
        code: 'unread-got-stream',
        summary: 'a got stream (got.stream()) was never read to its end',
        fix: 'consume the stream (pipeline() it somewhere), or discard it with stream.resume() (stream.destroy() to abandon the request)',
      };
    case 'http-proxy':
      return {
        code: 'proxy-response-abandoned',
        summary: "http-proxy stopped piping the upstream response when the client's response closed early (the client went away), and never destroyed it",
        fix:
          "destroy the upstream response when the client's response closes before it finished: " +
          "proxy.on('proxyRes', (proxyRes, req, res) => res.on('close', () => { if (!res.writableFinished) proxyRes.destroy(); }))",
      };
    default:
      return cause;
  }
}
