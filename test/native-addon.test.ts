import { execFileSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNative, SAMPLE, type KernelReader } from '../src/measured/native';
import { TCP_CLOSE_WAIT, TCP_ESTABLISHED } from '../src/common/tcp-states';

const loaded = loadNative();
const native = loaded.binding as KernelReader;
const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function fdOf(socket: net.Socket | net.Server): number {
  return (socket as unknown as { _handle: { fd: number } })._handle.fd;
}

async function connectedPair(): Promise<{ client: net.Socket; accepted: net.Socket; server: net.Server }> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const acceptedP = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise((resolve) => client.once('connect', resolve));
  const accepted = await acceptedP;
  cleanups.push(() => {
    client.destroy();
    accepted.destroy();
    server.close();
  });
  return { client, accepted, server };
}

function scan(fds: number[]): Int32Array {
  const out = new Int32Array(fds.length * native.SAMPLE_STRIDE);
  native.scanSockets(Int32Array.from(fds), fds.length, out);
  return out;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('the native addon', () => {
  it('loads', () => {
    expect(loaded.error).toBeUndefined();
  });

  it('reads ESTABLISHED, LISTEN and CLOSE_WAIT from the kernel in one batch', async () => {
    const { client, accepted, server } = await connectedPair();
    accepted.end(); // FIN to the client; the client, never reading, stays in CLOSE_WAIT
    const fds = [fdOf(client), fdOf(server), fdOf(accepted)];
    // The client's ACK of the FIN moves the server side to FIN_WAIT2 a moment after the client's CLOSE_WAIT.
    const settled = () => {
      const rows = scan(fds);
      return rows[SAMPLE.state] === TCP_CLOSE_WAIT && rows[2 * native.SAMPLE_STRIDE + SAMPLE.state] === 5;
    };
    await until(settled, 'CLOSE_WAIT and FIN_WAIT2');
    const rows = scan(fds);
    const stride = native.SAMPLE_STRIDE;
    expect(rows[0 * stride + SAMPLE.state]).toBe(TCP_CLOSE_WAIT);
    expect(rows[1 * stride + SAMPLE.state]).toBe(10); // LISTEN
    expect(rows[2 * stride + SAMPLE.state]).toBe(5); // FIN_WAIT2: the server side closed first
    expect(rows[0 * stride + SAMPLE.notsentBytes]).toBe(0);
  });

  it('answers a closed or non-socket descriptor with -errno in the batch, not an exception', () => {
    const neverOpen = 999_999; // above any descriptor limit here, so never a live descriptor
    const devNull = openSync('/dev/null', 'r');
    cleanups.push(() => closeSync(devNull));
    const rows = scan([neverOpen, devNull]);
    expect(rows[0]).toBe(-9); // EBADF
    expect(rows[native.SAMPLE_STRIDE]).toBe(-88); // ENOTSOCK
  });

  it('reports kernel detail for one socket, with queued bytes', async () => {
    const { client, accepted } = await connectedPair();
    accepted.write(Buffer.alloc(1000, 'x')); // the paused client never reads it
    await until(() => native.inspectSocket(fdOf(client)).unreadBytes === 1000, 'unread bytes');
    const detail = native.inspectSocket(fdOf(client));
    expect(detail.state).toBe(TCP_ESTABLISHED);
    expect(detail.unreadBytes).toBe(1000);
    expect(detail.unsentBytes).toBe(0);
    expect(detail.infoLength).toBeGreaterThan(100);
    expect(detail.rttUs).toBeGreaterThan(0);
    expect(detail.bytesReceived).toBe(1000);
    for (const key of ['retransmits', 'backoff', 'rtoUs', 'rttvarUs', 'unacked', 'lastDataSentMs', 'lastDataRecvMs', 'lastAckRecvMs', 'bytesAcked'] as const) {
      expect(typeof detail[key], key).toBe('number');
    }
  });

  it('throws errors shaped like Node SystemError: code, errno, syscall, fd', () => {
    const file = 999_999;
    let caught: NodeJS.ErrnoException & { fd?: number } = new Error('none');
    try {
      native.inspectSocket(file);
    } catch (error) {
      caught = error as typeof caught;
    }
    expect(caught).toMatchObject({ code: 'EBADF', errno: -9, syscall: 'getsockopt', fd: file });
    expect(caught.message).toMatch(/^getsockopt EBADF/);
  });

  it('reads RLIMIT_NOFILE, matching the shell', () => {
    const soft = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    const limit = native.getDescriptorLimit();
    expect(String(limit.soft === Infinity ? 'unlimited' : limit.soft)).toBe(soft);
    expect(limit.hard).toBeGreaterThanOrEqual(limit.soft);
  });
});

describe('the scan row layout', () => {
  it("is the addon's: the JavaScript copy matches what it exports", () => {
    const loaded = loadNative();
    expect(loaded.error).toBeUndefined();
    expect(loaded.binding!.SAMPLE).toEqual(SAMPLE);
    expect(loaded.binding!.SAMPLE_STRIDE).toBe(Object.keys(SAMPLE).length);
  });
});
