'use strict';
// A fixed number of connect + close pairs (client and server in one process),
// for instruction counting: the same work every run, whatever the clock says.
const net = require('node:net');

const total = Number(process.argv[2] || 3000);
const server = net.createServer((socket) => socket.on('end', () => socket.end()).resume());
server.listen(0, '127.0.0.1', async () => {
  const port = server.address().port;
  let left = total;
  const loop = async () => {
    while (left-- > 0) {
      await new Promise((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.end());
        socket.resume();
        socket.on('close', resolve);
      });
    }
  };
  await Promise.all(Array.from({ length: 16 }, loop));
  server.close();
});
