import { TCP_CLOSE_WAIT, tcpStateName } from '../common/tcp-states';
import type { Endpoint, Leak, SocketSnapshot } from '../common/types';
import { slotOf } from '../measured/kernel-reader';
import type { Measurement } from '../measured/scanner';
import type { SocketRecord } from '../remembered/socket-record';
import { describeSockets } from './snapshot';
import type { SocketSite } from './socket-sites';

/** One socket in a dump: its snapshot, and whether (and how) it is leaked right now. */
export interface DumpedSocket extends SocketSnapshot {
  /** 'open' for a socket in no leaked state; otherwise the kind of leak it is in now. */
  kind: Leak['kind'] | 'open';
}

/** Every TCP socket of the process with kernel state, kind and origin: dump() and the dump signal. */
export interface SocketDump {
  type: 'dump';
  pid: number;
  at: string;
  backend: string;
  descriptors: { open: number; limit: number };
  /** Sockets by where they were opened and their states, most first. */
  sites: SocketSite[];
  sockets: DumpedSocket[];
}

/** The dump's rows for tracked sockets: each snapshot with the kind of leak it is in now ('open' if none). */
export function trackedDumpRows(m: Measurement, leakedNow: Map<SocketRecord, Leak['kind']>, skipNodeModules: boolean): DumpedSocket[] {
  const snapshots = describeSockets(m, skipNodeModules);
  const dumped: DumpedSocket[] = [];
  let row = 0;
  for (let i = 0; i < m.count; i++) {
    if (slotOf(m.rows, m.stride, i, 'state') < 0) continue;
    dumped.push({ ...snapshots[row++]!, kind: leakedNow.get(m.records[i]!) ?? 'open' });
  }
  return dumped;
}

/** The dump's rows for sockets no agent tracks (origin 'unknown'): kernel state and addresses only. */
export function untrackedDumpRows(
  fds: readonly number[],
  rows: Int32Array,
  stride: number,
  endpoints: (fd: number) => { local: Endpoint | null; remote: Endpoint | null },
): DumpedSocket[] {
  const dumped: DumpedSocket[] = [];
  for (let i = 0; i < fds.length; i++) {
    const state = slotOf(rows, stride, i, 'state');
    if (state < 0) continue;
    dumped.push({
      fd: fds[i]!,
      state: tcpStateName(state),
      origin: 'unknown',
      ...endpoints(fds[i]!),
      createdAt: '',
      location: null,
      lastDataSentMs: slotOf(rows, stride, i, 'lastDataSentMs'),
      lastDataRecvMs: slotOf(rows, stride, i, 'lastDataRecvMs'),
      kind: state === TCP_CLOSE_WAIT ? 'close-wait' : 'open',
    });
  }
  return dumped;
}
