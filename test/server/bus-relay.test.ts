/**
 * The seam's two additions for buses that must not relay (a Redis adapter per worker thread):
 * `forward` is told which bus a message came in on, and `deliver(..., relay = false)` serves the
 * local subscribers without telling any bus.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Conn, type TopicBus } from '../../src/index.js';
import { closeAll, guardProcess, startServer, waitUntil } from '../helpers/net.js';

guardProcess();
afterEach(closeAll);

function recorder(name: string, log: string[]): TopicBus {
  const bus: TopicBus = {
    topicAdded() {},
    topicRemoved() {},
    forward(topic, data, _isBinary, _key, from) {
      log.push(`${name} <- ${topic ?? '*'} ${String(data)} from ${from === undefined ? 'app' : (names.get(from) ?? '?')}`);
    },
  };
  names.set(bus, name);
  return bus;
}
const names = new Map<TopicBus, string>();

describe('topic bus: origin and relay', () => {
  it('forward() names the bus a message came from (undefined for the application), and relay false reaches no bus', async () => {
    const conns: Conn[] = [];
    const { server, url } = await startServer(undefined, (s) => s.handleOpen((c) => void conns.push(c)));
    const client = await connect(url);
    await waitUntil(() => conns.length === 1, 2000, 'one connection');
    conns[0]!.subscribe('t');
    const log: string[] = [];
    const threads = recorder('threads', log);
    const redis = recorder('redis', log);
    server.attachBus(threads);
    server.attachBus(redis);
    server.publish('t', 'a');
    server.deliver('t', 'b', undefined, threads);
    expect(server.deliver('t', 'c', undefined, redis, false).queued).toBe(1);
    expect(log).toEqual(['threads <- t a from app', 'redis <- t a from app', 'redis <- t b from threads']);
    const got: string[] = [];
    for await (const m of client) {
      got.push(m.data.toString());
      if (got.length === 3) break;
    }
    expect(got).toEqual(['a', 'b', 'c']);
    await client.close();
  });
});
