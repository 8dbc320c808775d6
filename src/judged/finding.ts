import type { Socket } from 'node:net';
import type { Endpoint } from '../common/types';
import type { SocketRecord } from '../remembered/socket-record';

/** A socket the detector found leaked, with the kernel figures behind the verdict. */
export interface Finding {
  /** The JavaScript socket; absent for a socket no agent tracks (found among the process's descriptors). */
  socket?: Socket;
  /** The addresses, read from the kernel, of a socket with no JavaScript side. */
  endpoints?: { local: Endpoint | null; remote: Endpoint | null };
  record: SocketRecord;
  /** A socket no agent tracks: its "fd:inode" (ignoreCurrent() names such sockets this way). */
  untrackedKey?: string;
  fd: number;
  /** The kernel state: TCP_CLOSE_WAIT, TCP_CLOSE, or TCP_ESTABLISHED for a stalled reader. */
  state: number;
  /** Unread bytes in the kernel (stalled readers). */
  unreadBytes?: number;
  closeWaitMs: number;
  lastDataSentMs: number;
  /** Strict checks: the socket is merely still open (any state) when its test ended. */
  leftOpen?: boolean;
  /** A dead peer: retransmissions gone unanswered, or silence both ways with keepalive off. */
  deadPeer?: { unanswered?: number; idleMs?: number };
}
