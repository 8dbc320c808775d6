import { formatLeaks } from './format';
import type { Leak } from './types';

/**
 * Rejection of `verifyNoLeaks()`: the message is the text report, `leaks` the objects behind it.
 *
 * Recognised by its code, not its class: an adapter and an agent may come from two installed
 * copies of the package, each with its own class. `instanceof` works across copies too.
 */
export class SocketLeakError extends Error {
  readonly code = 'ERR_SOCKET_LEAK';
  constructor(readonly leaks: Leak[]) {
    // The report itself: it starts with the file:line:column to fix.
    super(formatLeaks(leaks, 'text').trimEnd());
    this.name = 'SocketLeakError';
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isSocketLeakError(value);
  }
}

/** True for a SocketLeakError from any copy of the package. */
export function isSocketLeakError(value: unknown): value is SocketLeakError {
  return value instanceof Error && (value as { code?: unknown }).code === 'ERR_SOCKET_LEAK' && Array.isArray((value as { leaks?: unknown }).leaks);
}
