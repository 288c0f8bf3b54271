// Peer for bench/deflate-modes.mjs: an echo server with one permessage-deflate configuration.
//   node bench/peers/deflate-modes-server.mjs --lib wschan|ws --port P --config '<json>'
// wschan: <json> is the `deflate` option (false: compression off). ws: <json> is its
// `perMessageDeflate` option (true: ws's defaults). Every message is echoed with its type.
// SIGUSR2 runs a full garbage collection (with --expose-gc).

import { WebSocketServer } from 'ws';
import { Server } from '../../dist/src/index.js';

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
};
const lib = arg('lib') ?? 'wschan';
const port = Number(arg('port'));
const config = JSON.parse(arg('config') ?? 'true');
const host = '127.0.0.1';
// The harness sends SIGUSR2 before reading RSS: a full GC first, so garbage is not counted as memory
// held by connections (started with --expose-gc).
process.on('SIGUSR2', () => globalThis.gc?.());

if (lib === 'ws') {
  const wss = new WebSocketServer({ host, port, perMessageDeflate: config });
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  wss.on('listening', () => process.stdout.write(`ws listening on ${host}:${port}\n`));
} else {
  const server = new Server({ deflate: config });
  server.handleData((conn, data, isBinary) => conn.write(data, isBinary));
  await server.listen({ port, host });
  process.stdout.write(`wschan listening on ${host}:${port}\n`);
}
