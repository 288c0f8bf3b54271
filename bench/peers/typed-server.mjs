// A server for bench/typed.mjs: `node bench/peers/typed-server.mjs --variant <v> --port P`, where
// <v> is wschan-typed | wschan-hand | wschan-ajv | ws-hand | ws-ajv (see typed-handlers.mjs).
// Prints "listening" once its port is open; runs until SIGTERM.
import { WebSocketServer } from 'ws';
import { Server } from '../../dist/src/index.js';
import { ajvHandler, handHandler, installTyped } from './typed-handlers.mjs';

const argv = process.argv.slice(2);
const arg = (n) => argv[argv.indexOf(n) + 1];
const variant = arg('--variant');
const port = Number(arg('--port'));
const [lib, kind] = variant.split('-');

if (lib === 'wschan') {
  const server = new Server({ maxQueuedFrames: 65536 });
  server.handleUpgrade(() => ({ data: { n: 0, bytes: 0, bad: 0 } }));
  if (kind === 'typed') installTyped(server);
  else {
    const h = kind === 'hand' ? handHandler() : ajvHandler();
    server.handleData((conn, data) => h(data, conn.data, (s) => void conn.write(s)));
  }
  await server.listen({ port, host: '127.0.0.1' });
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
} else if (lib === 'ws') {
  const h = kind === 'hand' ? handHandler() : ajvHandler();
  const wss = new WebSocketServer({ port, host: '127.0.0.1', perMessageDeflate: false });
  wss.on('connection', (ws) => {
    const state = { n: 0, bytes: 0, bad: 0 };
    const write = (s) => ws.send(s);
    ws.on('error', () => {});
    ws.on('message', (data) => h(data, state, write));
  });
  await new Promise((r) => wss.on('listening', r));
  process.on('SIGTERM', () => process.exit(0));
} else {
  console.error(`unknown variant ${variant}`);
  process.exit(2);
}
console.log('listening');
