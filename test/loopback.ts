// Real loopback connections for the in-process API tests.
import * as net from 'node:net';
import { snapshot } from '../src/index';

const servers: net.Server[] = [];
const sockets: net.Socket[] = [];

/** A server that sends a banner and closes (FIN) each connection at once. Returns its port. */
export async function bannerServer(): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {}); // the tests destroy unread clients, which resets these
    socket.end('HELLO\r\n');
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

/** A server that keeps each connection open and quiet. Returns its port. */
export async function quietServer(): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    sockets.push(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

/** A connected client that never reads, and its descriptor. */
export async function silentClient(port: number): Promise<{ socket: net.Socket; fd: number }> {
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  await new Promise((resolve) => socket.once('connect', resolve));
  return { socket, fd: (socket as unknown as { _handle: { fd: number } })._handle.fd };
}

/** Polls `condition` every 5 ms until it holds, or fails after 10 s. */
export async function waitFor(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A client that never reads the banner; resolves once the kernel has it in CLOSE_WAIT. */
export async function leakOne(): Promise<net.Socket> {
  const { socket, fd } = await silentClient(await bannerServer());
  await waitFor('the client to reach CLOSE_WAIT', () => snapshot().some((s) => s.fd === fd && s.state === 'CLOSE_WAIT'));
  return socket;
}

/** Destroys every socket and closes every server these helpers made. */
export function closeAll(): void {
  for (const socket of sockets) socket.destroy();
  for (const server of servers) server.close();
}
