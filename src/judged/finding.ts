import type { Socket } from 'node:net';
import type { SocketRecord } from '../remembered/socket-record';

/** A socket the detector found leaked, with the kernel figures behind the verdict. */
export interface Finding {
  socket: Socket;
  record: SocketRecord;
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
