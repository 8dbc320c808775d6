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
 * first one in the program's own code. Undefined when there is none, or it
 * cannot be told (two listeners for an ambiguous cause).
 */
export function listenerEvidence(socket: Socket, cause: LeakCause | undefined, locator: FunctionLocator, skipNodeModules: boolean): ListenerEvidence | undefined {
  let event: ListenerEvidence['event'];
  let listeners: unknown[] | undefined;
  if (cause?.code === 'upgrade-not-closed' || cause?.code === 'connect-not-closed') {
    event = cause.code === 'upgrade-not-closed' ? 'upgrade' : 'connect';
    listeners = serverOf(socket)?.listeners(event);
  } else if (cause?.code === 'unread-http-response') {
    event = 'response';
    listeners = httpRequestOf(socket)?.listeners?.('response');
  } else {
    return undefined;
  }
  if (!listeners || listeners.length === 0) return undefined;
  const location = locator.locate(listeners).find((found): found is Location => found !== null && isProgramCode(found, skipNodeModules));
  return location ? { event, location } : undefined;
}
