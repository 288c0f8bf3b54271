/**
 * `npm run example:protocol`: the sans-I/O echo endpoint (endpoint.ts) behind a plain node:net
 * server with a hand-written opening handshake (RFC 6455 §4.2.2: Sec-WebSocket-Accept is the
 * base64 SHA-1 of the key and WEBSOCKET_GUID), talked to by wschan's own client.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { connect } from '../../src/index.js';
import { WEBSOCKET_GUID } from '../../src/protocol/index.js';
import { EchoEndpoint } from './endpoint.js';

const MAX_HEAD = 8192;

const server = createServer((socket) => {
  let head = Buffer.alloc(0);
  const onHead = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > MAX_HEAD) socket.destroy();
      return;
    }
    socket.off('data', onHead);
    // A real server checks the whole request (method, Upgrade, Connection, version): wschan's
    // Server does. This example only needs the key.
    const key = /^sec-websocket-key:[ \t]*(\S+)[ \t]*$/im.exec(head.subarray(0, end).toString('latin1'))?.[1];
    if (key === undefined) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const accept = createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    const endpoint = new EchoEndpoint({ send: (bytes) => socket.write(bytes), end: () => socket.end() });
    socket.on('data', (c: Buffer) => endpoint.receive(c));
    socket.on('close', () => console.log(`server: connection ended with ${endpoint.closeCode}`));
    // Frames that came with the handshake.
    if (head.length > end + 4) endpoint.receive(head.subarray(end + 4));
  };
  socket.on('data', onHead);
  socket.on('error', () => socket.destroy());
});

await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;

const conn = await connect(`ws://127.0.0.1:${port}/`, {
  handlePong: (_conn, payload) => console.log(`client: pong ${payload.toString()}`),
});
const echoes: string[] = [];
const done = (async () => {
  for await (const { data, isBinary } of conn) {
    echoes.push(isBinary ? `binary ${data.toString('hex')}` : `text ${data.toString()}`);
    console.log(`client: echo ${echoes.at(-1)}`);
    if (echoes.length === 2) return;
  }
})();
conn.ping('are you there?');
await conn.write('hello, sans-I/O');
await conn.write(Buffer.from([1, 2, 3]));
await done;
const closed = await conn.close(1000, 'bye');
console.log(`client: closed ${closed.code}${closed.wasClean ? ' cleanly' : ''}`);
server.close();
