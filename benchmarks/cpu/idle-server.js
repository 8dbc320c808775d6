'use strict';
// Accepts connections and keeps them open, idle, until killed. Never measured.
const net = require('node:net');
const sockets = new Set();
const server = net.createServer((socket) => {
  sockets.add(socket);
  socket.on('error', () => {});
  socket.on('close', () => sockets.delete(socket));
});
server.listen(0, '127.0.0.1', () => console.log(`ready port=${server.address().port}`));
