import type { Socket } from 'node:net';
import { httpRequestOf, serverOf } from '../common/node-internals';
import type { LeakCause, Location } from '../common/types';
import type { FunctionLocator } from './function-locations';

/** A function of the program that was handed the leaked socket (or its response) and let it go. */
export interface ListenerEvidence {
  /** 'upgrade' or 'connect' (a server's listener), or 'response' (a request's callback). */
  event: 'upgrade' | 'connect' | 'response';
  location: Location;
}

function isProgramCode(location: Location, skipNodeModules: boolean): boolean {
  if (location.file.startsWith('node:') || !/^(\/|[A-Za-z]:\\|file:)/.test(location.file)) return false;
  return !skipNodeModules || !/[\\/]node_modules[\\/]/.test(location.file);
}

/**
 * The program's function that held the socket last, by the cause: the
 * server's 'upgrade' or 'connect' listener for a socket the http server handed
 * over and nobody closed; the request's 'response' callback for a response
 * body nobody read. Read from the functions V8 knows (FunctionLocator), the
 * first one in the program's own code: none when there is none, or it cannot
 * be told (two listeners for an ambiguous cause). `located`: every listener
 * located, dependencies' included (they tell which library made the request).
 */
export function listenerEvidence(
  socket: Socket,
  cause: LeakCause | undefined,
  locator: FunctionLocator,
  skipNodeModules: boolean,
): { listener?: ListenerEvidence; located: Location[] } {
  let event: ListenerEvidence['event'];
  let listeners: unknown[] | undefined;
  if (cause?.code === 'upgrade-not-closed' || cause?.code === 'connect-not-closed') {
    event = cause.code === 'upgrade-not-closed' ? 'upgrade' : 'connect';
    listeners = serverOf(socket)?.listeners(event);
  } else if (cause?.code === 'unread-http-response') {
    event = 'response';
    listeners = httpRequestOf(socket)?.listeners?.('response');
  } else {
    return { located: [] };
  }
  if (!listeners || listeners.length === 0) return { located: [] };
  const located = locator.locate(listeners).filter((found): found is Location => found !== null);
  const location = located.find((found) => isProgramCode(found, skipNodeModules));
  return { ...(location ? { listener: { event, location } } : {}), located };
}
