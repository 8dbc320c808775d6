import { slotOf } from '../measured/kernel-reader';
import type { Measurement } from '../measured/scanner';
import type { SocketRecord } from '../remembered/socket-record';
import type { Finding } from './finding';

/** Strict checks: the check's sockets still open, whatever their state, and not already found leaked. */
export function stillOpen(m: Measurement, found: Set<SocketRecord>, ours: (record: SocketRecord) => boolean): Finding[] {
  const open: Finding[] = [];
  for (let i = 0; i < m.count; i++) {
    const record = m.records[i]!;
    const state = slotOf(m.rows, m.stride, i, 'state');
    if (state < 0 || found.has(record) || !ours(record)) continue;
    open.push({ socket: m.sockets[i]!, record, fd: m.fds[i]!, state, closeWaitMs: 0, lastDataSentMs: slotOf(m.rows, m.stride, i, 'lastDataSentMs'), leftOpen: true });
  }
  return open;
}
