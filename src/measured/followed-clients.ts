import type { Socket } from 'node:net';
import type { KernelReader } from './kernel-reader';
import { descriptorOf } from '../remembered/registry';
import { realNow, realTimers } from '../common/real-time';
import type { StackCapture } from '../common/stack';
import type { TimeWaitWatch } from './time-wait';

/** Followed sockets waiting for their 4-tuple, at most; beyond it the oldest are given up. */
const PENDING_AT_MOST = 64;
/** How often a socket still connecting (a DNS lookup, a SYN in flight) is asked again. */
const RETRY_MS = 10;
/** A socket not connected after this long is given up. */
const GIVE_UP_MS = 10_000;

/** A client socket chosen for following, until its 4-tuple is read. */
interface Pending {
  socket: Socket;
  since: number;
  oneIn: number;
  creation: StackCapture | undefined;
  /** Whether it carries HTTP requests (asked when the tuple is read: http gives it its request a tick after creation). */
  usedForHttp: (socket: Socket) => boolean;
}

/**
 * Learns the 4-tuples of the client sockets the TIME_WAIT check follows, without touching them.
 *
 * A followed socket is noted as it is created (it has no port yet) and its 4-tuple is read
 * through the kernel (getsockname and getpeername on its descriptor) once it has connected: at
 * the end of that turn of the event loop (Node issues connect() in a later tick of the same turn,
 * and on a near peer the handshake is done by then), else every RETRY_MS. Nothing is added to the
 * socket: no listener, no record, and none of the addresses Node caches on a socket when
 * JavaScript reads them, so a followed socket keeps the shape of the rest.
 *
 * Whether the socket later closes first needs no watching: only the side that closed first holds
 * the 4-tuple in TIME_WAIT, so the count looks the remembered 4-tuples up there.
 */
export class FollowedClients {
  private pending: Pending[] = [];
  /** Client sockets whose 4-tuple was read, since start. */
  followed = 0;
  // One read scheduled at a time, never keeping the process alive.
  private scheduled: { immediate: NodeJS.Immediate } | { timeout: NodeJS.Timeout } | undefined;
  private readonly readNow = () => {
    this.scheduled = undefined;
    try {
      this.readConnected();
    } catch (error) {
      // Never into the program (a read that fails because the socket is gone is not an error: see tupleOf).
      this.onInternalError(error);
      this.pending.length = 0;
    }
    if (this.pending.length > 0) this.schedule(RETRY_MS);
  };

  constructor(
    private readonly watch: TimeWaitWatch,
    private readonly reader: Pick<KernelReader, 'readEndpoints' | 'readsWholeTables'>,
    private readonly place: (stack: StackCapture | undefined) => string | null,
    private readonly onInternalError: (error: unknown) => void,
  ) {}

  /** Notes a socket to follow, as one in `oneIn` of those created. */
  add(socket: Socket, oneIn: number, creation: StackCapture | undefined, usedForHttp: (socket: Socket) => boolean): void {
    if (this.pending.length >= PENDING_AT_MOST) this.pending.shift();
    this.pending.push({ socket, since: realNow(), oneIn, creation, usedForHttp });
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.scheduled) return;
    this.scheduled = ms === 0 ? { immediate: realTimers.setImmediate(this.readNow).unref() } : { timeout: realTimers.setTimeout(this.readNow, ms).unref() };
  }

  /** Lets go of the sockets waiting to be read, and of the read scheduled (the agent stopped). */
  stop(): void {
    this.pending.length = 0;
    const scheduled = this.scheduled;
    if (scheduled && 'immediate' in scheduled) realTimers.clearImmediate(scheduled.immediate);
    else if (scheduled) realTimers.clearTimeout(scheduled.timeout);
    this.scheduled = undefined;
  }

  /** Reads the 4-tuples of the noted sockets that have connected; those still connecting wait; closed ones are given up. */
  readConnected(): void {
    if (this.pending.length === 0) return;
    const now = realNow();
    let kept = 0;
    for (const entry of this.pending) {
      if (!this.read(entry) && now - entry.since < GIVE_UP_MS) this.pending[kept++] = entry;
    }
    this.pending.length = kept;
  }

  /** Reads one socket's 4-tuple; false while it is still connecting. */
  private read({ socket, oneIn, creation, usedForHttp }: Pending): boolean {
    const fd = descriptorOf(socket);
    if (fd === -1) return false; // no descriptor yet (a DNS lookup)
    if (fd < 0) return true; // closed before it was read: this one goes uncounted
    const tuple = this.tupleOf(socket, fd);
    if (tuple === 'connecting') return false;
    if (!tuple) return true;
    const { localPort, remoteAddress, remotePort } = tuple;
    if (creation && this.watch.needsPlace(remoteAddress, remotePort)) this.watch.learnPlace(remoteAddress, remotePort, this.place(creation));
    this.watch.clientFollowed(remoteAddress, remotePort, { localPort, http: usedForHttp(socket), at: realNow(), oneIn });
    this.followed++;
    return true;
  }

  /**
   * The socket's ports and peer, from the kernel. Where asking the kernel means reading whole
   * tables (the procfs backend), from Node instead, which caches them on the socket.
   */
  private tupleOf(socket: Socket, fd: number): { localPort: number; remoteAddress: string; remotePort: number } | 'connecting' | undefined {
    if (this.reader.readsWholeTables) {
      if (socket.connecting) return 'connecting';
      const { localPort, remoteAddress, remotePort } = socket;
      return localPort && remoteAddress && remotePort ? { localPort, remoteAddress, remotePort } : undefined;
    }
    try {
      const { local, remote } = this.reader.readEndpoints(fd);
      // No peer yet: the handshake is under way (SYN_SENT).
      if (!remote || remote.port === 0) return socket.connecting ? 'connecting' : undefined;
      return local ? { localPort: local.port, remoteAddress: remote.address, remotePort: remote.port } : undefined;
    } catch {
      return undefined; // closed in the meantime
    }
  }
}
