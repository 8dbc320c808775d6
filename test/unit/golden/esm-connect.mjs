// An ES module: its frames are file:// URLs.
import * as net from 'node:net';
export function openFromEsm(port) {
  return net.connect(port, '127.0.0.1');
}
