/**
 * `npm run example:reconnect`: a reconnecting client rides out a server restart.
 *
 * A server publishes a tick on the topic 'ticks' every 100 ms to whoever subscribed. The client
 * subscribes in `handleOpen` (so it subscribes again on every new connection), and keeps writing
 * one message a second. Halfway through, the server is killed and started again on the same
 * port: the client waits (backoff with jitter), reconnects, resubscribes, and the messages it
 * wrote while disconnected are held (bounded, overflow 'drop-oldest') and sent once it is back.
 */
import { reconnect, Server } from '../../src/index.js';

let port = Number(process.env['PORT'] ?? 8082); // 0: any free port (kept for the restart)
const downFor = Number(process.env['DOWN_MS'] ?? 1_000);

let seq = 0;
/** The server, and a stop() that ends its ticks and closes it (as a deploy would). */
async function startServer(): Promise<{ stop: () => Promise<void> }> {
  const server = new Server();
  server.handleData((conn, data) => {
    const text = data.toString();
    if (text === 'subscribe ticks') conn.subscribe('ticks');
    else console.log(`server: got "${text}"`);
  });
  port = (await server.listen({ port, host: '127.0.0.1' })).port;
  const timer = setInterval(() => server.publish('ticks', `tick ${++seq}`), 100);
  return {
    stop: async () => {
      clearInterval(timer);
      await server.close();
    },
  };
}

let server = await startServer();
console.log(`server listening on ws://127.0.0.1:${port}/`);

let ticks = 0;
let fresh = false; // no tick yet on this connection
const client = reconnect(`ws://127.0.0.1:${port}/`, {
  initialDelay: 200,
  maxDelay: 2_000,
  maxAttempts: 20,
  overflow: 'drop-oldest',
  maxQueuedFrames: 100,
  // Runs on every connection: the place to resubscribe. Held messages go out after it.
  handleOpen: async (conn) => {
    console.log(`client: connected (connection ${conn.id})`);
    fresh = true;
    await conn.write('subscribe ticks');
  },
  handleData: (_conn, data) => {
    ticks++;
    if (fresh) console.log(`client: first tick on this connection: ${data.toString()}`);
    fresh = false;
  },
  handleReconnecting: ({ attempt, delay }) => console.log(`client: reconnecting, attempt ${attempt} in ${delay} ms`),
});

let n = 0;
const writer = setInterval(() => void client.write(`hello ${++n}`), 300);

await client.connected();
await new Promise((r) => setTimeout(r, 1_000));
console.log('server: restarting');
await server.stop();
await new Promise((r) => setTimeout(r, downFor));
server = await startServer();
console.log('server: back');
await client.connected();
await new Promise((r) => setTimeout(r, 1_000));

clearInterval(writer);
const end = await client.close();
await server.stop();
console.log(`done: ${client.connections} connections, ${ticks} ticks received, ended: ${end.reason}`);
