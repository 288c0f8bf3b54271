/**
 * Conn, a peer that does not read: the outbox fills, and the overflow policy decides (DESIGN.md
 * "Channels and backpressure"). The peer's socket is paused and the kernel buffers are filled with
 * big writes first, so that the Conn's writer is really blocked waiting for 'drain'.
 *
 * The caller can always tell what happened, memory stays bounded, and nothing handed to write()
 * disappears silently: it is written, or the promise rejects, or CloseInfo.unsent counts it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connInternals, type Conn } from '../../src/conn/conn.js';
import { ConnectionError, ErrorCode, Opcode, encodeFrame } from '../../src/protocol/index.js';
import {
  blocked,
  closeBody,
  destroyAll,
  expectError,
  rejectionOf,
  sleep,
  track,
  turn,
  waitUntil,
  withTimeout,
  type Setup,
} from './helpers.js';

afterEach(destroyAll);

function texts(s: Setup<undefined>): string[] {
  return s.peer.dataFrames.filter((f) => f.opcode === Opcode.Text).map((f) => f.payload.toString());
}

describe("overflow 'wait' (the default)", () => {
  it('write() waits while the outbox is full and resolves queued, in order, once the peer reads', async () => {
    const s = await blocked({ maxQueuedFrames: 4 });
    const { conn, peer } = s;
    const first = [0, 1, 2, 3].map((i) => track(conn.write(`m${i}`)));
    await turn();
    expect(first.map((t) => t.value)).toEqual(['queued', 'queued', 'queued', 'queued']);
    expect(conn.queuedFrames).toBe(4);
    const waiting = [4, 5].map((i) => track(conn.write(`m${i}`)));
    await sleep(30);
    expect(waiting.map((t) => t.state)).toEqual(['pending', 'pending']);
    expect(conn.waitingWrites).toBe(2);

    peer.resume();
    await withTimeout(Promise.all(waiting.map((t) => t.promise)), 'the waiting writes');
    expect(waiting.map((t) => t.value)).toEqual(['queued', 'queued']);
    await peer.waitFrames(s.fillers + 6);
    expect(texts(s)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    expect(conn.dropped).toBe(0);
  });

  it("tryWrite answers 'full' and queues nothing while the outbox is full", async () => {
    const { conn } = await blocked({ maxQueuedFrames: 2 });
    expect(conn.tryWrite('a')).toBe('queued');
    expect(conn.tryWrite('b')).toBe('queued');
    expect(conn.tryWrite('c')).toBe('full');
    expect(conn.queuedFrames).toBe(2);
    expect(conn.dropped).toBe(0);
  });

  it('a write does not overtake writes already waiting, even when it would fit', async () => {
    const s = await blocked({ maxQueuedFrames: 1000, maxQueuedBytes: 100 });
    const { conn, peer } = s;
    conn.write('x'.repeat(90));
    const big = track(conn.write('y'.repeat(50))); // does not fit: waits
    expect(conn.tryWrite('z')).toBe('full'); // would fit in bytes, but someone is waiting
    const small = track(conn.write('z'));
    await turn();
    expect([big.state, small.state]).toEqual(['pending', 'pending']);
    peer.resume();
    await withTimeout(Promise.all([big.promise, small.promise]), 'the waiting writes');
    await peer.waitFrames(s.fillers + 3);
    expect(texts(s).map((t) => t[0])).toEqual(['x', 'y', 'z']);
  });

  it('the writes waiting for room are bounded by maxWaiters: the next is refused with WS_ERR_TOO_MANY_WAITERS', async () => {
    const { conn } = await blocked({ maxQueuedFrames: 1, maxWaiters: 2 });
    conn.write('q');
    const w1 = track(conn.write('w1'));
    const w2 = track(conn.write('w2'));
    const err = await rejectionOf(conn.write('w3'));
    expectError(err, ConnectionError, ErrorCode.TooManyWaiters, undefined, 'more than 2 writes waiting for room in the outbox');
    expect(conn.waitingWrites).toBe(2);
    expect([w1.state, w2.state]).toEqual(['pending', 'pending']);
    expect(conn.state).toBe('open');
  });

  it('writes still waiting when the connection is destroyed reject WS_ERR_CONNECTION_CLOSED, and unsent counts them with the queued ones', async () => {
    const { conn, rec } = await blocked({ maxQueuedFrames: 3 });
    for (let i = 0; i < 3; i++) conn.write(`q${i}`);
    const waiting = [track(conn.write('w0')), track(conn.write('w1'))];
    await turn();
    conn.terminate();
    for (const w of waiting) expectError(await rejectionOf(w.promise), ConnectionError, ErrorCode.ConnectionClosed, undefined, 'connection is closed');
    const info = await withTimeout(conn.closed, 'closed');
    expect(info).toMatchObject({ code: 1006, wasClean: false, unsent: 5 });
    expect(rec.closes).toEqual([info]);
  });

  it('close() rejects the waiting writes at once; queued data waits for the Close frame, and a closeTimeout counts it unsent', async () => {
    const { conn, rec } = await blocked({ maxQueuedFrames: 2, closeTimeout: 100 });
    conn.write('q0');
    conn.write('q1');
    const waiting = [track(conn.write('w0')), track(conn.write('w1')), track(conn.write('w2'))];
    await turn();
    conn.close(1000, 'done');
    await turn();
    for (const w of waiting) {
      expectError(await rejectionOf(w.promise), ConnectionError, ErrorCode.ConnectionClosed, undefined, 'connection is closing');
    }
    expect(conn.queuedFrames).toBe(2);
    const info = await withTimeout(conn.closed, 'closed after closeTimeout');
    expect(info.unsent).toBe(5);
    expect(info.wasClean).toBe(false);
    expect(info.code).toBe(1006);
    expectError(info.error, ConnectionError, ErrorCode.CloseTimeout, 1006, 'closing handshake not completed within 100 ms');
    expect(rec.closes.length).toBe(1);
  });

  it('oldestQueuedAge grows while the writer is blocked, and is 0 once the outbox is written', async () => {
    const s = await blocked({});
    const { conn, peer } = s;
    conn.write('old');
    await sleep(40);
    const a = conn.oldestQueuedAge;
    expect(a).toBeGreaterThanOrEqual(30);
    conn.write('new');
    await sleep(40);
    const b = conn.oldestQueuedAge;
    expect(b).toBeGreaterThanOrEqual(a + 30);
    peer.resume();
    await peer.waitFrames(s.fillers + 2);
    expect(conn.oldestQueuedAge).toBe(0);
    expect(conn.queuedFrames).toBe(0);
  });
});

describe("overflow 'drop-newest'", () => {
  it("a message that does not fit is dropped: write resolves 'dropped', tryWrite answers 'dropped', conn.dropped counts", async () => {
    const s = await blocked({ overflow: 'drop-newest', maxQueuedFrames: 2 });
    const { conn, peer } = s;
    expect(await conn.write('keep0')).toBe('queued');
    expect(await conn.write('keep1')).toBe('queued');
    expect(await conn.write('lost0')).toBe('dropped');
    expect(conn.tryWrite('lost1')).toBe('dropped');
    expect(conn.dropped).toBe(2);
    expect(conn.queuedFrames).toBe(2);
    expect(conn.waitingWrites).toBe(0);
    peer.resume();
    await peer.waitFrames(s.fillers + 2);
    await sleep(20);
    expect(texts(s)).toEqual(['keep0', 'keep1']);
  });
});

describe("overflow 'drop-oldest'", () => {
  it('the oldest queued data is dropped to make room; the newest is delivered; conn.dropped counts', async () => {
    const s = await blocked({ overflow: 'drop-oldest', maxQueuedFrames: 3 });
    const { conn, peer } = s;
    for (let i = 0; i < 6; i++) expect(await conn.write(`m${i}`)).toBe('queued');
    expect(conn.tryWrite('m6')).toBe('queued');
    expect(conn.dropped).toBe(4);
    expect(conn.queuedFrames).toBe(3);
    expect(conn.queuedBytes).toBe(6);
    peer.resume();
    await peer.waitFrames(s.fillers + 3);
    await sleep(20);
    expect(texts(s)).toEqual(['m4', 'm5', 'm6']);
  });

  it('drops as many old messages as the byte budget needs, and never a control frame (a pong still goes out)', async () => {
    const s = await blocked({ overflow: 'drop-oldest', maxQueuedBytes: 100 });
    const { conn, peer } = s;
    for (let i = 0; i < 5; i++) conn.write(`${i}`.repeat(20)); // 100 bytes
    peer.send(Opcode.Ping, 'still there?');
    await waitUntil(() => s.rec.pings.length === 1, 'the ping');
    conn.write('n'.repeat(70)); // needs 70 bytes: drops the 4 oldest
    expect(conn.dropped).toBe(4);
    expect(conn.queuedBytes).toBe(90);
    peer.resume();
    await peer.waitFrames(s.fillers + 2);
    await peer.waitFrame(Opcode.Pong);
    expect(texts(s)).toEqual(['4'.repeat(20), 'n'.repeat(70)]);
    expect((await peer.waitFrame(Opcode.Pong)).payload.toString()).toBe('still there?');
  });
});

describe("overflow 'close'", () => {
  for (const code of [1008, 1013] as const) {
    it(`a full outbox closes the connection with overflowCloseCode ${code}; the write rejects WS_ERR_OUTBOX_FULL`, async () => {
      const s = await blocked({ overflow: 'close', overflowCloseCode: code, maxQueuedFrames: 2 });
      const { conn, peer, rec } = s;
      conn.write('a');
      conn.write('b');
      const err = await rejectionOf(conn.write('c'));
      expectError(err, ConnectionError, ErrorCode.OutboxFull, code, 'outbox full: the peer is not reading fast enough');
      expect(rec.errors).toEqual([err]);
      expect(conn.state).toBe('closing');
      expect(conn.tryWrite('d')).toBe('closed');

      peer.resume();
      const close = await peer.waitFrame(Opcode.Close);
      expect(closeBody(close)).toEqual({ code, reason: 'slow consumer' });
      await peer.waitEnd();
      const info = await withTimeout(conn.closed, 'closed');
      expect(info).toMatchObject({ code, wasClean: false, unsent: 2 });
      expect(info.error).toBe(err);
      // The queued data was discarded, not sent after the failure.
      expect(texts(s)).toEqual([]);
      expect(rec.closes).toEqual([info]);
    });
  }

  it("tryWrite on a full outbox under 'close' answers 'closed' and closes the connection", async () => {
    const { conn, rec } = await blocked({ overflow: 'close', maxQueuedFrames: 1 });
    conn.write('a');
    expect(conn.tryWrite('b')).toBe('closed');
    expect(conn.state).toBe('closing');
    expectError(rec.errors[0], ConnectionError, ErrorCode.OutboxFull, 1008, 'outbox full');
  });
});

describe('bounded memory', () => {
  async function fillRandom(conn: Conn<undefined>, max: number): Promise<void> {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      const size = 1 + rand(3000);
      const r = conn.tryWrite(Buffer.alloc(size));
      expect(['queued', 'full', 'dropped']).toContain(r);
      expect(conn.queuedBytes).toBeLessThanOrEqual(max);
    }
  }

  for (const overflow of ['wait', 'drop-newest', 'drop-oldest'] as const) {
    it(`queuedBytes never exceeds maxQueuedBytes under '${overflow}' with a peer that never reads`, async () => {
      const { conn } = await blocked({ overflow, maxQueuedBytes: 10_000, maxQueuedFrames: 1_000_000 });
      await fillRandom(conn, 10_000);
      expect(conn.queuedBytes).toBeGreaterThan(5_000);
    });
  }

  it('queuedFrames never exceeds maxQueuedFrames, and write() waiters never exceed maxWaiters', async () => {
    const { conn } = await blocked({ maxQueuedFrames: 8, maxWaiters: 4 });
    const results = Array.from({ length: 100 }, (_, i) => track(conn.write(`${i}`)));
    await turn();
    expect(conn.queuedFrames).toBe(8);
    expect(conn.waitingWrites).toBe(4);
    expect(results.filter((r) => r.state === 'rejected').length).toBe(88);
    conn.terminate();
  });

  it('a message bigger than maxQueuedBytes is still sent when the outbox is empty (at most one message over the budget)', async () => {
    const s = await blocked({ maxQueuedBytes: 1000 });
    const { conn, peer } = s;
    expect(conn.tryWrite(Buffer.alloc(5000, 1))).toBe('queued');
    expect(conn.queuedBytes).toBe(5000);
    expect(conn.tryWrite(Buffer.alloc(1, 2))).toBe('full');
    peer.resume();
    const frames = await peer.waitFrames(s.fillers + 1);
    expect(frames.at(-1)!.payload.equals(Buffer.alloc(5000, 1))).toBe(true);
  });
});

describe('broadcast frames', () => {
  it("a pre-encoded frame never waits: under 'wait' a full outbox drops it and counts it", async () => {
    const s = await blocked({ maxQueuedFrames: 1 });
    const { conn, peer } = s;
    const frame = encodeFrame(Opcode.Text, Buffer.from('news'));
    expect(connInternals.tryWriteFrame(conn, frame, 4)).toBe('queued');
    expect(connInternals.tryWriteFrame(conn, frame, 4)).toBe('dropped');
    expect(conn.dropped).toBe(1);
    expect(conn.waitingWrites).toBe(0);
    peer.resume();
    await peer.waitFrames(s.fillers + 1);
    expect(texts(s)).toEqual(['news']);
  });
});
