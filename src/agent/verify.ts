import type { Leak } from '../common/types';
import { realNow, realTimers } from '../common/real-time';

/** One look at the moment: what is leaked now, and how many sockets are not settled yet. */
export interface MomentLook {
  leaks: Leak[];
  unsettled: number;
}

/**
 * A socket no agent tracks under procfs: the kernel tables cannot say when it last sent (-1), and
 * its silence is taken as given, as the scans take it.
 */
const silenceUnknown = (leak: Leak) => leak.origin === 'unknown' && leak.lastDataSentMs < 0;

const delay = (ms: number) => new Promise<void>((resolve) => realTimers.setTimeout(resolve, ms));
const nextTurn = () => new Promise<void>((resolve) => realTimers.setImmediate(resolve));

/**
 * verifyNoLeaks' wait, in the spirit of goleak's retries: looks again with
 * backoff (5 ms, 10, 20, ...) until nothing is leaked or unsettled, for up to
 * `timeoutMs`. Resolves with what is still leaked at the end (empty: clean).
 *
 * Still sending (a server streaming to a client that half-closed) is not a
 * leak. The kernel counts in jiffies, and a request sent just before the wait
 * began makes "silent for the whole wait" a coin toss, so what counts is
 * silence over the wait's second half.
 */
export async function waitForSettled(look: () => MomentLook, timeoutMs: number): Promise<Leak[]> {
  const started = realNow();
  let wait = 5;
  for (;;) {
    // Let Node read what the kernel already holds (a FIN) before looking.
    await nextTurn();
    const { leaks, unsettled } = look();
    if (leaks.length === 0 && unsettled === 0) return [];
    const elapsed = realNow() - started;
    if (elapsed >= timeoutMs) return leaks.filter((leak) => leak.kind === 'left-open' || leak.lastDataSentMs >= elapsed / 2 || silenceUnknown(leak));
    await delay(Math.min(wait, timeoutMs - elapsed));
    wait *= 2;
  }
}
