/** `npm run chat-node`: two fleet nodes in their own processes, one real redis-server. */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Conn } from '../../src/index.js';
import { sleep, waitUntil } from '../helpers/net.js';
import { freePort, redisCommand, RedisServer } from '../helpers/redis.js';
import { RedisCluster } from '../helpers/redis-cluster.js';
import { ROOT, runScript } from './run.js';

const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function chatNode(redisUrl: string | { cluster: string[] }): Promise<{ port: number; exit: Promise<number | null>; stop: () => void }> {
  const where = typeof redisUrl === 'string' ? ['--redis', redisUrl] : ['--cluster', redisUrl.cluster.join(',')];
  const { out, child } = await runScript('examples/chat-node/main.js', ['--port', '0', ...where], { until: (o) => o.includes('\n'), timeoutMs: 10_000 });
  cleanup.push(() => void child.kill('SIGKILL'));
  const m = /^wschan chat node listening on ws:\/\/127\.0\.0\.1:(\d+), connected to (?:Redis|the Redis Cluster) at 127\.0\.0\.1:\d+(?:,127\.0\.0\.1:\d+)* \(node [0-9a-f]{16}\)\n/.exec(out);
  expect(m, out).not.toBeNull();
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { port: Number(m![1]), exit, stop: () => void child.kill('SIGTERM') };
}

async function chatter(port: number): Promise<{ conn: Conn; got: string[] }> {
  const conn = await connect(`ws://127.0.0.1:${port}`);
  const got: string[] = [];
  void (async () => {
    for await (const m of conn) got.push(m.data.toString());
  })().catch(() => {});
  cleanup.push(() => conn.close());
  return { conn, got };
}

describe('npm run chat-node', { timeout: 60_000 }, () => {
  it('is the script package.json runs', () => {
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['chat-node']).toBe('node dist/examples/chat-node/main.js');
  });

  it('a message sent to one node reaches the clients of every node, once each; SIGTERM stops it cleanly', async () => {
    const redis = await RedisServer.start();
    cleanup.push(() => redis.stop());
    const nodes = [await chatNode(redis.url), await chatNode(redis.url)];
    const clients = [await chatter(nodes[0]!.port), await chatter(nodes[0]!.port), await chatter(nodes[1]!.port), await chatter(nodes[1]!.port)];
    // Every client is subscribed on open: both nodes hold the topic in Redis.
    await expect.poll(async () => /:(\d+)/.exec(await redisCommand(redis.port, 'PUBSUB', 'NUMSUB', 'wschan:t:chat'))?.[1]).toBe('2');
    await clients[0]!.conn.write('hello from node 1');
    await clients[3]!.conn.write('hello from node 2');
    await waitUntil(() => clients.every((c) => c.got.length === 2), 5000, 'every client to get both messages');
    for (const c of clients) expect([...c.got].sort()).toEqual(['hello from node 1', 'hello from node 2']);
    await clients[2]!.conn.write(Buffer.from([1, 2, 3])); // binary is not chat
    await sleep(150);
    expect(clients.map((c) => c.got.length)).toEqual([2, 2, 2, 2]);
    for (const c of clients) await c.conn.close();
    for (const n of nodes) n.stop();
    expect(await Promise.all(nodes.map((n) => n.exit))).toEqual([0, 0]);
  });

  it('--cluster: two nodes joined through a real three-master Redis Cluster, `chat` subscribed on the shard that owns it', async () => {
    const cluster = await RedisCluster.start();
    cleanup.push(() => cluster.stop());
    const owner = await cluster.owner(await cluster.keyslot('wschan:t:chat'));
    const nodes = [await chatNode({ cluster: [cluster.urls[0]!] }), await chatNode({ cluster: cluster.urls })];
    const clients = [await chatter(nodes[0]!.port), await chatter(nodes[1]!.port)];
    await expect.poll(async () => /:(\d+)/.exec(await redisCommand(owner, 'PUBSUB', 'SHARDNUMSUB', 'wschan:t:chat'))?.[1]).toBe('2');
    await clients[0]!.conn.write('over the cluster');
    await clients[1]!.conn.write('and back');
    await waitUntil(() => clients.every((c) => c.got.length === 2), 5000, 'both clients to get both messages');
    for (const c of clients) expect([...c.got].sort()).toEqual(['and back', 'over the cluster']);
    for (const c of clients) await c.conn.close();
    for (const n of nodes) n.stop();
    expect(await Promise.all(nodes.map((n) => n.exit))).toEqual([0, 0]);
  });

  it('says why and exits 1 when Redis cannot be reached', async () => {
    const r = await runScript('examples/chat-node/main.js', ['--port', '0', '--redis', `redis://127.0.0.1:${await freePort()}`], { timeoutMs: 15_000 });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/chat node: (cannot connect to Redis|Redis at) /);
  });
});
