/**
 * A minimal node of a chat fleet: run several behind a load balancer, all pointed at one Redis,
 * and a message sent to any node reaches the clients of every node, once each.
 *
 *   npm run chat-node -- --port 8080 --redis redis://127.0.0.1:6379 [--host 127.0.0.1]
 *
 * Every client is subscribed to the topic `chat`; every text message a client sends is published
 * to `chat` (the sender gets it back too, as every subscriber does). Binary messages are ignored.
 * It prints one line when it listens and is connected to Redis, and stops on SIGINT/SIGTERM.
 */
import { Server } from '../../src/index.js';
import { RedisAdapter } from '../../src/scale/redis.js';
import { intFlag, parseArgs } from '../../stress-tests/args.js';

const { flags } = parseArgs(process.argv.slice(2));
const port = intFlag(flags, 'port', 8080);
const host = typeof flags.get('host') === 'string' ? (flags.get('host') as string) : '127.0.0.1';
const redisUrl = typeof flags.get('redis') === 'string' ? (flags.get('redis') as string) : 'redis://127.0.0.1:6379';

const server = new Server();
server.handleOpen((conn) => void conn.subscribe('chat'));
server.handleData((_conn, data, isBinary) => {
  if (!isBinary) server.publish('chat', data, { isBinary: false });
});

const addr = await server.listen({ port, host });
let adapter: RedisAdapter;
try {
  adapter = await RedisAdapter.connect(server, { url: redisUrl });
} catch (error) {
  console.error(`chat node: ${(error as Error).message}`);
  await server.close();
  process.exit(1);
}
adapter.handleOutage((o) => console.error(`chat node: Redis unreachable (${o.error?.message ?? 'connection lost'}); local clients still chat`));
adapter.handleRecovered((r) => console.error(`chat node: Redis back after ${r.downMs} ms; ${r.unsent} messages did not reach other nodes`));
console.log(`wschan chat node listening on ws://${host}:${addr.port}, connected to Redis at ${new URL(redisUrl).host} (node ${adapter.nodeId.toString('hex')})`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await adapter.close();
  await server.close();
  process.exit(0);
}
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
