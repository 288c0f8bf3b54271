/**
 * Conn, overflow policy 'conflate': a published message with a key replaces the unsent message
 * with the same key in the outbox (no growth), so a peer that stops reading gets the latest value
 * of each key instead of a backlog. Without a key, or with a key that matches nothing queued, a
 * full outbox behaves as under 'drop-oldest'. Control frames are never dropped or conflated.
 *
 * Accounting, once the outbox is empty: messagesOut = delivered + evicted + conflated, and the
 * peer receives exactly `delivered` data frames.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connInternals } from '../../src/conn/conn.js';
import { Opcode, encodeFrame } from '../../src/protocol/index.js';
import { blockWriter, blocked, destroyAll, open, sleep, turn, waitUntil, type Setup } from './helpers.js';

afterEach(destroyAll);

function frame(text: string): Buffer {
  return encodeFrame(Opcode.Text, Buffer.from(text));
}

function texts(s: Setup<undefined>): string[] {
  return s.peer.dataFrames.filter((f) => f.opcode === Opcode.Text).map((f) => f.payload.toString());
}

/** Resume the peer and wait until it has every frame the Conn handed to its socket. */
async function drain(s: Setup<undefined>): Promise<void> {
  s.peer.resume();
  await sleep(10);
  await s.peer.waitFrames(s.conn.delivered, (f) => f.opcode < 0x8);
  expect(s.conn.queuedFrames).toBe(0);
}

describe("overflow 'conflate'", () => {
  it('a keyed message replaces the unsent one with the same key, in place: the outbox does not grow', async () => {
    const s = await blocked({ overflow: 'conflate' });
    const { conn } = s;
    expect(connInternals.tryWriteFrame(conn, frame('A1'), 2, 'A')).toBe('queued');
    expect(connInternals.tryWriteFrame(conn, frame('B1'), 2, 'B')).toBe('queued');
    for (let i = 2; i <= 50; i++) {
      expect(connInternals.tryWriteFrame(conn, frame(`A${i}`), 2 + String(i).length - 1, 'A')).toBe('conflated');
      expect(connInternals.tryWriteFrame(conn, frame(`B${i}`), 2 + String(i).length - 1, 'B')).toBe('conflated');
    }
    expect(conn.queuedFrames).toBe(2);
    expect(conn.conflated).toBe(98);
    expect(conn.dropped).toBe(0);
    await drain(s);
    // The latest value of each key, in the order the keys first arrived.
    expect(texts(s)).toEqual(['A50', 'B50']);
    expect(conn.delivered).toBe(s.fillers + 2);
    expect(conn.messagesOut).toBe(conn.delivered + conn.conflated);
  });

  it('keeps the byte count right when the replacement is larger or smaller', async () => {
    const s = await blocked({ overflow: 'conflate' });
    const { conn } = s;
    connInternals.tryWriteFrame(conn, frame('x'.repeat(10)), 10, 'k');
    conn.tryWrite('other');
    expect(conn.queuedBytes).toBe(15);
    expect(connInternals.tryWriteFrame(conn, frame('y'.repeat(30)), 30, 'k')).toBe('conflated');
    expect(conn.queuedBytes).toBe(35);
    expect(connInternals.tryWriteFrame(conn, frame('z'), 1, 'k')).toBe('conflated');
    expect(conn.queuedBytes).toBe(6);
    await drain(s);
    expect(texts(s)).toEqual(['z', 'other']);
  });

  it('a payload it frames itself (tryPublish) conflates the same way', async () => {
    const s = await blocked({ overflow: 'conflate' });
    const { conn } = s;
    expect(connInternals.tryPublish(conn, Buffer.from('p1'), false, 'p')).toBe('queued');
    expect(connInternals.tryWriteFrame(conn, frame('p2'), 2, 'p')).toBe('conflated');
    expect(connInternals.tryPublish(conn, Buffer.from('p3'), false, 'p')).toBe('conflated');
    await drain(s);
    expect(texts(s)).toEqual(['p3']);
  });

  it('a full outbox with no entry of the same key drops the oldest, keyed or not', async () => {
    const s = await blocked({ overflow: 'conflate', maxQueuedFrames: 3 });
    const { conn } = s;
    expect(connInternals.tryWriteFrame(conn, frame('a'), 1, 'a')).toBe('queued');
    expect(conn.tryWrite('plain1')).toBe('queued');
    expect(connInternals.tryWriteFrame(conn, frame('b'), 1, 'b')).toBe('queued');
    // Full: a new key evicts the oldest ('a').
    expect(connInternals.tryWriteFrame(conn, frame('c'), 1, 'c')).toBe('queued');
    expect(conn.dropped).toBe(1);
    // 'a' was evicted: a new 'a' is a new message, not a replacement, and evicts 'plain1'.
    expect(connInternals.tryWriteFrame(conn, frame('a2'), 2, 'a')).toBe('queued');
    expect(conn.dropped).toBe(2);
    // No key: as drop-oldest (evicts 'b'); write() resolves queued.
    await expect(conn.write('plain2')).resolves.toBe('queued');
    expect(conn.dropped).toBe(3);
    // 'c' is still queued: replaced, no eviction.
    expect(connInternals.tryWriteFrame(conn, frame('c2'), 2, 'c')).toBe('conflated');
    expect(conn.queuedFrames).toBe(3);
    await drain(s);
    expect(texts(s)).toEqual(['c2', 'a2', 'plain2']);
    expect(conn.messagesOut).toBe(conn.delivered + conn.dropped + conn.conflated);
  });

  it('a replacement that would take the outbox over its byte budget is queued as a new message', async () => {
    const s = await blocked({ overflow: 'conflate', maxQueuedBytes: 20 });
    const { conn } = s;
    conn.tryWrite('o'.repeat(10));
    connInternals.tryWriteFrame(conn, frame('k'.repeat(5)), 5, 'k');
    // 15 - 5 + 12 = 22 > 20: no replacement. The full outbox drops the oldest ('o'), then has room.
    expect(connInternals.tryWriteFrame(conn, frame('K'.repeat(12)), 12, 'k')).toBe('queued');
    expect(conn.conflated).toBe(0);
    expect(conn.dropped).toBe(1);
    expect(conn.queuedBytes).toBe(17);
    // The newest entry of the key is the one a later message replaces.
    expect(connInternals.tryWriteFrame(conn, frame('L'), 1, 'k')).toBe('conflated');
    await drain(s);
    expect(texts(s)).toEqual(['k'.repeat(5), 'L']);
  });

  it('keys are forgotten once their message is written: the next one is queued, not conflated', async () => {
    const s = await open({ options: { overflow: 'conflate' } });
    const { conn } = s;
    expect(connInternals.tryWriteFrame(conn, frame('t1'), 2, 't')).toBe('queued');
    expect(connInternals.tryWriteFrame(conn, frame('t2'), 2, 't')).toBe('conflated'); // same turn: not written yet
    await turn();
    expect(connInternals.tryWriteFrame(conn, frame('t3'), 2, 't')).toBe('queued');
    await s.peer.waitFrames(2);
    expect(texts(s)).toEqual(['t2', 't3']);
    expect(conn.delivered).toBe(2);
    expect(conn.conflated).toBe(1);
  });

  it('under the other policies a key is ignored: every message takes its own place', async () => {
    for (const overflow of ['drop-oldest', 'drop-newest', 'close', 'wait'] as const) {
      const s = await blocked({ overflow });
      expect(connInternals.tryWriteFrame(s.conn, frame('v1'), 2, 'k')).toBe('queued');
      expect(connInternals.tryWriteFrame(s.conn, frame('v2'), 2, 'k')).toBe('queued');
      expect(s.conn.queuedFrames).toBe(2);
      expect(s.conn.conflated).toBe(0);
      await drain(s);
      expect(texts(s)).toEqual(['v1', 'v2']);
    }
  });

  it('control frames are never dropped or conflated', async () => {
    const s = await blocked({ overflow: 'conflate', maxQueuedFrames: 2 });
    const { conn, peer } = s;
    for (let i = 0; i < 5; i++) {
      expect(conn.ping(`p${i}`)).toBe(true);
      connInternals.tryWriteFrame(conn, frame(`k${i}`), 2, 'k');
      conn.tryWrite(`n${i}`);
    }
    await drain(s);
    const pings = peer.frames.filter((f) => f.opcode === Opcode.Ping).map((f) => f.payload.toString());
    expect(pings).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
    expect(texts(s)).toEqual(['k4', 'n4']);
    expect(conn.messagesOut).toBe(conn.delivered + conn.dropped + conn.conflated);
  });

  it('counts match what the peer received, on a peer that reads slowly', async () => {
    const s = await open({ options: { overflow: 'conflate', maxQueuedFrames: 16 } });
    const { conn, peer } = s;
    const keys = ['EURUSD', 'GBPUSD', 'USDJPY'];
    let offered = 0;
    for (let round = 0; round < 5; round++) {
      peer.pause();
      await blockWriter(conn, 256 * 1024);
      for (let i = 0; i < 200; i++) {
        const k = keys[i % 3]!;
        const r = connInternals.tryWriteFrame(conn, frame(`${k}:${round}:${i}`), 8, k);
        expect(r === 'queued' || r === 'conflated').toBe(true);
        offered++;
        if (i % 7 === 0) {
          conn.tryWrite(`note:${round}:${i}`);
          offered++;
        }
      }
      peer.resume();
      await waitUntil(() => conn.queuedFrames === 0 && conn.socketBufferedBytes === 0, 'the peer to catch up');
    }
    await drain(s);
    const data = peer.dataFrames;
    expect(data.length).toBe(conn.delivered);
    const fillers = data.filter((f) => f.opcode === Opcode.Binary).length;
    // Every message offered is delivered, dropped (evicted) or conflated; none is lost silently.
    expect(offered + fillers).toBe(conn.delivered + conn.dropped + conn.conflated);
    expect(conn.messagesOut).toBe(conn.delivered + conn.dropped + conn.conflated);
    // The last message offered got through, and no key was sent twice in the last round.
    const last = texts(s).filter((t) => t.includes(':4:') && !t.startsWith('note'));
    expect(last).toContain(`${keys[199 % 3]}:4:199`);
    expect(new Set(last.map((t) => t.split(':')[0])).size).toBe(last.length);
  });
});

describe("'conflate' and 'drop-oldest' beside a naive model", () => {
  /** The policy as a plain array: replace the same key in place, else drop the oldest when full. */
  function model(ops: [string | undefined, string][], maxFrames: number): { queue: string[]; dropped: number; conflated: number } {
    const q: { key: string | undefined; text: string }[] = [];
    let dropped = 0;
    let conflated = 0;
    for (const [key, text] of ops) {
      const i = key === undefined ? -1 : q.findIndex((e) => e.key === key);
      if (i >= 0) {
        q[i]!.text = text;
        conflated++;
        continue;
      }
      while (q.length >= maxFrames) {
        q.shift();
        dropped++;
      }
      q.push({ key, text });
    }
    return { queue: q.map((e) => e.text), dropped, conflated };
  }

  it('agree on 20,000 seeded writes to a blocked writer (the outbox compacts its dropped slots many times)', async () => {
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const keys = ['a', 'b', 'c', 'd', undefined, undefined, undefined];
    const ops: [string | undefined, string][] = [];
    for (let i = 0; i < 20_000; i++) ops.push([keys[rand(keys.length)], `m${i}`]);
    const s = await blocked({ overflow: 'conflate', maxQueuedFrames: 8 });
    const { conn } = s;
    for (const [key, text] of ops) {
      const r = key === undefined ? conn.tryWrite(text) : connInternals.tryWriteFrame(conn, frame(text), text.length, key);
      expect(r === 'queued' || r === 'conflated').toBe(true);
    }
    const m = model(ops, 8);
    expect([conn.dropped, conn.conflated, conn.queuedFrames]).toEqual([m.dropped, m.conflated, m.queue.length]);
    await drain(s);
    expect(texts(s)).toEqual(m.queue);
    expect(conn.messagesOut).toBe(conn.delivered + conn.dropped + conn.conflated);
  });

  it('drop-oldest keeps the newest messages after many compactions', async () => {
    const s = await blocked({ overflow: 'drop-oldest', maxQueuedFrames: 5 });
    for (let i = 0; i < 10_000; i++) s.conn.tryWrite(`d${i}`);
    expect(s.conn.dropped).toBe(9995);
    await drain(s);
    expect(texts(s)).toEqual(['d9995', 'd9996', 'd9997', 'd9998', 'd9999']);
  });
});
