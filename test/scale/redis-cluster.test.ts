/**
 * Sharded pub/sub on a real Redis Cluster (three redis-server masters started by the test): two
 * wschan nodes, each in its own process (stress-tests/redis-node.ts --cluster), publish and
 * subscribe through node-redis's cluster client, which sends each SSUBSCRIBE/SPUBLISH to the
 * shard that owns the channel's hash slot.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, ErrorCode, type Conn } from '../../src/index.js';
import { RedisAdapter } from '../../src/scale/redis.js';
import { closeAll, guardProcess, sleep, startServer, waitUntil } from '../helpers/net.js';
import { FleetNode, freePort, killFleet, pubsubChannels, redisCommand } from '../helpers/redis.js';
import { RedisCluster } from '../helpers/redis-cluster.js';

guardProcess();
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  killFleet();
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {});
  await closeAll();
});

async function cluster(): Promise<RedisCluster> {
  const c = await RedisCluster.start();
  cleanup.push(() => c.stop());
  return c;
}

interface Received {
  conn: Conn;
  texts: string[];
}

async function subscriber(node: FleetNode, topics: string[]): Promise<Received> {
  const conn = await connect(`ws://127.0.0.1:${node.port}/?topics=${topics.join(',')}`);
  const r: Received = { conn, texts: [] };
  void (async () => {
    for await (const m of conn) r.texts.push(Buffer.from(m.data).toString());
  })().catch(() => {});
  cleanup.push(() => conn.close());
  return r;
}

/** Topics whose channels (`wschan:t:<topic>`) are owned by `n` different masters, with those masters. */
async function topicsOnDistinctShards(c: RedisCluster, n: number): Promise<Array<{ topic: string; slot: number; owner: number }>> {
  const picked: Array<{ topic: string; slot: number; owner: number }> = [];
  for (let i = 0; i < 100 && picked.length < n; i++) {
    const topic = `room${i}`;
    const slot = await c.keyslot(`wschan:t:${topic}`);
    const owner = await c.owner(slot);
    if (!picked.some((p) => p.owner === owner)) picked.push({ topic, slot, owner });
  }
  if (picked.length < n) throw new Error(`found no ${n} topics on distinct shards`);
  return picked;
}

async function shardNumsub(port: number, channel: string): Promise<number> {
  const reply = await redisCommand(port, 'PUBSUB', 'SHARDNUMSUB', channel);
  return Number(/:(\d+)/.exec(reply)![1]);
}

const seq = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

// A cluster and two node processes start in each test: more than the default 20 s on a loaded machine.
describe('sharded pub/sub on a real Redis Cluster (3 masters), two wschan nodes in separate processes', { timeout: 60_000 }, () => {
  it('each topic is subscribed on the shard that owns it; every subscriber gets every message once, in order; interest follows subscribers; clean shutdown', async () => {
    const c = await cluster();
    const [t1, t2] = await topicsOnDistinctShards(c, 2);
    expect(t1!.owner).not.toBe(t2!.owner);
    // Node a knows one root node (it discovers the others); node b knows all three.
    const a = await FleetNode.start({ cluster: [c.urls[0]!] });
    const b = await FleetNode.start({ cluster: c.urls });
    const onB = [await subscriber(b, [t1!.topic]), await subscriber(b, [t1!.topic]), await subscriber(b, [t2!.topic])];
    const onA = await subscriber(a, [t1!.topic]);

    // Interest sits on the owning shard only (SSUBSCRIBE'd channels are per shard).
    await expect.poll(() => shardNumsub(t1!.owner, `wschan:t:${t1!.topic}`)).toBe(2);
    await expect.poll(() => shardNumsub(t2!.owner, `wschan:t:${t2!.topic}`)).toBe(1);
    expect(await pubsubChannels(t1!.owner, 'SHARDCHANNELS')).toContain(`wschan:t:${t1!.topic}`);
    expect(await pubsubChannels(t2!.owner, 'SHARDCHANNELS')).toContain(`wschan:t:${t2!.topic}`);
    const everywhere = (await Promise.all(c.ports.map((p) => pubsubChannels(p, 'SHARDCHANNELS')))).flat();
    expect(everywhere.filter((ch) => ch.startsWith('wschan:t:')).sort()).toEqual([`wschan:t:${t1!.topic}`, `wschan:t:${t2!.topic}`].sort());

    await a.request('publish', { topic: t1!.topic, data: 'x#', count: 150 });
    await a.request('publish', { topic: t2!.topic, data: 'y#', count: 150 });
    await a.request('publish', { data: 'all#', count: 5 }); // broadcast: the `wschan:*` channel, on its own shard
    await waitUntil(() => onB[0]!.texts.length === 155 && onB[1]!.texts.length === 155 && onB[2]!.texts.length === 155, 10_000, 'the subscribers on node b to get 155 messages each');
    for (const s of onB.slice(0, 2)) {
      expect(s.texts.filter((t) => t.startsWith('x'))).toEqual(seq('x', 150));
      expect(s.texts.filter((t) => t.startsWith('all'))).toEqual(seq('all', 5));
    }
    expect(onB[2]!.texts.filter((t) => t.startsWith('y'))).toEqual(seq('y', 150));
    await waitUntil(() => onA.texts.length === 155, 5000, 'the subscriber on node a');
    expect(onA.texts.filter((t) => t.startsWith('x'))).toEqual(seq('x', 150));
    await sleep(100); // nothing more arrives: no duplicates (node a skips its own echo)
    expect([...onB.map((s) => s.texts.length), onA.texts.length]).toEqual([155, 155, 155, 155]);
    let [sa, sb] = await Promise.all([a.stats(), b.stats()]);
    for (let i = 0; i < 50 && (sa.redis.queued > 0 || sa.redis.skippedOwn < 155); i++) [sa, sb] = await sleep(20).then(() => Promise.all([a.stats(), b.stats()]));
    expect([sa.redis.published, sa.redis.sent, sa.redis.unsent + sa.redis.failed + sa.redis.dropped, sa.redis.skippedOwn]).toEqual([305, 305, 0, 155]);
    expect([sb.redis.published, sb.redis.received, sb.redis.malformed]).toEqual([0, 305, 0]);
    expect([sa.state, sb.state]).toEqual(['up', 'up']);

    // The last subscriber of t2 leaves: node b SUNSUBSCRIBEs on t2's shard.
    await onB[2]!.conn.close();
    await expect.poll(() => shardNumsub(t2!.owner, `wschan:t:${t2!.topic}`)).toBe(0);
    expect(await shardNumsub(t1!.owner, `wschan:t:${t1!.topic}`)).toBe(2);

    for (const s of [...onB, onA]) await s.conn.close();
    expect(await Promise.all([a.close(), b.close()])).toEqual([0, 0]);
    const left = (await Promise.all(c.ports.map((p) => pubsubChannels(p, 'SHARDCHANNELS')))).flat();
    expect(left).toEqual([]);
  });

  it('a master killed and restarted: outage reported, its channels subscribed again, delivery resumes on every shard', async () => {
    const c = await cluster();
    const [t1, t2] = await topicsOnDistinctShards(c, 2);
    const a = await FleetNode.start({ cluster: c.urls });
    const b = await FleetNode.start({ cluster: c.urls });
    const s1 = await subscriber(b, [t1!.topic]);
    const s2 = await subscriber(b, [t2!.topic]);
    await expect.poll(() => shardNumsub(t1!.owner, `wschan:t:${t1!.topic}`)).toBe(1);
    await expect.poll(() => shardNumsub(t2!.owner, `wschan:t:${t2!.topic}`)).toBe(1);
    await a.request('publish', { topic: t1!.topic, data: 'before#', count: 10 });
    await waitUntil(() => s1.texts.length === 10, 5000, 'the first messages');

    const victim = c.ports.indexOf(t1!.owner);
    await c.kill(victim);
    await waitUntil(() => [a, b].every((n) => n.events.some((e) => e.event === 'outage')), 5000, 'both nodes to report the outage');
    // During the outage a publish is counted, not sent (and not queued).
    await a.request('publish', { topic: t1!.topic, data: 'lost#', count: 3 });
    expect((await a.stats()).redis.unsent).toBe(3);
    await c.restart(victim);
    await c.waitOk();
    await waitUntil(() => [a, b].every((n) => n.events.some((e) => e.event === 'recovered')), 10_000, 'both nodes to recover');
    await expect.poll(() => shardNumsub(t1!.owner, `wschan:t:${t1!.topic}`), { timeout: 5000 }).toBe(1);

    await a.request('publish', { topic: t1!.topic, data: 'after#', count: 10 });
    await a.request('publish', { topic: t2!.topic, data: 'other#', count: 10 });
    await waitUntil(() => s1.texts.length === 20 && s2.texts.length === 10, 10_000, 'the messages after the recovery');
    expect(s1.texts).toEqual([...seq('before', 10), ...seq('after', 10)]);
    expect(s2.texts).toEqual(seq('other', 10));
    const [sa, sb] = await Promise.all([a.stats(), b.stats()]);
    expect([sa.redis.outages, sb.redis.outages]).toEqual([1, 1]);
    expect(sa.redis.published).toBe(33);
    expect(sa.redis.sent + sa.redis.unsent + sa.redis.failed + sa.redis.dropped + sa.redis.queued).toBe(33);
    expect(sa.redis.unsent).toBe(3);
    expect(a.events.find((e) => e.event === 'recovered')).toMatchObject({ unsent: 3 });
    expect(await Promise.all([a.close(), b.close()])).toEqual([0, 0]);
  });
});

async function clientCount(port: number): Promise<number> {
  const info = await redisCommand(port, 'INFO', 'clients');
  return Number(/connected_clients:(\d+)/.exec(info)![1]) - 1; // minus the INFO connection itself
}

describe('RedisAdapter with cluster (one process, a real Redis Cluster)', { timeout: 30_000 }, () => {
  it('the outgoing queue is bounded in a cluster too; close() is idempotent and leaves no connection on any shard', async () => {
    const c = await cluster();
    const { server } = await startServer();
    const adapter = await RedisAdapter.connect(server, { cluster: { rootNodes: [c.urls[1]!] }, maxQueue: 5 });
    cleanup.push(() => adapter.close());
    expect(adapter.options.sharded).toBe(true);
    for (let i = 0; i < 50; i++) server.publish(`t${i % 7}`, `m${i}`); // topics on several shards
    expect(adapter.stats).toMatchObject({ published: 50, queued: 5, dropped: 45 });
    await waitUntil(() => adapter.stats.queued === 0, 5000, 'the five to be acknowledged');
    expect(adapter.stats).toMatchObject({ published: 50, sent: 5, dropped: 45, unsent: 0, failed: 0, queuedBytes: 0 });
    expect((await Promise.all(c.ports.map(clientCount))).every((n) => n > 0)).toBe(true);
    const closing = adapter.close();
    expect(adapter.close()).toBe(closing);
    await closing;
    expect(adapter.state).toBe('closed');
    server.publish('t0', 'after close'); // detached: not counted, nothing thrown
    expect(adapter.stats.published).toBe(50);
    await expect.poll(() => Promise.all(c.ports.map(clientCount))).toEqual([0, 0, 0]);
  });

  it('no cluster at the root nodes: WS_ERR_REDIS_UNAVAILABLE naming the cluster', async () => {
    const { server } = await startServer();
    const port = await freePort();
    await expect(RedisAdapter.connect(server, { cluster: { rootNodes: [`redis://127.0.0.1:${port}`] }, connectTimeoutMs: 2000 })).rejects.toMatchObject({
      code: ErrorCode.RedisUnavailable,
      message: expect.stringContaining(`the Redis Cluster at redis://127.0.0.1:${port}`),
    });
  });
});
