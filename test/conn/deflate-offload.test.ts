/**
 * Issue 15: large permessage-deflate messages are compressed and inflated on the thread pool,
 * through the same zlib stream as the small ones (src/protocol/zlib-sync.ts runAsync), so the
 * window (RFC 7692 §7.1.1 context takeover) carries across synchronous and asynchronous
 * messages. A real peer (ws, as client and as server) decompresses what we send and compresses
 * what we inflate: a lost or reordered window shows as wrong bytes or a 1007 close.
 */
import zlib from 'node:zlib';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Conn, type Message } from '../../src/index.js';
import { codecOffloads } from '../../src/conn/codec-scheduler.js';
import { closeAll, guardProcess, startServer, withTimeout } from '../helpers/net.js';
import { compressibleText, randomLetters } from '../helpers/text.js';
import { WsPeer, startWsServer } from '../helpers/ws-peer.js';

guardProcess();
const wsServers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of wsServers.splice(0)) await close();
  await closeAll();
});

// X and Y are small (the synchronous path); L1 starts with X and ends with Y, L2 starts with Y
// (both large: the thread pool). With context takeover:
// - Y after L1 costs a few bytes (async -> sync: the window L1 left is the one Y is compressed with);
// - L2 costs about X's size less than on its own (sync -> async: Y is in the window).
const X = randomLetters(20_000, 1);
const Y = randomLetters(20_000, 2);
const L1 = Buffer.concat([X, compressibleText(2 * 1024 * 1024, 3), Y]);
const L2 = Buffer.concat([Y, compressibleText(1024 * 1024 + 5, 4)]);
const SEQUENCE = [X, L1, Y, L2, Y];
/** The frame L2 would be, compressed from an empty window at the level both sides use. */
const L2_ALONE = zlib.deflateRawSync(L2, { level: 1 }).length;

describe('context takeover across synchronous and thread-pool messages, with ws as the peer', () => {
  it('ws client -> wschan server (dedicated): every echo is byte-exact and the window carries both ways', async () => {
    let sc: Conn<undefined> | undefined;
    const s = await startServer({ deflate: { threshold: 0, mode: 'dedicated' }, maxMessageSize: 64 * 1024 * 1024 }, (srv) => {
      srv.handleOpen((c) => void (sc = c));
      srv.handleData((c, d, b) => c.write(Buffer.from(d), b));
    });
    const ws = await WsPeer.connect(s.url, { perMessageDeflate: { threshold: 0 }, maxPayload: 64 * 1024 * 1024 });
    expect(ws.ws.extensions).toContain('permessage-deflate');
    const before = codecOffloads();
    const sizes: number[] = [];
    for (const m of SEQUENCE) {
      const sent = sc!.bytesOut;
      await ws.send(m, { binary: true });
      const echo = await ws.next(20_000);
      expect(echo.data.equals(m), `echo of ${m.length} bytes`).toBe(true);
      sizes.push(sc!.bytesOut - sent);
    }
    // ws inflated every frame we compressed, in order; now the sizes (frame bytes sent by us):
    expect(sizes[2]!, 'Y after L1 (async -> sync)').toBeLessThan(200);
    expect(sizes[4]!, 'Y after L2 (async -> sync)').toBeLessThan(20_000 / 2);
    expect(sizes[3]!, 'L2 after Y (sync -> async)').toBeLessThan(L2_ALONE - 8_000);
    // The large ones went to the thread pool: our inflate and our deflate of L1 and L2.
    expect(codecOffloads() - before).toBe(4);
    ws.ws.close();
    await withTimeout(ws.closed, 5000, 'the ws close');
  });

  it('wschan client -> ws server: every echo is byte-exact and the window carries both ways', async () => {
    const wss = await startWsServer({ perMessageDeflate: { threshold: 0 }, maxPayload: 64 * 1024 * 1024 }, (p) => {
      p.ws.on('message', (d, isBinary) => p.ws.send(d as Buffer, { binary: isBinary }));
    });
    wsServers.push(wss.close);
    const conn = await connect(wss.url, { deflate: { threshold: 0 }, maxMessageSize: 64 * 1024 * 1024 });
    const it = conn[Symbol.asyncIterator]();
    const before = codecOffloads();
    const sizes: number[] = [];
    for (const m of SEQUENCE) {
      const sent = conn.bytesOut;
      await conn.write(m, true);
      const r = await withTimeout(it.next(), 20_000, `echo of ${m.length} bytes`);
      expect((r.value as Message).data.equals(m), `echo of ${m.length} bytes`).toBe(true);
      sizes.push(conn.bytesOut - sent);
    }
    // Client frames are masked (4 more bytes); the same bounds hold.
    expect(sizes[2]!, 'Y after L1 (async -> sync)').toBeLessThan(200);
    expect(sizes[3]!, 'L2 after Y (sync -> async)').toBeLessThan(L2_ALONE - 8_000);
    expect(codecOffloads() - before).toBe(4);
    await conn.close();
  });
});

describe('order per connection with small and large messages mixed, both ways', () => {
  it('a ws client pipelines 40 mixed messages; the echoes come back in order, byte for byte', async () => {
    const s = await startServer({ deflate: { threshold: 0, mode: 'dedicated' }, maxMessageSize: 64 * 1024 * 1024 }, (srv) => {
      srv.handleData((c, d, b) => c.write(Buffer.from(d), b));
    });
    const ws = await WsPeer.connect(s.url, { perMessageDeflate: { threshold: 0 }, maxPayload: 64 * 1024 * 1024 });
    const msgs: Buffer[] = [];
    for (let i = 0; i < 40; i++) msgs.push(i % 7 === 3 ? compressibleText(300 * 1024 + i * 4099, i) : i % 3 === 0 ? randomLetters(50 + i, i) : compressibleText(2000 + i, i));
    const before = codecOffloads();
    for (const m of msgs) void ws.send(m, { binary: true });
    for (let i = 0; i < msgs.length; i++) {
      const echo = await ws.next(20_000);
      expect(echo.data.equals(msgs[i]!), `message ${i} (${msgs[i]!.length} bytes)`).toBe(true);
    }
    // 6 large messages, inflated and compressed off the loop.
    expect(codecOffloads() - before).toBe(12);
    ws.ws.close();
    await withTimeout(ws.closed, 5000, 'the ws close');
  });

  it('a wschan client pipelines the same to a ws server ("shared" default on our side does not apply: client), in order', async () => {
    const wss = await startWsServer({ perMessageDeflate: { threshold: 0 }, maxPayload: 64 * 1024 * 1024 }, (p) => {
      p.ws.on('message', (d, isBinary) => p.ws.send(d as Buffer, { binary: isBinary }));
    });
    wsServers.push(wss.close);
    const conn = await connect(wss.url, { deflate: { threshold: 0 }, maxMessageSize: 64 * 1024 * 1024 });
    const msgs: Buffer[] = [];
    for (let i = 0; i < 40; i++) msgs.push(i % 7 === 3 ? compressibleText(300 * 1024 + i * 4099, i) : i % 3 === 0 ? randomLetters(50 + i, i) : compressibleText(2000 + i, i));
    const it = conn[Symbol.asyncIterator]();
    for (const m of msgs) void conn.write(m, true);
    for (let i = 0; i < msgs.length; i++) {
      const r = await withTimeout(it.next(), 20_000, `message ${i}`);
      expect((r.value as Message).data.equals(msgs[i]!), `message ${i} (${msgs[i]!.length} bytes)`).toBe(true);
    }
    await conn.close();
  });
});

describe('a connection that ends while its stream is on the thread pool', () => {
  it('destroying the socket mid-inflate and mid-deflate of many large messages frees the streams without a crash; the server goes on', async () => {
    let opened = 0;
    const s = await startServer({ deflate: { threshold: 0, mode: 'dedicated' }, maxMessageSize: 64 * 1024 * 1024 }, (srv) => {
      srv.handleOpen(() => void opened++);
      srv.handleData((c, d, b) => c.write(Buffer.from(d), b));
    });
    const big = compressibleText(8 * 1024 * 1024, 5);
    for (let round = 0; round < 4; round++) {
      const ws = await WsPeer.connect(s.url, { perMessageDeflate: { threshold: 0 }, maxPayload: 64 * 1024 * 1024 });
      for (let i = 0; i < 3; i++) void ws.send(big, { binary: true }).catch(() => {});
      // Cut at different points: while the server inflates, compresses, or both.
      await new Promise((r) => setTimeout(r, 5 + round * 20));
      (ws.ws as unknown as { _socket: Socket })._socket.destroy();
      await withTimeout(ws.closed, 5000, 'the cut connection to close');
    }
    // The server is whole: a new connection round-trips a large and a small message.
    const ws = await WsPeer.connect(s.url, { perMessageDeflate: { threshold: 0 }, maxPayload: 64 * 1024 * 1024 });
    await ws.send(big, { binary: true });
    expect((await ws.next(20_000)).data.equals(big)).toBe(true);
    await ws.send('small');
    expect((await ws.next(5000)).data.toString()).toBe('small');
    expect(opened).toBe(5);
    ws.ws.close();
  });
});

describe("a large broadcast in 'shared' mode", () => {
  it('is compressed once, on the thread pool, and each subscriber gets it between what was written before and after', async () => {
    // The zlib streams that are given the broadcast's bytes (in pieces: src/protocol/zlib-stream.ts), and how many bytes.
    const streams = new Set<unknown>();
    let bytes = 0;
    const proto = zlib.DeflateRaw.prototype as unknown as { write: (chunk: Uint8Array, ...rest: unknown[]) => boolean };
    const original = proto.write;
    const conns: Conn<undefined>[] = [];
    const s = await startServer({ deflate: { threshold: 0 }, maxMessageSize: 64 * 1024 * 1024 }, (srv) => srv.handleOpen((c) => void conns.push(c)));
    const clients = await Promise.all([0, 1].map(() => connect(s.url, { deflate: { threshold: 0 }, maxMessageSize: 64 * 1024 * 1024 })));
    const ws = await WsPeer.connect(s.url, { perMessageDeflate: { threshold: 0 }, maxPayload: 64 * 1024 * 1024 });
    for (let i = 0; i < 200 && conns.length < 3; i++) await new Promise((r) => setTimeout(r, 5));
    expect(conns.length).toBe(3);
    const big = compressibleText(2 * 1024 * 1024, 21); // under the outbox bound (maxQueuedBytes, 4 MiB)
    proto.write = function (this: unknown, chunk: Uint8Array, ...rest: unknown[]) {
      if (chunk.buffer === big.buffer) {
        streams.add(this);
        bytes += chunk.length;
      }
      return original.call(this, chunk, ...rest);
    };
    try {
      for (const c of conns) void c.write(`before ${c.id}`);
      const result = s.server.broadcast(big);
      for (const c of conns) void c.write(`after ${c.id}`);
      expect(result, JSON.stringify(result)).toMatchObject({ queued: 3 });
      const expected = (id: number | string) => [`before ${id}`, big.toString(), `after ${id}`];
      for (const [k, client] of clients.entries()) {
        const it = client[Symbol.asyncIterator]();
        const got: string[] = [];
        for (let i = 0; i < 3; i++) got.push((await withTimeout(it.next(), 20_000, `client ${k} message ${i}`)).value!.data.toString());
        const id = got[0]!.slice('before '.length);
        expect(got).toEqual(expected(id));
      }
      const wsGot: string[] = [];
      for (let i = 0; i < 3; i++) wsGot.push((await ws.next(20_000)).data.toString());
      expect(wsGot).toEqual(expected(wsGot[0]!.slice('before '.length)));
    } finally {
      delete (proto as { write?: unknown }).write; // back to the inherited Writable#write
    }
    // One compression for three subscribers (all share one window size: 15 bits, no context takeover).
    expect(streams.size).toBe(1);
    expect(bytes).toBe(big.length);
    ws.ws.close();
    await Promise.all(clients.map((c) => c.close()));
  });
  it('is tied to that publish, not to the Buffer: the same Buffer refilled and written later goes out with its new bytes', async () => {
    const conns: Conn<undefined>[] = [];
    const s = await startServer({ deflate: { threshold: 0 }, maxMessageSize: 64 * 1024 * 1024 }, (srv) => srv.handleOpen((c) => void conns.push(c)));
    const client = await connect(s.url, { deflate: { threshold: 0 }, maxMessageSize: 64 * 1024 * 1024 });
    for (let i = 0; i < 200 && conns.length < 1; i++) await new Promise((r) => setTimeout(r, 5));
    expect(conns.length).toBe(1);
    const it = client[Symbol.asyncIterator]();
    const reused = Buffer.from(compressibleText(1024 * 1024, 31));
    const first = reused.toString();
    expect(s.server.broadcast(reused)).toMatchObject({ queued: 1 });
    expect((await withTimeout(it.next(), 20_000, 'the broadcast')).value!.data.toString()).toBe(first);
    // A user who reuses one buffer for the next message: new bytes, same object.
    compressibleText(1024 * 1024, 32).copy(reused);
    const second = reused.toString();
    expect(second).not.toBe(first);
    void conns[0]!.write(reused);
    expect((await withTimeout(it.next(), 20_000, 'the write')).value!.data.toString()).toBe(second);
    await client.close();
  });
});
