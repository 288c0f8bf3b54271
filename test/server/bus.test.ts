/**
 * The topic-bus seam (src/server/bus.ts) that the thread bus and the Redis adapter plug into: a bus
 * hears of the first subscriber and the last unsubscribe of each topic, and of every publish and
 * broadcast; `deliver` fans out locally and forwards to every bus but the one a message came from.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Conn, type TopicBus } from '../../src/index.js';
import { closeAll, guardProcess, startServer, waitUntil } from '../helpers/net.js';

guardProcess();
afterEach(closeAll);

class RecordingBus implements TopicBus {
  readonly events: string[] = [];
  topicAdded(topic: string): void {
    this.events.push(`+${topic}`);
  }
  topicRemoved(topic: string): void {
    this.events.push(`-${topic}`);
  }
  forward(topic: string | undefined, data: string | Uint8Array, isBinary: boolean, key: string | undefined): void {
    this.events.push(`fwd ${topic ?? '*'} ${Buffer.from(data).toString()} ${isBinary ? 'bin' : 'text'}${key === undefined ? '' : ` key=${key}`}`);
  }
}

describe('topic bus', () => {
  it('is told of the first subscriber and the last unsubscribe of a topic, and of live topics on attach', async () => {
    const conns: Conn[] = [];
    const { server, url } = await startServer(undefined, (s) => s.handleOpen((c) => void conns.push(c)));
    const a = await connect(url);
    const b = await connect(url);
    await waitUntil(() => conns.length === 2, 2000, 'two connections');
    conns[0]!.subscribe('early');
    const bus = new RecordingBus();
    server.attachBus(bus);
    expect(bus.events).toEqual(['+early']);
    conns[0]!.subscribe('t');
    conns[1]!.subscribe('t');
    conns[0]!.unsubscribe('t');
    expect(bus.events).toEqual(['+early', '+t']);
    conns[1]!.unsubscribe('t');
    expect(bus.events).toEqual(['+early', '+t', '-t']);
    conns[1]!.subscribe('gone-on-close');
    await b.close();
    await waitUntil(() => bus.events.includes('-gone-on-close'), 2000, 'the closing connection leaves its topic');
    await a.close();
  });

  it('forwards publish and broadcast, and deliver() reaches local subscribers without echoing to the bus it came from', async () => {
    const conns: Conn[] = [];
    const { server, url } = await startServer(undefined, (s) => s.handleOpen((c) => void conns.push(c)));
    const client = await connect(url);
    await waitUntil(() => conns.length === 1, 2000, 'one connection');
    conns[0]!.subscribe('news');
    const from = new RecordingBus();
    const other = new RecordingBus();
    server.attachBus(from);
    const att = server.attachBus(other);
    expect(server.publish('news', 'one', { key: 'k' }).queued).toBe(1);
    server.broadcast(Buffer.from('two'));
    expect(server.deliver('news', 'three', undefined, from).queued).toBe(1);
    expect(from.events).toEqual(['+news', 'fwd news one text key=k', 'fwd * two bin']);
    expect(other.events).toEqual(['+news', 'fwd news one text key=k', 'fwd * two bin', 'fwd news three text']);
    att.detach();
    att.detach();
    server.publish('news', 'four');
    expect(other.events.length).toBe(4);
    const got: string[] = [];
    for await (const m of client) {
      got.push(m.data.toString());
      if (got.length === 4) break;
    }
    expect(got).toEqual(['one', 'two', 'three', 'four']);
    await client.close();
  });
});
