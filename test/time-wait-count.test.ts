// How the TIME_WAIT check counts a client's closes, against a real kernel: each followed socket
// found in TIME_WAIT stands for the sockets it was sampled from, and the count is capped at what
// TIME_WAIT holds; and whether it follows client sockets at all.
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../src/measured/backend';
import { TimeWaitWatch } from '../src/measured/time-wait';

/** `count` connections to `port` that the client closes first; their local ports. */
async function clientCloses(port: number, count: number, host = '127.0.0.1'): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, host, () => {
        ports.push(socket.localPort!);
        socket.end();
      });
      socket.on('error', reject);
      socket.resume();
      socket.on('close', () => resolve());
    });
  }
  return ports;
}

/** `count` connections to `port` that the server closes first (the client answers its FIN). */
async function serverCloses(port: number, count: number, host = '127.0.0.1'): Promise<void> {
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, host);
      socket.on('error', reject);
      socket.resume();
      socket.on('close', () => resolve());
    });
  }
}

async function listening(onConnection: (socket: net.Socket) => void, host = '127.0.0.1'): Promise<net.Server> {
  const server = net.createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return server;
}

describe('TIME_WAIT counting', () => {
  it('follows client sockets only where TIME_WAIT toward their peers could be theirs: not where the peers close first', async () => {
    // The servers listen on a loopback address of this test's own. On 127.0.0.1, other tests'
    // servers that close first leave TIME_WAIT toward their clients' ephemeral ports, which a
    // port listen(0) picks here can be: a full namespace then holds ten or more toward it.
    const host = '127.0.0.77';
    const closesFirst = await listening((socket) => socket.end(), host);
    const closedFirst = await listening((socket) => {
      socket.resume();
      socket.on('end', () => socket.end());
    }, host);
    try {
      const peerClosing = (closesFirst.address() as net.AddressInfo).port;
      const clientClosing = (closedFirst.address() as net.AddressInfo).port;
      await serverCloses(peerClosing, 40, host);
      const { binding } = selectBackend();
      const now = Date.now();
      // A threshold of 40: the namespace holds at least half of it (these 40), so following is considered.
      const peersClose = new TimeWaitWatch(binding!, 40, 60_000, now);
      peersClose.check(now, () => [{ address: host, port: peerClosing }]);
      // The pile is on the server's side, toward the client's ephemeral ports: nothing to find by following.
      expect(peersClose.followClients).toBe(false);
      // A peer seen at an earlier check is remembered: no open client socket now does not make it unknown.
      peersClose.check(now + 5000, () => []);
      expect(peersClose.followClients).toBe(false);
      // No peer known (no open client socket read by a scan): followed, as it cannot be told.
      const unknown = new TimeWaitWatch(binding!, 40, 60_000, now);
      unknown.check(now);
      expect(unknown.followClients).toBe(true);
      // A client closing first piles TIME_WAIT toward its peer: followed.
      await clientCloses(clientClosing, 20, host);
      const clientsClose = new TimeWaitWatch(binding!, 40, 60_000, now);
      clientsClose.check(now, () => [{ address: host, port: clientClosing }]);
      expect(clientsClose.followClients).toBe(true);
    } finally {
      closesFirst.close();
      closedFirst.close();
    }
  });

  it('counts no more client closes to a remote end than TIME_WAIT holds to it, whatever each followed socket stood for', async () => {
    // The client closes first; the server answers its FIN.
    const server = net.createServer((socket) => {
      socket.resume();
      socket.on('end', () => socket.end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const localPorts = await clientCloses(port, 20);
      const { binding } = selectBackend();
      const now = Date.now();
      const watch = new TimeWaitWatch(binding!, 10, 60_000, now);
      // Each followed as one in 8: as when a client cycles through its ports faster than TIME_WAIT
      // ends and the kernel reuses 4-tuples in TIME_WAIT (tcp_tw_reuse), so that every 4-tuple
      // followed is found there again, for a later close. 20 x 8 would be 160.
      for (const localPort of localPorts) watch.clientFollowed('127.0.0.1', port, { localPort, http: false, at: now, oneIn: 8 });
      const rows = binding!.listTimeWait(new Int32Array(0), Int32Array.of(port)).localPorts.length;
      expect(rows).toBeGreaterThanOrEqual(20);
      const warning = watch.check(now);
      expect(warning).toBeDefined();
      expect(warning!.count).toBeLessThanOrEqual(rows);
      expect(warning!.count).toBeGreaterThanOrEqual(20);
      expect(warning!.sources).toEqual([expect.objectContaining({ side: 'client', endpoint: `127.0.0.1:${port}`, count: warning!.count, sampledOneIn: 8 })]);
    } finally {
      server.close();
    }
  });
});
