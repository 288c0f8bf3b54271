/**
 * One node of a wschan fleet joined by the Redis adapter, driven by a parent process over IPC: the
 * multi-process tests (test/scale/redis-fleet.test.ts) and the fan-out benchmark
 * (bench/redis-fanout.mjs) start two or three of these beside one redis-server.
 *
 *   node dist/stress-tests/redis-node.js --redis redis://127.0.0.1:P [--port 0] [--sharded]
 *        [--overflow conflate --max-queued-frames 4]
 *   node dist/stress-tests/redis-node.js --cluster redis://127.0.0.1:P1,redis://127.0.0.1:P2 [...]
 *        (a Redis Cluster through its root nodes: sharded pub/sub routed to each channel's shard)
 *
 * A client connecting to `/?topics=a,b` is subscribed to `a` and `b`. The parent sends
 * `{ id, cmd, ... }` and gets `{ id, ok, value }` back; the node also sends `{ event }` messages
 * (`listening`, `outage`, `recovered`). Commands: `publish` (`topic` or none for a broadcast,
 * `data` as text or base64 with `binary`, `key`, `count`: `data` with `#` replaced by the index,
 * or for binary a 4-byte index and an 8-byte send time from `process.hrtime` in front),
 * `stream` (`count` messages `data`, one every `intervalMs`, resolved when done), `stats`, `close`.
 */
import { Server, type ServerOptionsInput } from '../src/index.js';
import { RedisAdapter } from '../src/scale/redis.js';
import { intFlag, parseArgs } from './args.js';

interface Command {
  id: number;
  cmd: 'publish' | 'stream' | 'stats' | 'close';
  intervalMs?: number;
  topic?: string;
  data?: string;
  binary?: boolean;
  key?: string;
  count?: number;
  size?: number;
}

const { flags } = parseArgs(process.argv.slice(2));
const url = flags.get('redis');
const rootNodes = flags.get('cluster');
if (typeof url !== 'string' && typeof rootNodes !== 'string') throw new Error('--redis redis://host:port or --cluster redis://host:port,... is required');
const send = (m: unknown): void => void process.send?.(m);

const options: ServerOptionsInput = {};
const overflow = flags.get('overflow');
if (typeof overflow === 'string') options.overflow = overflow as ServerOptionsInput['overflow'];
if (flags.has('max-queued-frames')) options.maxQueuedFrames = intFlag(flags, 'max-queued-frames', 1024);
const server = new Server<string[]>(options);
server.handleUpgrade((req) => ({ data: (new URL(req.url ?? '/', 'ws://x').searchParams.get('topics') ?? '').split(',').filter((t) => t !== '') }));
server.handleOpen((conn) => {
  for (const t of conn.data) conn.subscribe(t);
});

const addr = await server.listen({ port: intFlag(flags, 'port', 0), host: '127.0.0.1' });
const where = typeof rootNodes === 'string' ? { cluster: { rootNodes: rootNodes.split(',') } } : { url: url as string, sharded: flags.has('sharded') };
const adapter = await RedisAdapter.connect(server, { ...where, minDelayMs: 20, maxDelayMs: 200 });
adapter.handleOutage((o) => send({ event: 'outage', since: o.since }));
adapter.handleRecovered((r) => send({ event: 'recovered', downMs: r.downMs, unsent: r.unsent }));
adapter.handleError((e) => send({ event: 'error', message: e.message }));

function publish(c: Command): number {
  const count = c.count ?? 1;
  for (let i = 0; i < count; i++) {
    let data: string | Buffer;
    if (c.binary && c.size !== undefined) {
      const b = Buffer.alloc(c.size, 0x2a);
      b.writeUInt32BE(i, 0);
      b.writeBigUInt64BE(process.hrtime.bigint(), 4);
      data = b;
    } else if (c.binary) data = Buffer.from(c.data ?? '', 'base64');
    else data = (c.data ?? '').replaceAll('#', String(i));
    const opts = { isBinary: c.binary === true, key: c.key?.replaceAll('#', String(i % 4)) };
    if (c.topic === undefined) server.broadcast(data, opts);
    else server.publish(c.topic, data, opts);
  }
  return count;
}

/** Publish `count` messages `data` (with `#` as the index), one every `intervalMs`. */
async function stream(c: Command): Promise<number> {
  for (let i = 0; i < (c.count ?? 1); i++) {
    server.publish(c.topic ?? 'stream', (c.data ?? '#').replaceAll('#', String(i)));
    await new Promise((r) => setTimeout(r, c.intervalMs ?? 5));
  }
  return c.count ?? 1;
}

let closing = false;
async function close(): Promise<void> {
  if (closing) return;
  closing = true;
  await adapter.close();
  await server.close();
}

process.on('message', (m: Command) => {
  void (async () => {
    try {
      let value: unknown;
      if (m.cmd === 'publish') value = publish(m);
      else if (m.cmd === 'stream') value = await stream(m);
      else if (m.cmd === 'stats') value = { server: server.stats, redis: adapter.stats, state: adapter.state, clients: server.clientCount, topics: server.topics() };
      else if (m.cmd === 'close') value = await close();
      send({ id: m.id, ok: true, value });
      if (m.cmd === 'close') process.disconnect();
    } catch (error) {
      send({ id: m.id, ok: false, value: (error as Error).message });
    }
  })();
});
process.on('disconnect', () => void close().then(() => process.exit(0)));
send({ event: 'listening', port: addr.port, nodeId: adapter.nodeId.toString('hex') });
