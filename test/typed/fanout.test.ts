/**
 * Typed publishing: a message is serialized once and handed to `Server.publish` as JSON text, so
 * conflation keys derived from the message work, and a topic bus (the seam of the thread and
 * Redis fan-out, src/server/bus.ts) carries it unchanged to another server whose clients receive
 * it as the same typed message.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Conn, TopicBus } from '../../src/index.js';
import { TypedClient, TypedServer } from '../../src/typed/index.js';
import { closeAll, guardProcess, startServer, waitUntil } from '../helpers/net.js';
import { testProtocol } from './fixtures-protocol.js';

guardProcess();
afterEach(closeAll);

describe('typed messages: publish, conflation, topic buses', () => {
  it("keys derived from the message conflate under 'conflate': a slow subscriber gets the latest price of each symbol", async () => {
    const opened: Conn[] = [];
    let typed!: TypedServer<typeof testProtocol>;
    await startServer({ overflow: 'conflate' }, (s) => {
      typed = new TypedServer(s, testProtocol, { keys: { price: (m) => m.symbol } });
      s.handleOpen((c) => void (c.subscribe('prices'), opened.push(c)));
    });
    const prices: string[] = [];
    const client = new TypedClient(testProtocol).handleMessage('price', (_c, m) => void prices.push(`${m.symbol}=${m.px}`));
    const conn = await client.connect(`ws://127.0.0.1:${typed.server.address()!.port}`);
    await waitUntil(() => opened.length === 1, 2000, 'the subscription');
    // Within one turn of the event loop nothing is written yet: same-key messages replace each other.
    const results = [1, 2, 3].map((px) => typed.publish('prices', 'price', { symbol: 'EURUSD', px }));
    results.push(typed.publish('prices', 'price', { symbol: 'GBPUSD', px: 9 }));
    expect(results.map((r) => (r.conflated ? 'conflated' : r.queued ? 'queued' : 'other'))).toEqual(['queued', 'conflated', 'conflated', 'queued']);
    await waitUntil(() => prices.length === 2, 2000, 'two prices');
    expect(prices).toEqual(['EURUSD=3', 'GBPUSD=9']);
    expect(opened[0]!.conflated).toBe(2);
    expect(typed.stats.sent.price).toBe(4);
    await conn.close();
  });

  it('a published typed message travels a topic bus as the JSON text it was serialized to, with its key, and arrives typed on the other server', async () => {
    const forwarded: Array<[string | undefined, string, boolean, string | undefined]> = [];
    const opened: Conn[] = [];
    const a = await startServer();
    const b = await startServer(undefined, (s) => s.handleOpen((c) => void (c.subscribe('prices'), opened.push(c))));
    const typedA = new TypedServer(a.server, testProtocol, { keys: { price: (m) => m.symbol } });
    // A bus from A to B, as a thread or Redis bus would carry it (it copies what it keeps).
    const toB: TopicBus = {
      topicAdded: () => {},
      topicRemoved: () => {},
      forward: (topic, data, isBinary, key) => {
        const text = typeof data === 'string' ? data : Buffer.from(data).toString();
        forwarded.push([topic, text, isBinary, key]);
        b.server.deliver(topic, text, { isBinary, key }, undefined);
      },
    };
    a.server.attachBus(toB);
    const got: string[] = [];
    const client = new TypedClient(testProtocol).handleMessage('price', (_c, m) => void got.push(`${m.symbol}=${m.px}`));
    const conn = await client.connect(b.url);
    await waitUntil(() => opened.length === 1, 2000, 'the subscription on B');
    typedA.publish('prices', 'price', { symbol: 'EURUSD', px: 1.08 });
    expect(forwarded).toEqual([['prices', '{"t":"price","d":{"symbol":"EURUSD","px":1.08}}', false, 'price:EURUSD']]);
    await waitUntil(() => got.length === 1, 2000, 'the price on B');
    expect(got).toEqual(['EURUSD=1.08']);
    expect(client.stats.received.price).toBe(1);
    await conn.close();
  });

  it('broadcast and publishTo send typed messages to every connection / the chosen ones', async () => {
    const opened: Conn[] = [];
    let typed!: TypedServer<typeof testProtocol>;
    const { url } = await startServer(undefined, (s) => {
      typed = new TypedServer(s, testProtocol);
      s.handleOpen((c) => void opened.push(c));
    });
    const got: string[] = [];
    const client = new TypedClient<typeof testProtocol, string>(testProtocol)
      .handleMessage('done', (c) => void got.push(`${c.data}:done`))
      .handleMessage('said', (c, m) => void got.push(`${c.data}:${m.text}`));
    const one = await client.connect(url, { data: 'one' });
    const two = await client.connect(url, { data: 'two' });
    await waitUntil(() => opened.length === 2, 2000, 'two connections');
    expect(typed.broadcast('done', null).queued).toBe(2);
    expect(typed.publishTo([opened[1]!], 'said', { from: 0, text: 'only you' }).queued).toBe(1);
    await waitUntil(() => got.length === 3, 2000, 'three messages');
    expect(got.sort()).toEqual(['one:done', 'two:done', 'two:only you']);
    await Promise.all([one.close(), two.close()]);
  });
});
