// The procfs backend and the addon, asked about the same real sockets, must agree.
import * as net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNative, SAMPLE, type KernelReader } from '../src/measured/native';
import { selectBackend } from '../src/measured/backend';
import { createProcfsBackend } from '../src/measured/procfs-backend';
import { TCP_CLOSE, TCP_CLOSE_WAIT, TCP_ESTABLISHED } from '../src/common/tcp-states';
import { waitFor } from './loopback';

const native = loadNative().binding as KernelReader;
const procfs = createProcfsBackend();
const cleanups: Array<() => void> = [];
afterAll(() => {
  while (cleanups.length) cleanups.pop()!();
});

const fdOf = (handle: net.Socket | net.Server) => (handle as unknown as { _handle: { fd: number } })._handle.fd;

function states(binding: KernelReader, fds: number[]): number[] {
  const out = new Int32Array(fds.length * binding.SAMPLE_STRIDE);
  binding.scanSockets(Int32Array.from(fds), fds.length, out);
  return fds.map((_, i) => out[i * binding.SAMPLE_STRIDE + SAMPLE.state]!);
}

async function listen(host: string, onConnection: (socket: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true }, onConnection);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  cleanups.push(() => server.close());
  return server;
}

/** A client; paused ones never read, so what arrives stays in the kernel. */
async function connect(server: net.Server, host: string, paused = false): Promise<net.Socket> {
  const socket = net.connect({ port: (server.address() as net.AddressInfo).port, host, allowHalfOpen: true });
  if (paused) socket.pause();
  socket.on('error', () => {});
  cleanups.push(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  return socket;
}

describe('the procfs backend agrees with the addon', () => {
  it('on state, addresses and unread bytes of listening, connected, CLOSE_WAIT and closed sockets (IPv4 and IPv6)', async () => {
    const accepted: net.Socket[] = [];
    const keep = (socket: net.Socket) => {
      socket.on('error', () => {});
      accepted.push(socket);
      cleanups.push(() => socket.destroy());
    };
    const v4 = await listen('127.0.0.1', keep);
    const v6 = await listen('::1', keep);
    const banner = await listen('127.0.0.1', (socket) => {
      socket.on('error', () => {});
      socket.end('HELLO\r\n'); // data, then FIN: the client sits in CLOSE_WAIT with 7 unread bytes
    });
    const idle4 = await connect(v4, '127.0.0.1');
    const idle6 = await connect(v6, '::1');
    const closeWait = await connect(banner, '127.0.0.1', true);
    // A client whose connection is over (reset by the peer) but whose descriptor is still open: CLOSE.
    const reset = await connect(v4, '127.0.0.1', true);
    await waitFor('the accepted sockets', () => accepted.length === 3);
    const resetPeer = accepted.find((socket) => socket.remotePort === reset.localPort)!;
    resetPeer.resetAndDestroy();

    const fds = [fdOf(v4), fdOf(v6), fdOf(idle4), fdOf(idle6), fdOf(closeWait), fdOf(reset)];
    await waitFor('CLOSE_WAIT and CLOSE', () => {
      const now = states(native, fds);
      return now[4] === TCP_CLOSE_WAIT && now[5] === TCP_CLOSE;
    });
    const expected = states(native, fds);
    expect(expected.slice(2)).toEqual([TCP_ESTABLISHED, TCP_ESTABLISHED, TCP_CLOSE_WAIT, TCP_CLOSE]);
    expect(states(procfs, fds)).toEqual(expected);

    for (const fd of fds.slice(0, 5)) expect(procfs.readEndpoints(fd), `fd ${fd}`).toEqual(native.readEndpoints(fd));
    // A connection that is over is in no table of /proc/net: procfs cannot name its addresses
    // (reports of tracked sockets take them from Node, which read them while connected).
    expect(procfs.readEndpoints(fdOf(reset))).toEqual({ local: null, remote: null });
    expect(procfs.inspectSocket(fdOf(closeWait)).unreadBytes).toBe(native.inspectSocket(fdOf(closeWait)).unreadBytes);
    expect(native.inspectSocket(fdOf(closeWait)).unreadBytes).toBe(7);

    const listed = (binding: KernelReader) => {
      const { fds: all, inodes } = binding.listTcpDescriptors();
      return Array.from(all, (fd, i) => `${fd}:${inodes[i]}`).sort();
    };
    // Except the socket whose connection is over: procfs lists only sockets the TCP tables show,
    // since a socket in no table may as well be one inherited from another network namespace.
    const closedFd = `${fdOf(reset)}:`;
    expect(listed(procfs)).toEqual(listed(native).filter((entry) => !entry.startsWith(closedFd)));
    expect(listed(native).some((entry) => entry.startsWith(closedFd))).toBe(true);
  });

  it('on TIME_WAIT connections of both address families: counted per server port, listed by remote port with their addresses', async () => {
    /**
     * `count` connections to a new server on `host`, each closed first by the server or by the
     * client: the server's port, and the TIME_WAIT rows they leave ("local address remote", as
     * listed from the side that closed first).
     */
    const closed = async (host: string, first: 'server' | 'client', count: number): Promise<{ port: number; rows: string[] }> => {
      const server = await listen(host, (socket) => {
        socket.on('error', () => {});
        if (first === 'server') socket.end();
        else socket.on('end', () => socket.end()).resume();
      });
      const port = (server.address() as net.AddressInfo).port;
      const rows: string[] = [];
      for (let i = 0; i < count; i++) {
        const client = await connect(server, host);
        rows.push(first === 'server' ? `${port} ${host} ${client.localPort}` : `${client.localPort} ${host} ${port}`);
        if (first === 'client') client.end();
        else client.on('end', () => client.end());
        client.resume();
        await new Promise((resolve) => client.once('close', resolve));
      }
      return { port, rows };
    };
    const servers = [await closed('127.0.0.1', 'server', 3), await closed('::1', 'server', 2)];
    const peers = [await closed('127.0.0.1', 'client', 3), await closed('::1', 'client', 2)];
    const ours = new Set([...servers, ...peers].flatMap((each) => each.rows));
    // Rows by remote port: the server-closed connections' client ports, and the client-closed
    // connections' server ports. The namespace may hold other TIME_WAIT on these port numbers (the
    // suite's own, coming and going as this runs): only the rows of these connections are compared.
    const remotePorts = Int32Array.from(new Set([...ours].map((row) => Number(row.split(' ')[2])))).sort();
    const rowsOf = (binding: KernelReader) => {
      const answer = binding.listTimeWait(new Int32Array(0), remotePorts);
      return Array.from(answer.remotePorts, (port, i) => `${answer.localPorts[i]} ${answer.remoteAddresses[i]} ${port}`)
        .filter((row) => ours.has(row))
        .sort();
    };
    expect(rowsOf(native)).toEqual([...ours].sort());
    expect(rowsOf(procfs)).toEqual([...ours].sort());
    // Counted per server port, not listed: at least these (a client elsewhere may have used the same port number).
    for (const binding of [native, procfs]) {
      const serverPorts = Int32Array.from(servers.map((each) => each.port)).sort();
      const counts = binding.listTimeWait(serverPorts, new Int32Array(0)).serverCounts;
      const counted = servers.map((each) => counts[serverPorts.indexOf(each.port)]);
      expect(counted[0]).toBeGreaterThanOrEqual(3);
      expect(counted[1]).toBeGreaterThanOrEqual(2);
    }
  });

  it('calls a closed descriptor and a pipe what the addon calls them', () => {
    // Descriptor 2 is a pipe or a file under the test runner, never a TCP socket; 100000 is never open.
    const [nativeStates, procfsStates] = [states(native, [2, 100000]), states(procfs, [2, 100000])];
    expect(nativeStates.every((state) => state < 0)).toBe(true);
    expect(procfsStates.every((state) => state < 0)).toBe(true);
    expect(procfsStates[1]).toBe(nativeStates[1]);
  });
});

describe('choosing the backend', () => {
  it('takes TCP_LEAK_AGENT_BACKEND, and names the setting, the value and what is accepted when it is wrong', () => {
    expect(selectBackend('procfs', 'linux').name).toBe('procfs');
    expect(selectBackend('native', 'linux').name).toBe('native');
    expect(() => selectBackend('kernel', 'linux')).toThrow('TCP_LEAK_AGENT_BACKEND="kernel" is not accepted: expected "native" or "procfs"');
    expect(() => selectBackend('procfs', 'darwin')).toThrow("TCP_LEAK_AGENT_BACKEND=\"procfs\" is not accepted: procfs needs Linux's /proc; this is darwin");
  });
});
