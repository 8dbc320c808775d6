import { formatLeaks } from './format';
import type { Leak } from './types';

/** Rejection of `verifyNoLeaks()`: the message is the text report, `leaks` the objects behind it. */
export class SocketLeakError extends Error {
  readonly code = 'ERR_SOCKET_LEAK';
  constructor(readonly leaks: Leak[]) {
    // The report itself: it starts with the file:line:column to fix.
    super(formatLeaks(leaks, 'text').trimEnd());
    this.name = 'SocketLeakError';
  }
}
