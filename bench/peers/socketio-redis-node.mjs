// The socket.io side of the Redis fan-out benchmark (bench/redis-fanout.mjs): one node of a
// socket.io 4.8 fleet joined by @socket.io/redis-adapter 8.3 over node-redis, the setup its docs
// show. Every connection joins the room `feed` (or `?room=`); IPC commands as stress-tests/redis-node.ts
// (`publish` with `binary` and `size`: a 4-byte index and an 8-byte hrtime send time, then `*`).
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
// node-redis 4 (as the package `redis-v4`): the version socket.io's adapter docs pair it with; under
// node-redis 6 its commands timed out while the node was saturated and the process crashed.
import { createClient } from 'redis-v4';

const url = process.argv[process.argv.indexOf('--redis') + 1];
const pub = createClient({ url });
const sub = pub.duplicate();
pub.on('error', () => {});
sub.on('error', () => {});
await Promise.all([pub.connect(), sub.connect()]);

const http = createServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false, adapter: createAdapter(pub, sub) });
io.on('connection', (socket) => socket.join(typeof socket.handshake.query.room === 'string' ? socket.handshake.query.room : 'feed'));
await new Promise((r) => http.listen(0, '127.0.0.1', r));
const send = (m) => process.send?.(m);

process.on('message', async (m) => {
  if (m.cmd === 'publish') {
    const count = m.count ?? 1;
    for (let i = 0; i < count; i++) {
      const b = Buffer.alloc(m.size, 0x2a);
      b.writeUInt32BE(i, 0);
      b.writeBigUInt64BE(process.hrtime.bigint(), 4);
      io.to(m.topic ?? 'feed').emit('m', b);
    }
    send({ id: m.id, ok: true, value: count });
  } else if (m.cmd === 'stats') {
    send({ id: m.id, ok: true, value: { clients: io.engine.clientsCount } });
  } else if (m.cmd === 'close') {
    io.disconnectSockets(true);
    await new Promise((r) => io.close(r));
    await Promise.all([pub.quit(), sub.quit()]).catch(() => {});
    send({ id: m.id, ok: true, value: null });
    process.disconnect();
  }
});
send({ event: 'listening', port: http.address().port });
