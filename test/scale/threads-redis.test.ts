/**
 * A Redis adapter on a threaded server, run once in the main thread (`RedisAdapter.connect(handle)`):
 * against a real redis-server and a second node (a plain Server with its own adapter), no message
 * is delivered twice: a publish on a thread reaches every thread and the other node once; a
 * publish on the other node reaches every thread once. Two threads under Node >= 22.12; one
 * thread (said on stderr) where Node lacks SO_REUSEPORT.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect as srcConnect, type Conn } from '../../src/index.js';
import { RedisAdapter } from '../../src/scale/redis.js';
import { closeAll, startServer, waitUntil, withTimeout } from '../helpers/net.js';
import { pubsubChannels, redisCommand, RedisServer } from '../helpers/redis.js';
import { connect, reusePortMissing, serveThreads, type ThreadedServer } from './threads-lib.js';

const MISSING = reusePortMissing();
const THREADS = MISSING === undefined ? 2 : 1;
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  await closeAll();
});

function reader(conn: { [Symbol.asyncIterator](): AsyncIterator<{ data: Buffer }> }): () => Promise<string> {
  const it = conn[Symbol.asyncIterator]();
  return async () => {
    const r = await withTimeout(it.next(), 5000, 'a message');
    if (r.done === true) throw new Error('closed');
    return r.value.data.toString();
  };
}

describe('a Redis adapter attached to the threaded server in the main thread', () => {
  it(`delivers every message once, on every thread and on the other node (${THREADS} thread${THREADS === 1 ? ': this Node lacks SO_REUSEPORT' : 's'})`, async () => {
    if (MISSING !== undefined) console.warn(`threads-redis.test.ts: runs on 1 thread here (2 need ${MISSING})`);
    const redis = await RedisServer.start();
    cleanup.push(() => redis.stop());
    const url = `redis://127.0.0.1:${redis.port}`;
    const threaded: ThreadedServer = await serveThreads(new URL('./fixtures/app.mjs', import.meta.url), { threads: THREADS, host: '127.0.0.1' });
    cleanup.push(() => threaded.close());
    const a1 = await RedisAdapter.connect(threaded, { url, minDelayMs: 20, maxDelayMs: 100 });
    cleanup.push(() => a1.close());

    // The other node: a plain Server with its own adapter and one subscriber.
    const remoteConns: Conn[] = [];
    const other = await startServer(undefined, (s) => s.handleOpen((c) => void remoteConns.push(c)));
    const a2 = await RedisAdapter.connect(other.server, { url, minDelayMs: 20, maxDelayMs: 100 });
    cleanup.push(() => a2.close());
    const remote = await srcConnect(other.url);
    await waitUntil(() => remoteConns.length === 1, 2000, 'the remote client');
    remoteConns[0]!.subscribe('room');
    const remoteNext = reader(remote);

    // A client on every thread, each subscribed.
    const clients: Array<{ thread: number; write: (s: string) => Promise<unknown>; next: () => Promise<string> }> = [];
    const seen = new Set<number>();
    for (let i = 0; i < 64 && seen.size < THREADS; i++) {
      const c = await connect(`ws://127.0.0.1:${threaded.port}`);
      const next = reader(c);
      const t = Number(/^thread:(\d+):/.exec(await next())![1]);
      if (seen.has(t)) {
        void c.close();
        continue;
      }
      seen.add(t);
      await c.write('sub:room');
      expect(await next()).toBe('subscribed:room');
      clients.push({ thread: t, write: (s) => c.write(s), next });
      cleanup.push(() => c.close());
    }
    expect(clients.length).toBe(THREADS);
    // Interest reaches Redis from both nodes.
    for (let tries = 0; ; tries++) {
      const room = (await pubsubChannels(redis.port)).find((c) => c.includes('room'));
      // NUMSUB answers `*2 $n <name> :<count>`: both nodes subscribed.
      if (room !== undefined && (await redisCommand(redis.port, 'PUBSUB', 'NUMSUB', room)).trimEnd().endsWith(':2')) break;
      if (tries > 200) throw new Error('both adapters did not subscribe to room in Redis');
      await new Promise((r) => setTimeout(r, 20));
    }

    // A publish on thread 0 reaches every thread once and the other node once.
    await clients[0]!.write('pub:room:3:t');
    for (const c of clients) {
      const got: string[] = [];
      while (got.length < 3) {
        const m = await c.next();
        if (!m.startsWith('published:')) got.push(m);
      }
      expect(got).toEqual(['t:0', 't:1', 't:2']);
    }
    expect([await remoteNext(), await remoteNext(), await remoteNext()]).toEqual(['t:0', 't:1', 't:2']);

    // A publish on the other node reaches every thread once: the next message after it is the marker.
    other.server.publish('room', 'remote');
    other.server.publish('room', 'marker');
    for (const c of clients) {
      let m = await c.next();
      while (m.startsWith('published:')) m = await c.next();
      expect(m).toBe('remote');
      expect(await c.next()).toBe('marker');
    }
    expect([await remoteNext(), await remoteNext()]).toEqual(['remote', 'marker']);

    // From the main thread's handle: every thread and the other node, once.
    threaded.publish('room', 'main');
    threaded.publish('room', 'main-marker');
    for (const c of clients) expect([await c.next(), await c.next()]).toEqual(['main', 'main-marker']);
    expect([await remoteNext(), await remoteNext()]).toEqual(['main', 'main-marker']);
    expect(a1.stats.published).toBeGreaterThanOrEqual(5);
    await remote.close();
  });
});
