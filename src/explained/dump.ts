import type { SocketSite } from './socket-sites';
import type { Leak, SocketSnapshot } from '../common/types';

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
