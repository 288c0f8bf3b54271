/**
 * The Redis adapter (src/scale/redis.ts) against a real redis-server started by each test: interest
 * in Redis follows local subscribers (PUBSUB CHANNELS), the outgoing queue is bounded and its drops
 * counted, sharded pub/sub, outages survived and reported, options and connection errors typed.
 * Several Servers in separate processes: test/scale/redis-fleet.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, ErrorCode, Server, type Conn, type TopicBus, WebSocketError } from '../../src/index.js';
import { createClient } from 'redis';
import { RedisAdapter } from '../../src/scale/redis.js';
import { encodeEnvelope } from '../../src/scale/redis-envelope.js';
import { closeAll, guardProcess, startServer, waitUntil } from '../helpers/net.js';
import { freePort, pubsubChannels, RedisServer, requireRedisServer } from '../helpers/redis.js';

guardProcess();
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  await closeAll();
});

async function redis(): Promise<RedisServer> {
  const r = await RedisServer.start();
  cleanup.push(() => r.stop());
  return r;
}

async function adapterFor(server: Server<any>, url: string, options: Parameters<typeof RedisAdapter.connect>[1] = {}): Promise<RedisAdapter> {
  const a = await RedisAdapter.connect(server, { url, minDelayMs: 20, maxDelayMs: 100, ...options });
  cleanup.push(() => a.close());
  return a;
}

async function node(): Promise<{ server: Server; url: string; conns: Conn[] }> {
  const conns: Conn[] = [];
  const { server, url } = await startServer(undefined, (s) => s.handleOpen((c) => void conns.push(c)));
  return { server, url, conns };
}

/** The next `n` messages; the connection stays open (leaving a for-await loop early would close it). */
async function texts(client: Conn<any>, n: number): Promise<string[]> {
  const it = client[Symbol.asyncIterator]();
  const got: string[] = [];
  while (got.length < n) {
    const r = await it.next();
    if (r.done === true) break;
    got.push(r.value.data.toString());
  }
  return got;
}

describe('RedisAdapter (one process, real redis-server)', () => {
  it('subscribes in Redis only to topics with a local subscriber, and unsubscribes after the last', async () => {
    const r = await redis();
    const { server, url, conns } = await node();
    const a = await connect(url);
    const b = await connect(url);
    await waitUntil(() => conns.length === 2, 2000, 'two connections');
    conns[0]!.subscribe('before-attach');
    const adapter = await adapterFor(server, r.url);
    expect(await pubsubChannels(r.port)).toEqual(['wschan:*', 'wschan:t:before-attach']);
    conns[0]!.subscribe('news');
    conns[1]!.subscribe('news');
    conns[0]!.unsubscribe('before-attach');
    await waitUntil(() => adapter.stats.subscribedTopics === 1, 2000, 'one topic');
    await expect.poll(() => pubsubChannels(r.port)).toEqual(['wschan:*', 'wschan:t:news']);
    conns[0]!.unsubscribe('news');
    expect(await pubsubChannels(r.port)).toEqual(['wschan:*', 'wschan:t:news']);
    await b.close();
    await expect.poll(() => pubsubChannels(r.port)).toEqual(['wschan:*']);
    // Publishing to a topic nobody here wants subscribes nothing.
    server.publish('nobody-here', 'x');
    await adapter.close();
    await expect.poll(() => pubsubChannels(r.port)).toEqual([]);
    await a.close();
  });

  it('two servers: publish, broadcast and conflation keys cross; a node does not get its own message twice', async () => {
    const r = await redis();
    const one = await node();
    const two = await node();
    const c1 = await connect(one.url);
    const c2 = await connect(two.url);
    await waitUntil(() => one.conns.length === 1 && two.conns.length === 1, 2000, 'connections');
    one.conns[0]!.subscribe('t');
    two.conns[0]!.subscribe('t');
    const a1 = await adapterFor(one.server, r.url);
    const a2 = await adapterFor(two.server, r.url);
    // Messages from two publishers have no order between them: one at a time.
    one.server.publish('t', 'from one', { key: 'k' });
    expect(await texts(c1, 1)).toEqual(['from one']);
    expect(await texts(c2, 1)).toEqual(['from one']);
    two.server.publish('t', Buffer.from([1, 2, 3]));
    two.server.broadcast('to all');
    expect(await texts(c1, 2)).toEqual(['\u0001\u0002\u0003', 'to all']);
    expect(await texts(c2, 2)).toEqual(['\u0001\u0002\u0003', 'to all']);
    await waitUntil(() => a1.stats.skippedOwn === 1 && a2.stats.skippedOwn === 2, 2000, 'own messages skipped');
    expect(a1.stats).toMatchObject({ published: 1, sent: 1, reached: 2, unsent: 0, dropped: 0, queued: 0, received: 2, malformed: 0 });
    expect(a2.stats).toMatchObject({ published: 2, sent: 2, reached: 4, unsent: 0, dropped: 0, queued: 0, received: 1, malformed: 0 });
    await c1.close();
    await c2.close();
  });

  it('never waits for Redis: past maxQueue publishes in flight, the next are dropped and counted', async () => {
    const r = await redis();
    const { server } = await node();
    const adapter = await adapterFor(server, r.url, { maxQueue: 5 });
    for (let i = 0; i < 50; i++) server.publish('t', `m${i}`);
    expect(adapter.stats).toMatchObject({ published: 50, queued: 5, dropped: 45 });
    await waitUntil(() => adapter.stats.queued === 0, 2000, 'the five to be acknowledged');
    expect(adapter.stats).toMatchObject({ published: 50, sent: 5, dropped: 45, unsent: 0, queuedBytes: 0 });
  });

  it('bounds the queue in bytes too', async () => {
    const r = await redis();
    const { server } = await node();
    const adapter = await adapterFor(server, r.url, { maxQueueBytes: 3000 });
    for (let i = 0; i < 10; i++) server.publish('t', Buffer.alloc(1000));
    expect(adapter.stats).toMatchObject({ published: 10, queued: 2, dropped: 8 });
    await waitUntil(() => adapter.stats.sent === 2, 2000, 'two sent');
  });

  it('sharded: SSUBSCRIBE per topic with local interest, SPUBLISH across servers', async () => {
    const r = await redis();
    const one = await node();
    const two = await node();
    const c2 = await connect(two.url);
    await waitUntil(() => two.conns.length === 1, 2000, 'connection');
    two.conns[0]!.subscribe('shard-topic');
    await adapterFor(one.server, r.url, { sharded: true });
    await adapterFor(two.server, r.url, { sharded: true });
    await expect.poll(() => pubsubChannels(r.port, 'SHARDCHANNELS')).toEqual(['wschan:*', 'wschan:t:shard-topic']);
    expect(await pubsubChannels(r.port)).toEqual([]);
    one.server.publish('shard-topic', 'sharded hello');
    expect(await texts(c2, 1)).toEqual(['sharded hello']);
    await c2.close();
  });

  it('a Redis outage: reported once, publishes counted unsent, local delivery goes on; on recovery every live topic is subscribed again', async () => {
    const r = await redis();
    const one = await node();
    const c = await connect(one.url);
    await waitUntil(() => one.conns.length === 1, 2000, 'connection');
    one.conns[0]!.subscribe('live');
    const adapter = await adapterFor(one.server, r.url);
    const events: string[] = [];
    adapter.handleOutage(() => events.push('outage')).handleRecovered((info) => events.push(`recovered unsent=${info.unsent}`));
    await r.kill();
    await waitUntil(() => adapter.state === 'down', 3000, 'the outage to be seen');
    one.server.publish('live', 'during');
    one.conns[0]!.subscribe('added-while-down');
    expect(await texts(c, 1)).toEqual(['during']);
    await r.start();
    await waitUntil(() => adapter.state === 'up', 5000, 'recovery');
    expect(events).toEqual(['outage', 'recovered unsent=1']);
    expect(adapter.stats).toMatchObject({ published: 1, unsent: 1, sent: 0, outages: 1 });
    expect(await pubsubChannels(r.port)).toEqual(['wschan:*', 'wschan:t:added-while-down', 'wschan:t:live']);
    await c.close();
  });

  it('relay false (one adapter per worker thread): ignores what came in on another bus, and delivers from Redis without relaying', async () => {
    const r = await redis();
    const one = await node();
    const two = await node();
    const c2 = await connect(two.url);
    await waitUntil(() => two.conns.length === 1, 2000, 'connection');
    two.conns[0]!.subscribe('t');
    const forwarded: string[] = [];
    const threadBus: TopicBus = { topicAdded() {}, topicRemoved() {}, forward: (_t, data) => void forwarded.push(String(data)) };
    two.server.attachBus(threadBus);
    const a1 = await adapterFor(one.server, r.url, { relay: false });
    await adapterFor(two.server, r.url, { relay: false });
    one.server.deliver('t', 'came from a thread', undefined, threadBus);
    one.server.publish('t', 'published here');
    expect(await texts(c2, 1)).toEqual(['published here']);
    expect(a1.stats.published).toBe(1);
    expect(forwarded).toEqual([]);
    await c2.close();
  });

  it('counts and reports what is not a valid message on its channels, and delivers none of it', async () => {
    const r = await redis();
    const one = await node();
    const c = await connect(one.url);
    await waitUntil(() => one.conns.length === 1, 2000, 'connection');
    one.conns[0]!.subscribe('t');
    const adapter = await adapterFor(one.server, r.url);
    const errors: string[] = [];
    adapter.handleError((e) => errors.push(e.message));
    const badText = encodeEnvelope(Buffer.alloc(8, 9), false, Buffer.from([0xc3, 0x28]), false, undefined);
    const redisClient = createClient({ url: r.url });
    await redisClient.connect();
    await redisClient.publish('wschan:t:t', 'not an envelope');
    await redisClient.publish('wschan:t:t', badText);
    await redisClient.publish('wschan:*', encodeEnvelope(Buffer.alloc(8, 9), false, 'topic flag on the broadcast channel', false, undefined));
    await redisClient.publish('wschan:t:t', encodeEnvelope(Buffer.alloc(8, 9), false, 'valid', false, undefined));
    await redisClient.close();
    expect(await texts(c, 1)).toEqual(['valid']);
    expect(adapter.stats).toMatchObject({ malformed: 3, received: 1 });
    expect(errors).toEqual(['message on Redis channel wschan:t:t is not a wschan envelope', 'text message is not valid UTF-8', 'message on Redis channel wschan:* is not a wschan envelope']);
    await c.close();
  });

  it('the tests say how to get redis-server when it is missing (never a silent skip)', () => {
    expect(() => requireRedisServer({ PATH: '/nonexistent' })).toThrow(/redis-server is not on PATH: .*apt-get install -y redis-server/);
    expect(() => requireRedisServer()).not.toThrow();
  });

  it('fails with typed errors: bad options, Redis unreachable; close() is idempotent', async () => {
    const { server } = await node();
    await expect(RedisAdapter.connect(server, { maxQueue: 0 })).rejects.toMatchObject({ code: ErrorCode.InvalidOptions });
    await expect(RedisAdapter.connect(server, { nope: 1 } as never)).rejects.toMatchObject({ code: ErrorCode.InvalidOptions });
    const port = await freePort();
    const err = await RedisAdapter.connect(server, { url: `redis://user:secret@127.0.0.1:${port}`, connectTimeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebSocketError);
    expect((err as WebSocketError).code).toBe(ErrorCode.RedisUnavailable);
    expect((err as Error).message).not.toContain('secret');
    const r = await redis();
    const adapter = await RedisAdapter.connect(server, { url: r.url });
    const p = adapter.close();
    expect(adapter.close()).toBe(p);
    await p;
    expect(adapter.state).toBe('closed');
    server.publish('t', 'after close');
    expect(adapter.stats.published).toBe(0);
  });
});
