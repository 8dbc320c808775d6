import type { Measurement } from '../measured/scanner';
import type { Notice } from '../told/notices';

/**
 * The safety valve: destroys sockets reported leaked at least `afterMs` ago,
 * each told with its report. Off unless asked for: destroying a socket is the
 * program's business, and a valve is only a way to keep serving until the fix
 * ships.
 */
export function releaseLongLeaked(m: Measurement, now: number, afterMs: number): Notice[] {
  const notices: Notice[] = [];
  for (let i = 0; i < m.count; i++) {
    const reported = m.records[i]!.reportedLeak;
    if (!reported || now - reported.at < afterMs) continue;
    m.sockets[i]!.destroy();
    m.records[i]!.reportedLeak = undefined;
    notices.push({ type: 'destroyed', leakedMs: now - reported.at, afterMs, leak: reported.leak });
  }
  return notices;
}
