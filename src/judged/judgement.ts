import type { Endpoint } from '../common/types';
import type { SocketRecord } from '../remembered/socket-record';
import type { DeadPeerSettings } from './dead-peers';
import type { Finding } from './finding';

/**
 * A socket is in a leaked state when the peer is done with the connection and
 * this process is not: CLOSE_WAIT (the peer's FIN arrived, ours was never
 * sent), or CLOSE with the descriptor still open (the connection finished,
 * for example after end() on a socket nobody read, or a reset, and the socket
 * was never destroyed).
 *
 * When a socket counts as leaked:
 * - 'periodic': the scan has seen it in that state for at least closeWaitMs,
 *   the kernel says nothing was sent on it for closeWaitMs, and the program has
 *   taken none of what arrived before the FIN for the consuming window (see
 *   consumption.ts). A server still streaming after its client half-closed
 *   keeps sending, and a reader draining a body through a rate limiter keeps
 *   taking: neither is a leak.
 * - 'now': it is in that state with nothing queued to send, and no look has
 *   seen the program take data within the consuming window (findLeaks,
 *   verifyNoLeaks). Age is not required: the caller asked about this moment.
 * - 'exit': it is in that state as the process exits: it was never closed. When
 *   the event loop emptied, a connected socket Node is not reading, with bytes
 *   waiting, is a stalled reader too: no code is left to read them.
 * In every mode a socket whose FIN the kernel holds but Node has not read yet
 * is not a leak: Node would close it on its next turn.
 */
export type Judgement = 'periodic' | 'now' | 'exit';

/** The verdict on one measurement. */
export interface Verdict {
  leaked: Finding[];
  /**
   * Sockets not settled yet: in CLOSE_WAIT with an EOF Node has not read, or
   * with a program still taking in what arrived, or connected with data still
   * arriving. Not leaks now; verifyNoLeaks waits to see what they become.
   */
  unsettled: SocketRecord[];
}

/** The thresholds, and how to ask the kernel for a socket's unread bytes (SIOCINQ). */
export interface JudgeSettings extends DeadPeerSettings {
  closeWaitMs: number;
  stallMs: number;
  unreadBytes(fd: number): number;
  /**
   * A socket's addresses from the kernel (getsockname, getpeername on the descriptor), where the
   * backend reads one socket at a time; undefined elsewhere, and the detector then has Node read
   * them (see rememberPeer).
   */
  endpointsOf?(fd: number): { local: Endpoint | null; remote: Endpoint | null };
  /**
   * The process is exiting because its event loop emptied ('beforeExit' ran; process.exit()
   * skips it): nothing can read a paused socket's bytes any more, whatever the stall's age.
   */
  loopEmptied?: boolean;
}
