/**
 * A minimal node of a chat fleet: run several behind a load balancer, all pointed at one Redis,
 * and a message sent to any node reaches the clients of every node, once each.
 *
 *   npm run chat-node -- --port 8080 --redis redis://127.0.0.1:6379 [--host 127.0.0.1]
 *   npm run chat-node -- --port 8080 --cluster redis://10.0.0.1:7000,redis://10.0.0.2:7000
 *
 * `--cluster` joins the fleet through a Redis Cluster (some of its nodes' URLs, comma-separated):
 * sharded pub/sub, each topic on the shard that owns its slot.
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
const rootNodes = typeof flags.get('cluster') === 'string' ? (flags.get('cluster') as string).split(',') : undefined;

const server = new Server();
server.handleOpen((conn) => void conn.subscribe('chat'));
server.handleData((_conn, data, isBinary) => {
  if (!isBinary) server.publish('chat', data, { isBinary: false });
});

const addr = await server.listen({ port, host });
let adapter: RedisAdapter;
try {
  adapter = await RedisAdapter.connect(server, rootNodes === undefined ? { url: redisUrl } : { cluster: { rootNodes } });
} catch (error) {
  console.error(`chat node: ${(error as Error).message}`);
  await server.close();
  process.exit(1);
}
adapter.handleOutage((o) => console.error(`chat node: Redis unreachable (${o.error?.message ?? 'connection lost'}); local clients still chat`));
adapter.handleRecovered((r) => console.error(`chat node: Redis back after ${r.downMs} ms; ${r.unsent} messages did not reach other nodes`));
console.log(`wschan chat node listening on ws://${host}:${addr.port}, connected to ${rootNodes === undefined ? `Redis at ${new URL(redisUrl).host}` : `the Redis Cluster at ${rootNodes.map((u) => new URL(u).host).join(',')}`} (node ${adapter.nodeId.toString('hex')})`);

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
