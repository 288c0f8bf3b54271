/**
 * Runs (Conn#tryWriteFrame, src/server/frame-arena.ts): the frames of publishes made in one turn
 * lie side by side, and a connection queues consecutive ones as one outbox entry. What users see
 * must not change: every message counted, the outbox bounded in messages, each policy dropping
 * exactly the messages it would drop one by one, and the bytes in order.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Conn, ServerOptionsInput } from '../../src/index.js';
import { RawClient, closeAll, guardProcess, parseResponse, rawHandshake, startServer, upgradeRequest, waitUntil } from '../helpers/net.js';

guardProcess();
afterEach(closeAll);

async function setup(n: number, options?: ServerOptionsInput) {
  const { server, port } = await startServer(options);
  const clients: RawClient[] = [];
  for (let i = 0; i < n; i++) {
    const { client, res } = await rawHandshake(port, upgradeRequest());
    expect(res.status).toBe(101);
    clients.push(client);
  }
  await waitUntil(() => server.clientCount === n, 2000, 'the connections');
  // server.connections is in the order the connections opened, as the clients are.
  return { server, clients, conns: [...server.connections] as Conn[] };
}

const texts = (c: RawClient): string[] => (parseResponse(c.received) === undefined ? [] : c.frames().map((f) => f.payload.toString()));
const range = (from: number, to: number, p = 'm'): string[] => Array.from({ length: to - from }, (_, i) => `${p}${from + i}`);

describe('a burst of publishes in one turn', () => {
  it('arrives whole and in order, across arena blocks, and every message is counted', async () => {
    const { server, clients, conns } = await setup(3);
    const big = 'x'.repeat(100);
    for (let i = 0; i < 300; i++) server.broadcast(`m${i}${big}`); // ~31 KiB of frames: several 8 KiB blocks
    expect(conns.map((c) => c.queuedFrames)).toEqual([300, 300, 300]);
    await waitUntil(() => clients.every((c) => texts(c).length === 300), 3000, 'every message');
    for (const c of clients) expect(texts(c)).toEqual(range(0, 300).map((m) => m + big));
    for (const c of conns) expect([c.messagesOut, c.delivered, c.queuedFrames]).toEqual([300, 300, 0]);
    expect(server.stats.delivered).toBe(900);
  });

  it('keeps its place among writes of one connection and publishes to other topics', async () => {
    const { server, clients, conns } = await setup(2);
    const [a, b] = conns as [Conn, Conn];
    a.subscribe('t1');
    a.subscribe('t2');
    b.subscribe('t1');
    server.publish('t1', 'p0');
    server.publish('t2', 'q0'); // a's run continues (its frame is next in memory); b's does not
    server.publish('t1', 'p1');
    void a.write('w0'); // ends a's run: the next publish starts another entry
    server.broadcast('p2');
    server.publish('t1', 'p3');
    await waitUntil(() => texts(clients[0]!).length === 6 && texts(clients[1]!).length === 4, 3000, 'every message');
    expect(texts(clients[0]!)).toEqual(['p0', 'q0', 'p1', 'w0', 'p2', 'p3']);
    expect(texts(clients[1]!)).toEqual(['p0', 'p1', 'p2', 'p3']);
    expect([a.delivered, b.delivered]).toEqual([6, 4]);
  });

  it('maxQueuedFrames bounds messages, not entries (drop-newest)', async () => {
    const { server, clients, conns } = await setup(1, { maxQueuedFrames: 10, overflow: 'drop-newest' });
    let dropped = 0;
    for (let i = 0; i < 25; i++) dropped += server.broadcast(`m${i}`).dropped;
    expect([dropped, conns[0]!.queuedFrames, conns[0]!.dropped]).toEqual([15, 10, 15]);
    await waitUntil(() => texts(clients[0]!).length === 10, 3000, 'ten messages');
    expect(texts(clients[0]!)).toEqual(range(0, 10));
  });

  it('drop-oldest drops one message at a time off the front of a run', async () => {
    const { server, clients, conns } = await setup(1, { maxQueuedFrames: 10, overflow: 'drop-oldest' });
    for (let i = 0; i < 25; i++) server.broadcast(i % 2 === 0 ? `m${i}` : `m${i}-${'y'.repeat(200)}`); // 1- and 2-byte... and 4-byte headers
    const c = conns[0]!;
    expect([c.queuedFrames, c.dropped]).toEqual([10, 15]);
    await waitUntil(() => texts(clients[0]!).length === 10, 3000, 'ten messages');
    expect(texts(clients[0]!)).toEqual(range(15, 25).map((m, i) => ((15 + i) % 2 === 0 ? m : `${m}-${'y'.repeat(200)}`)));
    expect(c.messagesOut).toBe(c.delivered + c.dropped);
  });

  it('maxQueuedBytes bounds a run as it bounds single messages', async () => {
    const { server, conns } = await setup(1, { maxQueuedBytes: 1000, overflow: 'drop-newest' });
    let queued = 0;
    for (let i = 0; i < 30; i++) queued += server.broadcast('z'.repeat(100)).queued;
    expect(queued).toBe(10);
    expect(conns[0]!.queuedBytes).toBe(1000);
  });

  it("policy close with a run queued: every message of it is counted unsent", async () => {
    const { server, conns } = await setup(1, { maxQueuedFrames: 10, overflow: 'close' });
    const closed: number[] = [];
    for (let i = 0; i < 15; i++) closed.push(server.broadcast(`m${i}`).closed);
    expect(closed).toEqual([...Array(10).fill(0), ...Array(5).fill(1)]);
    const c = conns[0]!;
    const info = await c.closed;
    expect(info.unsent).toBe(10);
    expect(c.messagesOut).toBe(c.delivered + info.unsent);
  });

  describe('compressed frames (shared mode)', () => {
    const deflate = { threshold: 0 };
    const tick = (i: number): string => `{"seq":${i},"body":"${'the same words again '.repeat(5)}"}`;

    async function wsClients(url: string, n: number): Promise<{ sockets: WebSocket[]; got: string[][] }> {
      const got: string[][] = [];
      const sockets: WebSocket[] = [];
      for (let i = 0; i < n; i++) {
        const box: string[] = [];
        got.push(box);
        const w = new WebSocket(url, { perMessageDeflate: true });
        w.on('message', (d) => box.push(d.toString()));
        sockets.push(w);
      }
      await Promise.all(sockets.map((w) => new Promise((r) => w.on('open', r))));
      return { sockets, got };
    }

    it('form runs under the default policy: every tick arrives compressed, whole and in order', async () => {
      const { server, url } = await startServer({ deflate });
      const { sockets, got } = await wsClients(url, 3);
      await waitUntil(() => server.clientCount === 3, 2000, 'three connections');
      for (let i = 0; i < 40; i++) server.broadcast(tick(i));
      const conns = [...server.connections];
      expect(conns.map((c) => c.queuedFrames)).toEqual([40, 40, 40]);
      await waitUntil(() => got.every((b) => b.length === 40), 3000, 'every tick');
      for (const b of got) expect(b).toEqual(Array.from({ length: 40 }, (_, i) => tick(i)));
      for (const c of conns) expect([c.messagesOut, c.delivered]).toEqual([40, 40]);
      for (const w of sockets) w.close();
    });

    it('drop-newest bounds them in messages', async () => {
      const { server, url } = await startServer({ deflate, maxQueuedFrames: 10, overflow: 'drop-newest' });
      const { sockets, got } = await wsClients(url, 1);
      await waitUntil(() => server.clientCount === 1, 2000, 'the connection');
      let dropped = 0;
      for (let i = 0; i < 25; i++) dropped += server.broadcast(tick(i)).dropped;
      expect(dropped).toBe(15);
      await waitUntil(() => got[0]!.length === 10, 3000, 'ten ticks');
      expect(got[0]).toEqual(Array.from({ length: 10 }, (_, i) => tick(i)));
      sockets[0]!.close();
    });

    it('drop-oldest still drops exactly the oldest ones', async () => {
      const { server, url } = await startServer({ deflate, maxQueuedFrames: 10, overflow: 'drop-oldest' });
      const { sockets, got } = await wsClients(url, 1);
      await waitUntil(() => server.clientCount === 1, 2000, 'the connection');
      // 15: five of the first ten go, so the ten queued first (a run, were it allowed) lose part.
      for (let i = 0; i < 15; i++) server.broadcast(tick(i));
      const c = [...server.connections][0]!;
      // The byte budget counts the uncompressed payloads of the ten kept.
      const kept = Array.from({ length: 10 }, (_, i) => tick(5 + i));
      expect([c.queuedFrames, c.dropped, c.queuedBytes]).toEqual([10, 5, kept.join('').length]);
      await waitUntil(() => got[0]!.length === 10, 3000, 'ten ticks');
      expect(got[0]).toEqual(kept);
      sockets[0]!.close();
    });
  });
});
