import { formatLeaks } from './format';
import type { Leak } from './types';

/** Rejection of `verifyNoLeaks()`: the message is the text report, `leaks` the objects behind it. */
export class SocketLeakError extends Error {
  readonly code = 'ERR_SOCKET_LEAK';
  constructor(readonly leaks: Leak[]) {
    super(
      `${leaks.length} leaked TCP socket${leaks.length === 1 ? '' : 's'} (CLOSE_WAIT):\n\n` + formatLeaks(leaks, 'text'),
    );
    this.name = 'SocketLeakError';
  }
}
