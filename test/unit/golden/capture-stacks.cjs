'use strict';
// Writes the golden stacks the stack-parsing unit test reads: real creation stacks
// captured by the real agent on this Node version, with this folder's path and the
// agent's dist/ replaced by placeholders. Run after a build, once per Node version:
//   node --require ./dist/register.js test/unit/golden/capture-stacks.cjs > test/unit/golden/stacks-node$(node -p 'process.versions.node.split(".")[0]').json
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const { currentAgent } = require('tcp-leak-agent');
const fakeClient = require('fake-client');

const DIST = path.resolve(require.resolve('tcp-leak-agent'), '..');

function creationStack(socket) {
  // The registry is the agent's own; this tool reads it to get the raw, unformatted capture.
  const record = currentAgent().registry.recordOf(socket);
  return String(record.creation.stack).split(__dirname).join('/app').split(DIST).join('<DIST>');
}

async function main() {
  const server = http.createServer((req, res) => res.end('ok'));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const cases = [];
  const take = async (name, open) => {
    const socket = await open();
    cases.push({ name, stack: creationStack(socket) });
    socket.destroy();
  };
  function connectInNamedFunction() {
    return net.connect(port, '127.0.0.1');
  }
  await take('net.connect in a named function', () => connectInNamedFunction());
  await take('http.get in a callback', () => new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, agent: false });
    request.on('error', () => {}); // destroyed once captured
    request.on('socket', resolve);
  }));
  await take('a dependency opens it for the caller', () => fakeClient.open(port));
  await take('an ES module', async () => (await import('./esm-connect.mjs')).openFromEsm(port));
  server.close();
  console.log(JSON.stringify({ node: process.version, cases }, null, 2));
}
main();
