/**
 * Topics: conn.subscribe / unsubscribe, server.publish framed once for every subscriber, every
 * overflow policy toward a subscriber that stops reading (its kernel buffers full), counters that
 * match what the clients received, and no topic left behind by connections that come and go.
 */
import type { IncomingMessage } from 'node:http';
import { duplexPair } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connInternals } from '../../src/conn/conn.js';
import { Conn, ErrorCode, Server, WebSocketError, connect, type ServerOptionsInput } from '../../src/index.js';
import { Opcode } from '../../src/protocol/constants.js';
import { TopicRegistry } from '../../src/server/topics.js';
import { blockWriter } from '../conn/helpers.js';
import { RawClient, closeAll, guardProcess, rawHandshake, sleep, startServer, upgradeRequest, waitUntil } from '../helpers/net.js';

guardProcess();
afterEach(async () => {
  vi.restoreAllMocks();
  await closeAll();
});

/** A server whose every connection subscribes to `ticks` on open; the connections in order of arrival. */
async function tickServer(options?: ServerOptionsInput): Promise<{ server: Server; port: number; url: string; conns: Conn[] }> {
  const conns: Conn[] = [];
  const s = await startServer(options, (server) => {
    server.handleOpen((conn) => {
      conn.subscribe('ticks');
      conns.push(conn);
    });
  });
  return { ...s, conns };
}

async function rawSubscriber(port: number, server: Server, n: number): Promise<RawClient> {
  const { client, res } = await rawHandshake(port, upgradeRequest());
  expect(res.status).toBe(101);
  await waitUntil(() => server.subscriberCount('ticks') === n, 2000, `${n} subscriber(s)`);
  return client;
}

/** Text payloads of the data frames a raw client received. */
function texts(c: RawClient): string[] {
  return c.frames().filter((f) => f.opcode === Opcode.Text).map((f) => f.payload.toString());
}

/**
 * Stop reading on `client` and fill the kernel buffers toward it, until the server's writer for
 * `conn` waits for 'drain' with nothing left in its outbox. Fillers are 1 MiB binary messages.
 */
async function stopReading(client: RawClient, conn: Conn): Promise<number> {
  client.socket.pause();
  return blockWriter(conn);
}

/** Let the client read again, and wait until it has every frame the server handed to its socket. */
async function resume(client: RawClient, conn: Conn): Promise<void> {
  client.socket.resume();
  await waitUntil(() => conn.queuedFrames === 0 && client.frames().length >= conn.delivered, 5000, 'the client to catch up');
  expect(client.frames().length).toBe(conn.delivered);
}

describe('subscribe / unsubscribe', () => {
  it('say whether they changed anything, and the counts follow', async () => {
    const { server, port, conns } = await tickServer();
    await rawSubscriber(port, server, 1);
    const conn = conns[0]!;
    expect(conn.subscribe('ticks')).toBe(false);
    expect(conn.subscribe('news')).toBe(true);
    expect([...conn.topics].sort()).toEqual(['news', 'ticks']);
    expect(server.subscriberCount('news')).toBe(1);
    expect(server.topicCount).toBe(2);
    expect(server.topics().sort()).toEqual(['news', 'ticks']);
    expect(conn.unsubscribe('news')).toBe(true);
    expect(conn.unsubscribe('news')).toBe(false);
    expect(conn.unsubscribe('never')).toBe(false);
    expect(server.subscriberCount('news')).toBe(0);
    expect(server.topicCount).toBe(1);
  });

  it('reject a topic that is not a non-empty string', async () => {
    const { server, port, conns } = await tickServer();
    await rawSubscriber(port, server, 1);
    for (const bad of ['', 42, undefined]) {
      expect(() => conns[0]!.subscribe(bad as string)).toThrow(WebSocketError);
    }
  });

  it('subscribe from a client connection throws WS_ERR_INVALID_ARGUMENT: topics live on the server', async () => {
    const { url, server } = await tickServer();
    const client = await connect(url);
    let err: unknown;
    try {
      client.subscribe('ticks');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WebSocketError);
    expect((err as WebSocketError).code).toBe(ErrorCode.InvalidArgument);
    expect((err as WebSocketError).message).toMatch(/subscribe\(\) is for connections accepted by a Server/);
    expect(() => client.unsubscribe('ticks')).toThrow(/unsubscribe\(\) is for connections accepted by a Server/);
    expect(client.topics.size).toBe(0);
    await waitUntil(() => server.clientCount === 1, 2000, 'the connection');
    await client.close();
  });

  it('every subscription ends when the connection closes, before the user handleClose runs', async () => {
    const seen: { topics: number; subscribers: number; topicCount: number }[] = [];
    const { server, port, conns } = await tickServer();
    server.handleClose((conn) => seen.push({ topics: conn.topics.size, subscribers: server.subscriberCount('ticks'), topicCount: server.topicCount }));
    const a = await rawSubscriber(port, server, 1);
    await rawSubscriber(port, server, 2);
    conns[0]!.subscribe('only-a');
    a.destroy();
    await waitUntil(() => seen.length === 1, 2000, 'handleClose');
    expect(seen[0]).toEqual({ topics: 0, subscribers: 1, topicCount: 1 });
    expect(conns[0]!.subscribe('late')).toBe(false);
    expect(server.topicCount).toBe(1);
  });
});

describe('server.publish()', () => {
  it('reaches the subscribers only, once each, in order per connection', async () => {
    const { server, port, conns } = await tickServer();
    const subs = [await rawSubscriber(port, server, 1), await rawSubscriber(port, server, 2)];
    const other = await rawSubscriber(port, server, 3);
    // The third connection subscribed too (handleOpen): take it out.
    expect(conns[2]!.unsubscribe('ticks')).toBe(true);
    expect(server.subscriberCount('ticks')).toBe(2);
    for (let i = 0; i < 200; i++) expect(server.publish('ticks', `t${i}`)).toEqual({ queued: 2, conflated: 0, dropped: 0, closed: 0 });
    expect(server.publish('nobody', 'x')).toEqual({ queued: 0, conflated: 0, dropped: 0, closed: 0 });
    expect(server.topicCount).toBe(1); // publishing creates no topic
    await waitUntil(() => subs.every((c) => texts(c).length === 200), 3000, '200 ticks each');
    const expected = Array.from({ length: 200 }, (_, i) => `t${i}`);
    for (const c of subs) expect(texts(c)).toEqual(expected);
    await sleep(20);
    expect(other.frames()).toEqual([]);
    expect(server.stats).toMatchObject({ published: 201, queued: 400, delivered: 400, dropped: 0, conflated: 0, closedForSlowness: 0 });
  });

  it('frames the message once: every subscriber is handed the same Buffer', async () => {
    const { server, port } = await tickServer();
    for (let i = 1; i <= 5; i++) await rawSubscriber(port, server, i);
    // A server without deflate hands one frame to all the subscribers in one call (fanOutFrame).
    const spy = vi.spyOn(connInternals, 'fanOutFrame');
    expect(server.publish('ticks', Buffer.from([1, 2, 3]), { key: 'k' })).toEqual({ queued: 5, conflated: 0, dropped: 0, closed: 0 });
    expect(spy).toHaveBeenCalledTimes(1);
    const [targets, frame, , key] = spy.mock.calls[0]!;
    expect([...targets].length).toBe(5);
    expect(key).toBe('k');
    expect([...frame]).toEqual([0x82, 0x03, 1, 2, 3]);
  });

  it('isBinary forces the opcode', async () => {
    const { server, port } = await tickServer();
    const c = await rawSubscriber(port, server, 1);
    server.publish('ticks', 'as binary', { isBinary: true });
    server.publish('ticks', Buffer.from('as text'), { isBinary: false });
    await waitUntil(() => c.frames().length === 2, 2000, 'two frames');
    expect(c.frames().map((f) => [f.opcode, f.payload.toString()])).toEqual([
      [Opcode.Binary, 'as binary'],
      [Opcode.Text, 'as text'],
    ]);
  });
});

describe('a subscriber that stops reading, beside one that reads', () => {
  /** One slow subscriber (blocked writer) and one fast one; publish 100 messages, keyed by i % 4. */
  async function run(options: ServerOptionsInput): Promise<{
    server: Server;
    slow: RawClient;
    fast: RawClient;
    slowConn: Conn;
    results: { queued: number; conflated: number; dropped: number; closed: number };
  }> {
    const { server, port, conns } = await tickServer(options);
    const slow = await rawSubscriber(port, server, 1);
    const fast = await rawSubscriber(port, server, 2);
    const slowConn = conns[0]!;
    await stopReading(slow, slowConn);
    const results = { queued: 0, conflated: 0, dropped: 0, closed: 0 };
    for (let i = 0; i < 100; i++) {
      const r = server.publish('ticks', `m${i}`, { key: `k${i % 4}` });
      // Every publish is accounted for on every subscriber.
      expect(r.queued + r.conflated + r.dropped + r.closed).toBe(2);
      for (const k of ['queued', 'conflated', 'dropped', 'closed'] as const) results[k] += r[k];
      // Four at a time (four distinct keys), then let the writers run: the fast one keeps up.
      if (i % 4 === 3) await new Promise((r) => setImmediate(r));
    }
    // The fast subscriber receives every message, in order, whatever the slow one does.
    await waitUntil(() => texts(fast).length === 100, 3000, 'the fast subscriber');
    expect(texts(fast)).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
    return { server, slow, fast, slowConn, results };
  }

  it("drop-oldest: the slow one gets the newest messages that fit; the counts add up", async () => {
    const { slow, slowConn, results, server } = await run({ overflow: 'drop-oldest', maxQueuedFrames: 10 });
    expect(results).toEqual({ queued: 200, conflated: 0, dropped: 0, closed: 0 });
    expect(slowConn.dropped).toBe(90);
    await resume(slow, slowConn);
    expect(texts(slow)).toEqual(Array.from({ length: 10 }, (_, i) => `m${90 + i}`));
    expect(slowConn.messagesOut).toBe(slowConn.delivered + slowConn.dropped);
    expect(server.stats.dropped).toBe(90);
  });

  it('drop-newest: the slow one gets the oldest messages that fit', async () => {
    const { slow, slowConn, results } = await run({ overflow: 'drop-newest', maxQueuedFrames: 10 });
    expect(results).toEqual({ queued: 110, conflated: 0, dropped: 90, closed: 0 });
    await resume(slow, slowConn);
    expect(texts(slow)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
    expect(slowConn.dropped).toBe(90);
    expect(slowConn.messagesOut).toBe(slowConn.delivered);
  });

  it("wait: a publish never waits; a full outbox drops the message as drop-newest does", async () => {
    const { slow, slowConn, results } = await run({ overflow: 'wait', maxQueuedFrames: 10 });
    expect(results).toEqual({ queued: 110, conflated: 0, dropped: 90, closed: 0 });
    expect(slowConn.waitingWrites).toBe(0);
    await resume(slow, slowConn);
    expect(texts(slow)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
  });

  it('close: the slow one is closed with 1008, its backlog counted as unsent, and the server counts it', async () => {
    const { slowConn, results, server } = await run({ overflow: 'close', maxQueuedFrames: 10 });
    expect(results).toEqual({ queued: 110, conflated: 0, dropped: 0, closed: 90 });
    const info = await slowConn.closed;
    expect(info.error?.code).toBe(ErrorCode.OutboxFull);
    expect(info.unsent).toBe(10);
    expect(slowConn.messagesOut).toBe(slowConn.delivered + info.unsent);
    expect(server.stats.closedForSlowness).toBe(1);
    expect(server.subscriberCount('ticks')).toBe(1);
  });

  it('conflate: the slow one gets the latest value of each key, no backlog', async () => {
    const { slow, slowConn, results, server } = await run({ overflow: 'conflate', maxQueuedFrames: 10 });
    // The fast one queued all 100; the slow one queued the first of each of 4 keys, then replaced them.
    expect(results).toEqual({ queued: 104, conflated: 96, dropped: 0, closed: 0 });
    expect(slowConn.queuedFrames).toBe(4);
    expect(slowConn.conflated).toBe(96);
    await resume(slow, slowConn);
    expect(texts(slow)).toEqual(['m96', 'm97', 'm98', 'm99']);
    expect(slowConn.messagesOut).toBe(slowConn.delivered + slowConn.conflated);
    expect(server.stats.conflated).toBe(96);
  });

  it('conflate without keys, or with more keys than fit, drops the oldest', async () => {
    const { server, port, conns } = await tickServer({ overflow: 'conflate', maxQueuedFrames: 4 });
    const slow = await rawSubscriber(port, server, 1);
    const conn = conns[0]!;
    await stopReading(slow, conn);
    for (let i = 0; i < 10; i++) server.publish('ticks', `u${i}`);
    for (let i = 0; i < 10; i++) server.publish('ticks', `k${i}`, { key: `key${i}` });
    expect(conn.dropped).toBe(16);
    await resume(slow, conn);
    expect(texts(slow)).toEqual(['k6', 'k7', 'k8', 'k9']);
  });
});

describe('counters match what the clients received', () => {
  it('several rounds of stop / resume under conflate: messagesOut = delivered + dropped + conflated, and each client read `delivered` frames', async () => {
    const { server, port, conns } = await tickServer({ overflow: 'conflate', maxQueuedFrames: 32 });
    const clients = [await rawSubscriber(port, server, 1), await rawSubscriber(port, server, 2), await rawSubscriber(port, server, 3)];
    let published = 0;
    let total = { queued: 0, conflated: 0, dropped: 0, closed: 0 };
    for (let round = 0; round < 3; round++) {
      await stopReading(clients[round]!, conns[round]!);
      for (let i = 0; i < 300; i++) {
        const r = server.publish('ticks', `r${round}:${i}`, i % 3 === 0 ? undefined : { key: `k${i % 40}` });
        total = { queued: total.queued + r.queued, conflated: total.conflated + r.conflated, dropped: total.dropped + r.dropped, closed: total.closed + r.closed };
        published++;
      }
      await resume(clients[round]!, conns[round]!);
    }
    await Promise.all(clients.map((c, i) => resume(c, conns[i]!)));
    expect(total.queued + total.conflated + total.dropped + total.closed).toBe(published * 3);
    let fillers = 0;
    for (let i = 0; i < 3; i++) {
      const c = conns[i]!;
      const received = clients[i]!.frames().length;
      fillers += clients[i]!.frames().filter((f) => f.opcode === Opcode.Binary).length;
      expect(received).toBe(c.delivered);
      expect(c.messagesOut).toBe(c.delivered + c.dropped + c.conflated);
    }
    const st = server.stats;
    expect(st.published).toBe(published);
    // Every copy published is received, dropped or conflated (the fillers were direct writes).
    expect(published * 3).toBe(st.delivered - fillers + st.dropped + st.conflated);
    expect(st.conflated).toBe(total.conflated);
  });
});

describe('connections that come and go', () => {
  it('leave no topic entry behind after 10,000 connect/disconnect cycles', async () => {
    const server = new Server();
    server.handleOpen((conn) => {
      conn.subscribe('all');
      conn.subscribe(`room-${conn.id % 100}`);
      conn.subscribe(`user-${conn.id}`);
    });
    let closes = 0;
    server.handleClose(() => closes++);
    const req = {
      method: 'GET',
      httpVersion: '1.1',
      url: '/',
      headers: { host: 'localhost', upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' },
    } as unknown as IncomingMessage;
    const start = Date.now();
    const BATCH = 500;
    for (let done = 0; done < 10_000; done += BATCH) {
      const conns: Conn[] = [];
      for (let i = 0; i < BATCH; i++) {
        // In-process sockets: the 101 response goes nowhere that matters.
        const [socket, peer] = duplexPair();
        peer.resume();
        const conn = await server.upgrade(req, socket, Buffer.alloc(0));
        conns.push(conn!);
      }
      // 'all', 100 rooms (ids are consecutive), one topic per user.
      expect(server.topicCount).toBe(1 + 100 + BATCH);
      expect(server.subscriberCount('all')).toBe(BATCH);
      for (const c of conns) c.terminate();
      await Promise.all(conns.map((c) => c.closed));
      expect(server.topicCount).toBe(0);
    }
    expect(closes).toBe(10_000);
    expect(server.clientCount).toBe(0);
    expect(server.topicCount).toBe(0);
    expect(server.topics()).toEqual([]);
    expect(Date.now() - start).toBeLessThan(15_000);
    await server.close();
  });

  it('the registry forgets a connection once it has left its last topic', () => {
    const reg = new TopicRegistry<Conn>();
    const a = {} as Conn;
    const b = {} as Conn;
    reg.subscribe(a, 't1');
    reg.subscribe(a, 't2');
    reg.subscribe(b, 't1');
    expect([reg.size, reg.subscribedConns]).toEqual([2, 2]);
    reg.unsubscribe(a, 't2');
    reg.unsubscribeAll(b);
    expect([reg.size, reg.subscribedConns]).toEqual([1, 1]);
    reg.unsubscribe(a, 't1');
    expect([reg.size, reg.subscribedConns]).toEqual([0, 0]);
    expect(reg.topicsOf(a).size).toBe(0);
  });
});
