/**
 * Large permessage-deflate messages are compressed and inflated on the thread pool, or, when the
 * server's pool is full, in slices, one per event-loop turn (src/conn/codec-scheduler.ts), so one
 * big message cannot stall every other connection. No timings here: the tests count thread-pool
 * jobs and slices, observe interleaving, and check order and bytes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Conn, type Message } from '../../src/index.js';
import { codecOffloads, codecTurns, pendingCodecJobs } from '../../src/conn/codec-scheduler.js';
import { DEFLATE_SLICE, INFLATE_SLICE } from '../../src/protocol/deflate-codec.js';
import { forceSyncZlib } from '../../src/protocol/zlib-sync.js';
import { closeAll, guardProcess, startServer, waitUntil, withTimeout } from '../helpers/net.js';
import { compressibleText } from '../helpers/text.js';
import { WsPeer } from '../helpers/ws-peer.js';

guardProcess();
afterEach(async () => {
  forceSyncZlib(undefined);
  await closeAll();
});

async function echoServer(deflate: object, extra: object = {}) {
  const order: string[] = [];
  const s = await startServer({ deflate, maxMessageSize: 64 * 1024 * 1024, ...extra }, (srv) => {
    srv.handleData((c, d, b) => {
      order.push(`${c.id}:${d.length}`);
      return c.write(Buffer.from(d), b);
    });
  });
  return { ...s, order };
}

async function receive(conn: Conn<undefined>, n: number): Promise<Message[]> {
  const it = conn[Symbol.asyncIterator]();
  const out: Message[] = [];
  for (let i = 0; i < n; i++) {
    const r = await withTimeout(it.next(), 20_000, `message ${i}`);
    out.push(r.value as Message);
  }
  return out;
}

describe('large compressed messages leave the event loop turn that received them', () => {
  it('a 4 MiB message between small ones is echoed in order, byte for byte, on the thread pool (context takeover)', async () => {
    const s = await echoServer({ threshold: 0 });
    const conn = await connect(s.url, { deflate: { threshold: 0 }, maxMessageSize: 64 * 1024 * 1024 });
    const msgs = [compressibleText(100, 1), compressibleText(4 * 1024 * 1024, 2), compressibleText(300, 3), compressibleText(2000, 4), compressibleText(3 * 1024 * 1024 + 17, 5), compressibleText(10, 6)];
    const before = codecOffloads();
    for (const m of msgs) void conn.write(m.toString(), false);
    const got = await receive(conn, msgs.length);
    expect(got.map((m) => m.data.length)).toEqual(msgs.map((m) => m.length));
    for (let i = 0; i < msgs.length; i++) expect(got[i]!.data.equals(msgs[i]!), `message ${i}`).toBe(true);
    // Client deflate + server inflate + server deflate + client inflate of the two large
    // messages: 8 thread-pool jobs; the small ones stayed on the loop.
    expect(codecOffloads() - before).toBe(8);
    // The compressed bytes on the wire stay small: the window was kept across sync and async messages.
    expect(conn.bytesOut).toBeLessThan(7 * 1024 * 1024 / 3);
    await conn.close();
    expect(pendingCodecJobs()).toBe(0);
  });

  it('when the pool is full (1 job, no waiting room), a large message runs in many slices on the loop instead, in order', async () => {
    const s = await echoServer({ threshold: 0, threadPoolConcurrency: 1, threadPoolMaxQueued: 0 });
    const conn = await connect(s.url, { deflate: { threshold: 0, threadPoolConcurrency: 1, threadPoolMaxQueued: 0 }, maxMessageSize: 64 * 1024 * 1024 });
    const msgs = [compressibleText(100, 1), compressibleText(4 * 1024 * 1024, 2), compressibleText(300, 3), compressibleText(2000, 4), compressibleText(3 * 1024 * 1024 + 17, 5), compressibleText(10, 6)];
    // A second connection keeps the server's one slot busy with its own large messages.
    const other = await connect(s.url, { deflate: { threshold: 0 }, maxMessageSize: 64 * 1024 * 1024 });
    const otherMsgs = [compressibleText(6 * 1024 * 1024, 8), compressibleText(6 * 1024 * 1024, 9)];
    const otherGot = receive(other, otherMsgs.length);
    const before = codecTurns();
    for (const m of otherMsgs) void other.write(m, true);
    for (const m of msgs) void conn.write(m.toString(), false);
    const got = await receive(conn, msgs.length);
    expect(got.map((m) => m.data.length)).toEqual(msgs.map((m) => m.length));
    for (let i = 0; i < msgs.length; i++) expect(got[i]!.data.equals(msgs[i]!), `message ${i}`).toBe(true);
    const others = await otherGot;
    for (let i = 0; i < otherMsgs.length; i++) expect(others[i]!.data.equals(otherMsgs[i]!), `other ${i}`).toBe(true);
    // Some of the large work was refused by a full pool and ran in slices of at most 256 KiB
    // (each a turn of the loop): at least one 3 MiB message's worth, 12 turns.
    expect(DEFLATE_SLICE).toBeLessThanOrEqual(256 * 1024);
    expect(INFLATE_SLICE).toBeLessThanOrEqual(256 * 1024);
    expect(codecTurns() - before).toBeGreaterThanOrEqual(12);
    const big = 7 * 1024 * 1024;
    // The compressed bytes on the wire stay small: the window was kept across slices and messages.
    expect(conn.bytesOut).toBeLessThan(big / 3);
    await conn.close();
    expect(pendingCodecJobs()).toBe(0);
  });

  it("another connection's messages are handled while a 16 MiB message is inflated and compressed", async () => {
    // A is a ws client (it compresses and inflates on the thread pool, not on this loop), so what
    // runs here is the server's work alone.
    let bigFrameAt = -1;
    const order: string[] = [];
    const s = await startServer({ deflate: { threshold: 0 }, maxMessageSize: 64 * 1024 * 1024 }, (srv) => {
      srv.handleFrame((_c, f) => {
        if (f.rsv1 && f.payload.length > 1000 && bigFrameAt < 0) bigFrameAt = order.length;
      });
      srv.handleData((c, d, isBinary) => {
        order.push(d.length > 1000 ? 'A' : 'B');
        return c.write(Buffer.from(d), isBinary);
      });
    });
    const a = await WsPeer.connect(s.url, { perMessageDeflate: { threshold: 0 }, maxPayload: 64 * 1024 * 1024 });
    const b = await connect(s.url, { deflate: { threshold: 0 } });
    const bIt = b[Symbol.asyncIterator]();
    const large = compressibleText(16 * 1024 * 1024, 7);
    let aFinished = false;
    const aDone = a.next(20_000).then((m) => {
      aFinished = true;
      return m;
    });
    a.ws.send(large);
    // B plays ping-pong with the server until A's echo is back.
    let rounds = 0;
    while (!aFinished && rounds < 100_000) {
      await b.write(`tick ${rounds}`);
      const r = await withTimeout(bIt.next(), 20_000, 'B echo');
      expect((r.value as Message).data.toString()).toBe(`tick ${rounds}`);
      rounds++;
    }
    const echoed = await withTimeout(aDone, 20_000, "A's echo");
    expect(echoed.data.equals(large)).toBe(true);
    // Between the arrival of A's compressed frame and the delivery of its 16 MiB, the server
    // handled several of B's messages: inflating did not hold the loop.
    expect(bigFrameAt).toBeGreaterThanOrEqual(0);
    const aAt = order.indexOf('A');
    expect(aAt - bigFrameAt).toBeGreaterThanOrEqual(3);
    // And B went on being served while the echo of A's message was compressed and sent.
    expect(order.length - aAt - 1).toBeGreaterThanOrEqual(3);
    a.ws.close();
    await b.close();
  });

  it('counts inflated bytes against maxMessageSize while inflating a large frame (1009)', async () => {
    const s = await startServer({ deflate: { threshold: 0 }, maxMessageSize: 2 * 1024 * 1024 });
    let delivered = 0;
    s.server.handleData(() => void delivered++);
    const conn = await connect(s.url, { deflate: { threshold: 0 } });
    await conn.write(Buffer.alloc(32 * 1024 * 1024)); // about 32 KiB compressed
    const info = await withTimeout(conn.closed, 10_000, 'the close');
    expect(info.code).toBe(1009);
    expect(delivered).toBe(0);
    await waitUntil(() => pendingCodecJobs() === 0, 5000, 'the inflate job to end');
  });

  it('terminating a connection ends its compression in progress and counts the message unsent', async () => {
    let serverConn: Conn<undefined> | undefined;
    const s = await startServer({ deflate: { threshold: 0 } }, (srv) => srv.handleOpen((c) => void (serverConn = c)));
    const conn = await connect(s.url, { deflate: { threshold: 0 }, maxMessageSize: 64 * 1024 * 1024 });
    await waitUntil(() => serverConn !== undefined, 2000, 'handleOpen');
    const sc = serverConn!;
    void sc.write(compressibleText(16 * 1024 * 1024, 9)).catch(() => {});
    void sc.write('after it').catch(() => {});
    await new Promise((r) => setImmediate(r)); // the flush starts the job
    await new Promise((r) => setImmediate(r));
    expect(pendingCodecJobs()).toBeGreaterThan(0);
    sc.terminate();
    const info = await withTimeout(sc.closed, 5000, 'server side closed');
    expect(info.unsent).toBe(2);
    await waitUntil(() => pendingCodecJobs() === 0, 5000, 'the deflate job to end');
    await conn.closed;
  });

  it('terminating a connection while a large frame is inflated ends the inflate and delivers nothing', async () => {
    let delivered = 0;
    let jobsSeen = -1;
    const s = await startServer({ deflate: { threshold: 0 }, maxMessageSize: 64 * 1024 * 1024 }, (srv) => {
      srv.handleFrame((c, f) => {
        if (!f.rsv1 || f.payload.length < 1000) return;
        // The frame is handed to the codec after this hook; two turns later its job is in progress.
        setImmediate(() =>
          setImmediate(() => {
            jobsSeen = pendingCodecJobs();
            c.terminate();
          }),
        );
      });
      srv.handleData(() => void delivered++);
    });
    const a = await WsPeer.connect(s.url, { perMessageDeflate: { threshold: 0 }, maxPayload: 64 * 1024 * 1024 });
    a.ws.send(compressibleText(16 * 1024 * 1024, 11));
    await withTimeout(a.closed, 10_000, 'the connection to end');
    expect(jobsSeen).toBeGreaterThan(0);
    await waitUntil(() => pendingCodecJobs() === 0, 5000, 'the inflate job to end');
    expect(delivered).toBe(0);
  });

  it("mode 'shared': a large message gets a compressor of its own while small ones keep using the shared one", async () => {
    const s = await echoServer({ threshold: 0, mode: 'shared' });
    const conns = await Promise.all([0, 1].map(() => connect(s.url, { deflate: { threshold: 0 }, maxMessageSize: 64 * 1024 * 1024 })));
    const sets = [
      [compressibleText(50, 1), compressibleText(2 * 1024 * 1024, 2), compressibleText(60, 3)],
      [compressibleText(70, 4), compressibleText(80, 5), compressibleText(1024 * 1024, 6)],
    ];
    const results = conns.map((c, i) => receive(c, sets[i]!.length));
    conns.forEach((c, i) => sets[i]!.forEach((m) => void c.write(m, true)));
    const got = await Promise.all(results);
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) expect(got[i]![j]!.data.equals(sets[i]![j]!), `${i}/${j}`).toBe(true);
    await Promise.all(conns.map((c) => c.close()));
  });
});

describe('without zlib handle internals, the public stream API does the work (forced fallback)', () => {
  it('round-trips small and large messages in order with context takeover', async () => {
    forceSyncZlib(false);
    const s = await echoServer({ threshold: 0 });
    const conn = await connect(s.url, { deflate: { threshold: 0 }, maxMessageSize: 64 * 1024 * 1024 });
    const msgs = [compressibleText(100, 1), compressibleText(1024 * 1024, 2), compressibleText(300, 3), compressibleText(300, 3), compressibleText(5, 4)];
    const before = codecOffloads();
    for (const m of msgs) void conn.write(m, true);
    const got = await receive(conn, msgs.length);
    for (let i = 0; i < msgs.length; i++) expect(got[i]!.data.equals(msgs[i]!), `message ${i}`).toBe(true);
    // Every message went through a thread-pool job (4 codecs × 5 messages).
    expect(codecOffloads() - before).toBe(20);
    // Context takeover: the repeated 300-byte message costs only a few bytes the second time.
    expect(conn.bytesOut).toBeLessThan(1024 * 1024 / 3);
    await conn.close();
  });

  it('stops a bomb at maxMessageSize (1009) and broadcasts in shared mode', async () => {
    forceSyncZlib(false);
    const s = await startServer({ deflate: { threshold: 0, mode: 'shared' }, maxMessageSize: 1024 * 1024 });
    const conn = await connect(s.url, { deflate: { threshold: 0 } });
    const it = conn[Symbol.asyncIterator]();
    s.server.broadcast('hello hello hello hello');
    const r = await withTimeout(it.next(), 5000, 'the broadcast');
    expect((r.value as Message).data.toString()).toBe('hello hello hello hello');
    await conn.write(Buffer.alloc(16 * 1024 * 1024));
    const info = await withTimeout(conn.closed, 10_000, 'the close');
    expect(info.code).toBe(1009);
  });
});
