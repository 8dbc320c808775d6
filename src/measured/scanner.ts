import { constants } from 'node:os';
import type { Socket } from 'node:net';
import { slotOf, type KernelReader } from './kernel-reader';
import type { Selection, SocketRecord, SocketRegistry } from '../remembered/registry';

/** Kernel answers for one scan: row i of `rows` belongs to `sockets[i]`. */
export interface Measurement {
  count: number;
  sockets: Socket[];
  /** The registry's record of each socket. */
  records: SocketRecord[];
  /** The descriptor each socket had when measured. */
  fds: Int32Array;
  /** SAMPLE_STRIDE int32s per socket, laid out as `SAMPLE`. A negative state is -errno. */
  rows: Int32Array;
  stride: number;
}

const { errno } = constants;

// errno values meaning "this descriptor is not a TCP socket": a pipe, or a descriptor number
// reused for something else. By name: the numbers differ between Linux and the BSDs.
const NOT_TCP = new Set([errno.ENOTSOCK, errno.EOPNOTSUPP, errno.ENOPROTOOPT]);

/**
 * Measures every tracked socket in one native call. Descriptors go in and
 * states come out through reused typed arrays, so a scan allocates nothing per
 * socket; the socket list is cleared after each use so the scanner never
 * keeps a socket alive between scans.
 */
export class Scanner {
  private fds = new Int32Array(256);
  private rows: Int32Array;
  private readonly sockets: Socket[] = [];
  private readonly records: SocketRecord[] = [];
  private readonly stride: number;

  constructor(
    private readonly registry: SocketRegistry,
    private readonly binding: KernelReader,
  ) {
    this.stride = binding.SAMPLE_STRIDE;
    this.rows = new Int32Array(this.fds.length * this.stride);
  }

  /**
   * Measures the open tracked sockets `select` picks (all without it) and hands the result to
   * `judge`, then lets go of the sockets. With none picked the kernel is not asked.
   */
  measure<T>(judge: (measurement: Measurement) => T, select?: Selection): T {
    const sockets = this.sockets;
    const records = this.records;
    let count = 0;
    this.registry.forEachOpen((socket, fd, record) => {
      if (count === this.fds.length) this.grow();
      this.fds[count++] = fd;
      sockets.push(socket);
      records.push(record);
    }, select);
    try {
      if (count > 0) this.binding.scanSockets(this.fds, count, this.rows);
      for (let i = 0; i < count; i++) {
        const state = slotOf(this.rows, this.stride, i, 'state');
        if (state < 0 && NOT_TCP.has(-state)) this.registry.forget(sockets[i]!);
      }
      return judge({ count, sockets, records, fds: this.fds, rows: this.rows, stride: this.stride });
    } finally {
      sockets.length = 0;
      records.length = 0;
    }
  }

  private grow(): void {
    const fds = new Int32Array(this.fds.length * 2);
    fds.set(this.fds);
    this.fds = fds;
    this.rows = new Int32Array(fds.length * this.stride);
  }
}
