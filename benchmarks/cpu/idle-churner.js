'use strict';
// Opens <count> loopback connections to <port> and keeps them idle; prints "held", then opens
// and closes <perSecond> more connections a second (each closed once connected), until killed.
// Never measured: the load for a measured server (standing-cost-server.js).
const net = require('node:net');
const [count, port, perSecond] = process.argv.slice(2).map(Number);

function connect() {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', reject);
  });
}

async function main() {
  const held = [];
  for (let opened = 0; opened < count; opened += 200) {
    held.push(...(await Promise.all(Array.from({ length: Math.min(200, count - opened) }, connect))));
  }
  console.log(`held sockets=${held.length}`);
  if (perSecond > 0) {
    // A tenth of a second's worth at a time; the client closes first, so TIME_WAIT stays here.
    setInterval(() => {
      for (let i = 0; i < Math.max(1, Math.round(perSecond / 10)); i++) connect().then((socket) => socket.destroy(), () => {});
    }, 100);
  }
}
main();
