/** server.broadcast(): every client gets each message once, in order, framed once for all. */
import { constants as zlibConstants, inflateRawSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { connInternals } from '../../src/conn/conn.js';
import { WebSocketError } from '../../src/index.js';
import { Opcode } from '../../src/protocol/constants.js';
import { echoOptions } from '../../stress-tests/echo-app.js';
import { burstJson } from '../../stress-tests/burst.js';
import { RawClient, closeAll, guardProcess, parseResponse, rawHandshake, startServer, upgradeRequest, waitUntil } from '../helpers/net.js';

guardProcess();
afterEach(async () => {
  vi.restoreAllMocks();
  await closeAll();
});

async function rawClients(port: number, n: number, headers?: Record<string, string>): Promise<RawClient[]> {
  const out: RawClient[] = [];
  for (let i = 0; i < n; i++) {
    const { client, res } = await rawHandshake(port, upgradeRequest({ headers }));
    expect(res.status).toBe(101);
    out.push(client);
  }
  return out;
}

/** Bytes each raw client received after its 101 response. */
function wireBytes(c: RawClient): Buffer {
  return parseResponse(c.received)!.rest;
}

describe('server.broadcast()', () => {
  it('reaches every client once, in order, with byte-identical frames', async () => {
    const { server, port } = await startServer();
    const clients = await rawClients(port, 5);
    await waitUntil(() => server.clientCount === 5, 2000, 'five connections');
    const messages = ['one', 'two', 'x'.repeat(300), 'y'.repeat(70_000)];
    for (const m of messages) expect(server.broadcast(m)).toEqual({ queued: 5, conflated: 0, dropped: 0, closed: 0 });
    const expectedLength = messages.reduce((n, m) => n + m.length + (m.length < 126 ? 2 : m.length < 65536 ? 4 : 10), 0);
    await waitUntil(() => clients.every((c) => wireBytes(c).length >= expectedLength), 3000, 'every broadcast');
    const first = wireBytes(clients[0]!);
    expect(first.length).toBe(expectedLength);
    for (const c of clients) expect(wireBytes(c).equals(first)).toBe(true);
    const frames = clients[0]!.frames();
    expect(frames.map((f) => [f.opcode, f.payload.toString()])).toEqual(messages.map((m) => [Opcode.Text, m]));
    for (const c of clients) c.destroy();
  });

  it('frames the message once: every connection is handed the same Buffer', async () => {
    const { server, port } = await startServer();
    await rawClients(port, 4);
    await waitUntil(() => server.clientCount === 4, 2000, 'four connections');
    // A server without deflate hands one frame to all its connections in one call (fanOutFrame).
    const spy = vi.spyOn(connInternals, 'fanOutFrame');
    expect(server.broadcast(Buffer.from([1, 2, 3]))).toEqual({ queued: 4, conflated: 0, dropped: 0, closed: 0 });
    expect(spy).toHaveBeenCalledTimes(1);
    const [targets, frame] = spy.mock.calls[0]!;
    expect([...targets].length).toBe(4);
    expect([...frame]).toEqual([0x82, 0x03, 1, 2, 3]);
  });

  it('sends text for a string and binary for bytes, and can force either', async () => {
    const { server, port } = await startServer();
    const [c] = await rawClients(port, 1);
    await waitUntil(() => server.clientCount === 1, 2000, 'the connection');
    server.broadcast('t');
    server.broadcast(Buffer.from('b'));
    server.broadcast('forced binary', true);
    server.broadcast(Buffer.from('forced text'), false);
    await waitUntil(() => c!.frames().length === 4, 2000, 'four frames');
    expect(c!.frames().map((f) => [f.opcode, f.payload.toString()])).toEqual([
      [Opcode.Text, 't'],
      [Opcode.Binary, 'b'],
      [Opcode.Binary, 'forced binary'],
      [Opcode.Text, 'forced text'],
    ]);
  });

  it('refuses bytes sent as text that are not valid UTF-8, before queueing anything (WS_ERR_INVALID_UTF8)', async () => {
    const { server, port } = await startServer();
    const [c] = await rawClients(port, 1);
    await waitUntil(() => server.clientCount === 1, 2000, 'the connection');
    let error: unknown;
    try {
      server.broadcast(Buffer.from([0x61, 0xc3, 0x28]), false);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(WebSocketError);
    const e = error as WebSocketError;
    expect({ code: e.code, closeCode: e.closeCode, message: e.message }).toEqual({
      code: 'WS_ERR_INVALID_UTF8',
      closeCode: 1007,
      message: 'text message is not valid UTF-8',
    });
    server.broadcast(Buffer.from('ok'), false);
    await waitUntil(() => c!.frames().length === 1, 2000, 'the valid frame');
    expect(c!.frames()[0]!.payload.toString()).toBe('ok');
  });

  it('delivers an empty message (never drop a legal message)', async () => {
    const { server, port } = await startServer();
    const [c] = await rawClients(port, 1);
    await waitUntil(() => server.clientCount === 1, 2000, 'the connection');
    server.broadcast('');
    await waitUntil(() => c!.frames().length === 1, 2000, 'the frame');
    expect(c!.frames()[0]!.payload.length).toBe(0);
  });

  it('reaches ws clients in order', async () => {
    const { server, url } = await startServer();
    const got: string[][] = [[], [], []];
    const sockets = got.map((box) => {
      const w = new WebSocket(url);
      w.on('message', (d) => box.push(d.toString()));
      return w;
    });
    await Promise.all(sockets.map((w) => new Promise((r) => w.on('open', r))));
    await waitUntil(() => server.clientCount === 3, 2000, 'three connections');
    for (let i = 0; i < 100; i++) server.broadcast(`m${i}`);
    await waitUntil(() => got.every((b) => b.length === 100), 3000, '100 messages each');
    const expected = Array.from({ length: 100 }, (_, i) => `m${i}`);
    for (const b of got) expect(b).toEqual(expected);
    for (const w of sockets) w.close();
  });

  it('with no context takeover, compresses once: every connection gets the same compressed Buffer', async () => {
    const { server, port } = await startServer({ deflate: { threshold: 0, serverNoContextTakeover: true } });
    const clients = await rawClients(port, 3, { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
    await waitUntil(() => server.clientCount === 3, 2000, 'three connections');
    const spy = vi.spyOn(connInternals, 'tryWriteFrame');
    const text = 'hello hello hello hello hello';
    server.broadcast(text);
    expect(spy).toHaveBeenCalledTimes(3);
    const frame = spy.mock.calls[0]![1];
    for (const call of spy.mock.calls) expect(call[1]).toBe(frame);
    await waitUntil(() => clients.every((c) => c.frames().length === 1), 2000, 'the frame');
    const f = clients[0]!.frames()[0]!;
    expect(f.rsv1).toBe(true);
    expect(f.payload.length).toBeLessThan(text.length);
    for (const c of clients) expect(wireBytes(c).equals(wireBytes(clients[0]!))).toBe(true);
  });

  it("in the default mode (the echo server's deflate options), a broadcast is compressed once for every client offering what the load generator and ws offer", async () => {
    const { server, port, url } = await startServer(echoOptions(true));
    const raw = await rawClients(port, 3, { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' });
    const wsGot: string[] = [];
    const w = new WebSocket(url, { perMessageDeflate: true });
    w.on('message', (d) => wsGot.push(d.toString()));
    await new Promise((r) => w.on('open', r));
    await waitUntil(() => server.clientCount === 4, 2000, 'four connections');
    const spy = vi.spyOn(connInternals, 'tryWriteFrame');
    const tryPublish = vi.spyOn(connInternals, 'tryPublish');
    const tick = burstJson(7, 1024);
    server.broadcast(tick);
    expect(tryPublish).not.toHaveBeenCalled(); // no connection compresses for itself
    expect(spy).toHaveBeenCalledTimes(4);
    expect(new Set(spy.mock.calls.map((c) => c[1])).size).toBe(1);
    await waitUntil(() => raw.every((c) => c.frames().length === 1) && wsGot.length === 1, 2000, 'every frame');
    for (const c of raw) {
      const f = c.frames()[0]!;
      expect(f.rsv1).toBe(true);
      expect(f.payload.length).toBeLessThan(tick.length / 2);
      expect(inflateRawSync(Buffer.concat([f.payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlibConstants.Z_SYNC_FLUSH }).toString()).toBe(tick);
    }
    expect(wsGot).toEqual([tick]);
    w.close();
  });

  it('with context takeover, each connection compresses for itself and ws clients decode it', async () => {
    const { server, url } = await startServer({ deflate: { threshold: 0, mode: 'dedicated' } });
    const got: string[][] = [[], []];
    const sockets = got.map((box) => {
      const w = new WebSocket(url, { perMessageDeflate: true });
      w.on('message', (d) => box.push(d.toString()));
      return w;
    });
    await Promise.all(sockets.map((w) => new Promise((r) => w.on('open', r))));
    await waitUntil(() => server.clientCount === 2, 2000, 'two connections');
    const spy = vi.spyOn(connInternals, 'tryPublish');
    for (let i = 0; i < 20; i++) server.broadcast(`{"seq":${i},"body":"the same words again and again"}`);
    expect(spy).toHaveBeenCalledTimes(40);
    await waitUntil(() => got.every((b) => b.length === 20), 3000, '20 messages each');
    for (const b of got) expect(b[19]).toBe('{"seq":19,"body":"the same words again and again"}');
    for (const w of sockets) w.close();
  });

  it('sends a Uint8Array view as exactly the bytes it covers', async () => {
    const { server, port } = await startServer();
    const [c] = await rawClients(port, 1);
    await waitUntil(() => server.clientCount === 1, 2000, 'the connection');
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    server.broadcast(backing.subarray(2, 5));
    await waitUntil(() => c!.frames().length === 1, 2000, 'the frame');
    expect([...c!.frames()[0]!.payload]).toEqual([1, 2, 3]);
  });

  it('mixed peers: plain, deflate, and deflate with another window each get a frame they can read, one per parameter set', async () => {
    const { server, port, url } = await startServer({ deflate: { threshold: 0, serverNoContextTakeover: true } });
    const plain = await rawClients(port, 2);
    const deflate = await rawClients(port, 2, { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
    const small = new WebSocket(url, { perMessageDeflate: { threshold: 0, serverMaxWindowBits: 10 } });
    const smallGot: string[] = [];
    small.on('message', (d) => smallGot.push(d.toString()));
    await new Promise((r) => small.on('open', r));
    await waitUntil(() => server.clientCount === 5, 2000, 'five connections');
    const spy = vi.spyOn(connInternals, 'tryWriteFrame');
    const text = 'abc abc abc abc abc abc abc abc';
    server.broadcast(text);
    expect(spy).toHaveBeenCalledTimes(5);
    const distinct = new Set(spy.mock.calls.map((c) => c[1]));
    expect(distinct.size).toBe(3); // plain, window 15, window 10
    await waitUntil(() => [...plain, ...deflate].every((c) => c.frames().length === 1) && smallGot.length === 1, 2000, 'every frame');
    for (const c of plain) expect([c.frames()[0]!.rsv1, c.frames()[0]!.payload.toString()]).toEqual([false, text]);
    for (const c of deflate) {
      const f = c.frames()[0]!;
      expect(f.rsv1).toBe(true);
      // RFC 7692 §7.2.2: append 00 00 ff ff and inflate.
      expect(inflateRawSync(Buffer.concat([f.payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlibConstants.Z_SYNC_FLUSH }).toString()).toBe(text);
    }
    expect(smallGot).toEqual([text]);
    small.close();
  });

  it('skips connections that are closing and counts them', async () => {
    const { server, port } = await startServer();
    const [a] = await rawClients(port, 2);
    await waitUntil(() => server.clientCount === 2, 2000, 'two connections');
    const conns = [...server.connections];
    void conns[0]!.close();
    expect(server.broadcast('x')).toEqual({ queued: 1, conflated: 0, dropped: 0, closed: 1 });
    a!.destroy();
  });
});
