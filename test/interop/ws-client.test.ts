/** Interop: the `ws` package as the client, a wschan Server as the server. */
import { afterEach, describe, expect, it } from 'vitest';
import type { CloseInfo, Conn } from '../../src/index.js';
import { closeAll, guardProcess, startServer, waitUntil, withTimeout } from '../helpers/net.js';
import { WsPeer } from '../helpers/ws-peer.js';

guardProcess();
afterEach(closeAll);

const MiB = 1024 * 1024;

/** A wschan echo server (same type back) that records pings, pongs and closes. */
async function echoServer(options?: Parameters<typeof startServer>[0]) {
  const pings: Buffer[] = [];
  const pongs: Buffer[] = [];
  const closes: CloseInfo[] = [];
  const received: { data: Buffer; isBinary: boolean }[] = [];
  const opened: Conn<undefined>[] = [];
  const s = await startServer(options, (server) => {
    server.handleOpen((c) => void opened.push(c));
    server.handleData((c, data, isBinary) => {
      received.push({ data: Buffer.from(data), isBinary });
      return c.write(Buffer.from(data), isBinary);
    });
    server.handlePing((_c, p) => void pings.push(Buffer.from(p)));
    server.handlePong((_c, p) => void pongs.push(Buffer.from(p)));
    server.handleClose((_c, i) => void closes.push(i));
  });
  return { ...s, pings, pongs, closes, received, opened };
}

describe('ws client -> wschan server', () => {
  it('echoes a text message', async () => {
    const { url } = await echoServer();
    const w = await WsPeer.connect(url);
    await w.send('héllo wörld');
    expect(await w.next()).toEqual({ data: Buffer.from('héllo wörld'), isBinary: false });
    w.ws.close();
  });

  it('echoes a binary message', async () => {
    const { url } = await echoServer();
    const w = await WsPeer.connect(url);
    await w.send(Buffer.from([0, 1, 2, 253, 254, 255]));
    expect(await w.next()).toEqual({ data: Buffer.from([0, 1, 2, 253, 254, 255]), isBinary: true });
    w.ws.close();
  });

  it('delivers and echoes empty text and empty binary messages', async () => {
    const { url, received } = await echoServer();
    const w = await WsPeer.connect(url);
    await w.send('');
    await w.send(Buffer.alloc(0));
    expect(await w.next()).toEqual({ data: Buffer.alloc(0), isBinary: false });
    expect(await w.next()).toEqual({ data: Buffer.alloc(0), isBinary: true });
    expect(received).toEqual([
      { data: Buffer.alloc(0), isBinary: false },
      { data: Buffer.alloc(0), isBinary: true },
    ]);
    w.ws.close();
  });

  it('echoes 1 MiB text and binary messages', async () => {
    const { url } = await echoServer();
    const w = await WsPeer.connect(url);
    const text = 'abcdefghij'.repeat(MiB / 10);
    const bin = Buffer.alloc(MiB);
    for (let i = 0; i < bin.length; i++) bin[i] = (i * 31) & 0xff;
    await w.send(text);
    await w.send(bin);
    const a = await w.next();
    const b = await w.next();
    expect(a.isBinary).toBe(false);
    expect(a.data.toString()).toBe(text);
    expect(b.isBinary).toBe(true);
    expect(b.data.equals(bin)).toBe(true);
    w.ws.close();
  });

  it('assembles a fragmented message sent with fin: false', async () => {
    const { url, received } = await echoServer();
    const w = await WsPeer.connect(url);
    await w.send('frag-', { fin: false });
    await w.send('ment', { fin: false });
    await w.send('é', { fin: false });
    await w.send('ed', { fin: true });
    await w.send(Buffer.from([1, 2]), { binary: true, fin: false });
    await w.send(Buffer.from([3]), { binary: true, fin: true });
    expect(await w.next()).toEqual({ data: Buffer.from('frag-mentéed'), isBinary: false });
    expect(await w.next()).toEqual({ data: Buffer.from([1, 2, 3]), isBinary: true });
    expect(received.map((m) => m.data.length)).toEqual([Buffer.byteLength('frag-mentéed'), 3]);
    w.ws.close();
  });

  it('answers a ping from ws with a pong carrying the same payload, and reports it to handlePing', async () => {
    const { url, pings } = await echoServer();
    const w = await WsPeer.connect(url);
    w.ws.ping('are you there');
    await waitUntil(() => w.pongs.length === 1, 2000, 'the pong');
    expect(w.pongs[0]!.toString()).toBe('are you there');
    expect(pings.map(String)).toEqual(['are you there']);
    w.ws.close();
  });

  it('gets a pong from ws for conn.ping() and reports it to handlePong', async () => {
    const { url, pongs, opened } = await echoServer();
    const w = await WsPeer.connect(url);
    await waitUntil(() => opened.length === 1, 2000, 'handleOpen');
    expect(opened[0]!.ping('tick')).toBe(true);
    await waitUntil(() => pongs.length === 1, 2000, 'the pong');
    expect(pongs[0]!.toString()).toBe('tick');
    expect(w.pings.map(String)).toEqual(['tick']);
    w.ws.close();
  });

  it('measures rtt from keepalive pings that ws answers', async () => {
    const { url, opened } = await echoServer({ pingInterval: 50 });
    const w = await WsPeer.connect(url);
    await waitUntil(() => opened.length === 1 && !Number.isNaN(opened[0]!.rtt), 2000, 'an rtt');
    expect(opened[0]!.rtt).toBeGreaterThanOrEqual(0);
    w.ws.close();
  });

  it('a close code and reason from ws reach handleClose, and ws gets the code echoed', async () => {
    const { url, closes } = await echoServer();
    const w = await WsPeer.connect(url);
    w.ws.close(4001, 'client bye');
    const wsSide = await withTimeout(w.closed, 2000, 'ws close');
    expect(wsSide.code).toBe(4001);
    await waitUntil(() => closes.length === 1, 2000, 'handleClose');
    expect(closes[0]).toMatchObject({ code: 4001, reason: 'client bye', wasClean: true });
  });

  it('a close code and reason from the server reach ws', async () => {
    const { url, opened, closes } = await echoServer();
    const w = await WsPeer.connect(url);
    await waitUntil(() => opened.length === 1, 2000, 'handleOpen');
    const info = await opened[0]!.close(4002, 'server bye');
    expect(await w.closed).toEqual({ code: 4002, reason: 'server bye' });
    expect(info).toMatchObject({ code: 4002, wasClean: true });
    expect(closes).toHaveLength(1);
  });

  it('a close without a code from ws is reported as 1005', async () => {
    const { url, closes } = await echoServer();
    const w = await WsPeer.connect(url);
    w.ws.close();
    expect((await w.closed).code).toBe(1005);
    await waitUntil(() => closes.length === 1, 2000, 'handleClose');
    expect(closes[0]).toMatchObject({ code: 1005, reason: '', wasClean: true });
  });

  it('ws sees 1009 when it sends more than maxMessageSize', async () => {
    const { url, closes } = await echoServer({ maxMessageSize: 1000 });
    const w = await WsPeer.connect(url);
    await w.send(Buffer.alloc(1001));
    expect((await withTimeout(w.closed, 2000, 'ws close')).code).toBe(1009);
    await waitUntil(() => closes.length === 1, 2000, 'handleClose');
    expect(closes[0]!.code).toBe(1009);
    expect(closes[0]!.error?.code).toBe('WS_ERR_PAYLOAD_TOO_BIG');
  });
});

describe('ws client -> wschan server, permessage-deflate', () => {
  const json = (i: number): string => JSON.stringify({ seq: i, user: 'ada', text: 'the quick brown fox jumps over the lazy dog', tags: ['a', 'b', 'c'] });

  it('negotiates with ws perMessageDeflate: true and round-trips compressed messages', async () => {
    const frames: boolean[] = [];
    const { url } = await startServer({ deflate: true }, (s) => {
      s.handleData((c, d, b) => c.write(Buffer.from(d), b));
      s.handleFrame((_c, f) => void frames.push(f.rsv1));
    });
    const w = await WsPeer.connect(url, { perMessageDeflate: true });
    expect(w.ws.extensions).toBe('permessage-deflate');
    const big = 'x'.repeat(5000);
    await w.send(big);
    expect((await w.next()).data.toString()).toBe(big);
    // ws compresses messages of at least 1024 bytes by default.
    expect(frames).toEqual([true]);
    w.ws.close();
  });

  it("keeps context takeover over many messages in both directions ({ threshold: 0, mode: 'dedicated' })", async () => {
    let conn: Conn<undefined> | undefined;
    const rsv1: boolean[] = [];
    const { url } = await startServer({ deflate: { threshold: 0, mode: 'dedicated' } }, (s) => {
      s.handleOpen((c) => void (conn = c));
      s.handleFrame((_c, f) => void rsv1.push(f.rsv1));
      s.handleData((c, d, b) => c.write(Buffer.from(d), b));
    });
    const w = await WsPeer.connect(url, { perMessageDeflate: { threshold: 0 } });
    await waitUntil(() => conn !== undefined, 1000, 'handleOpen');
    expect(conn!.extensions).toBe('permessage-deflate');
    const n = 300;
    let payloadBytes = 0;
    for (let i = 0; i < n; i++) {
      const m = json(i);
      payloadBytes += m.length;
      await w.send(m);
    }
    for (let i = 0; i < n; i++) expect((await w.next()).data.toString()).toBe(json(i));
    expect(rsv1.every(Boolean)).toBe(true);
    expect(rsv1).toHaveLength(n);
    // With the window kept across messages, each repeat costs a few bytes: far below the text.
    await waitUntil(() => conn!.bytesOut > 0, 1000, 'bytes out');
    expect(conn!.bytesOut).toBeLessThan(payloadBytes / 4);
    expect(conn!.bytesIn).toBeLessThan(payloadBytes / 4);
    w.ws.close();
  });

  it('serverNoContextTakeover is negotiated with ws and every message still round-trips', async () => {
    const sizes: Record<string, number> = {};
    for (const nct of [false, true]) {
      let conn: Conn<undefined> | undefined;
      const { url } = await startServer({ deflate: { threshold: 0, mode: 'dedicated', serverNoContextTakeover: nct } }, (s) => {
        s.handleOpen((c) => void (conn = c));
        s.handleData((c, d, b) => c.write(Buffer.from(d), b));
      });
      const w = await WsPeer.connect(url, { perMessageDeflate: { threshold: 0 } });
      await waitUntil(() => conn !== undefined, 1000, 'handleOpen');
      expect(conn!.extensions).toBe(nct ? 'permessage-deflate; server_no_context_takeover' : 'permessage-deflate');
      expect(wsParams(w)['server_no_context_takeover']).toBe(nct ? true : undefined);
      for (let i = 0; i < 100; i++) await w.send(json(i));
      for (let i = 0; i < 100; i++) expect((await w.next()).data.toString()).toBe(json(i));
      sizes[String(nct)] = conn!.bytesOut;
      w.ws.close();
      await w.closed;
    }
    // Forgetting the window after each message costs bytes: the sizes prove which mode ran.
    expect(sizes['true']!).toBeGreaterThan(sizes['false']! * 2);
  });

  it('honours a client_no_context_takeover requested by ws', async () => {
    let conn: Conn<undefined> | undefined;
    const { url } = await startServer({ deflate: { threshold: 0 } }, (s) => {
      s.handleOpen((c) => void (conn = c));
      s.handleData((c, d, b) => c.write(Buffer.from(d), b));
    });
    const w = await WsPeer.connect(url, { perMessageDeflate: { threshold: 0, clientNoContextTakeover: true } });
    await waitUntil(() => conn !== undefined, 1000, 'handleOpen');
    // server_no_context_takeover: the server's default mode, 'shared'
    expect(conn!.extensions).toBe('permessage-deflate; server_no_context_takeover; client_no_context_takeover');
    expect(wsParams(w)['client_no_context_takeover']).toBe(true);
    for (let i = 0; i < 50; i++) await w.send(json(i));
    for (let i = 0; i < 50; i++) expect((await w.next()).data.toString()).toBe(json(i));
    w.ws.close();
  });

  it('interleaves compressed and uncompressed messages from ws without losing the shared window', async () => {
    const rsv1: boolean[] = [];
    const { url } = await startServer({ deflate: { threshold: 0 } }, (s) => {
      s.handleFrame((_c, f) => void rsv1.push(f.rsv1));
      s.handleData((c, d, b) => c.write(Buffer.from(d), b));
    });
    const w = await WsPeer.connect(url, { perMessageDeflate: { threshold: 0 } });
    for (let i = 0; i < 40; i++) await w.send(json(i), { compress: i % 3 !== 0 });
    for (let i = 0; i < 40; i++) expect((await w.next()).data.toString()).toBe(json(i));
    expect(rsv1).toEqual(Array.from({ length: 40 }, (_, i) => i % 3 !== 0));
    w.ws.close();
  });

  it('assembles a compressed message that ws fragments (RSV1 on the first frame only)', async () => {
    const frames: [number, boolean, boolean][] = [];
    const { url } = await startServer({ deflate: { threshold: 0 } }, (s) => {
      s.handleFrame((_c, f) => void frames.push([f.opcode, f.rsv1, f.fin]));
      s.handleData((c, d, b) => c.write(Buffer.from(d), b));
    });
    const w = await WsPeer.connect(url, { perMessageDeflate: { threshold: 0 } });
    await w.send(json(1), { fin: false, compress: true });
    await w.send(json(2), { fin: false, compress: true });
    await w.send(json(3), { fin: true, compress: true });
    expect((await w.next()).data.toString()).toBe(json(1) + json(2) + json(3));
    expect(frames).toEqual([
      [1, true, false],
      [0, false, false],
      [0, false, true],
    ]);
    w.ws.close();
  });

  it('round-trips a 1 MiB compressed message', async () => {
    const { url } = await startServer({ deflate: { threshold: 0 } }, (s) => s.handleData((c, d, b) => c.write(Buffer.from(d), b)));
    const w = await WsPeer.connect(url, { perMessageDeflate: { threshold: 0 } });
    const big = Buffer.alloc(MiB);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 10)) & 0xff;
    await w.send(big);
    const m = await w.next();
    expect(m.isBinary).toBe(true);
    expect(m.data.equals(big)).toBe(true);
    w.ws.close();
  });

  it('a server without deflate ignores the offer and ws sends uncompressed', async () => {
    const rsv1: boolean[] = [];
    const { url } = await startServer(undefined, (s) => {
      s.handleFrame((_c, f) => void rsv1.push(f.rsv1));
      s.handleData((c, d, b) => c.write(Buffer.from(d), b));
    });
    const w = await WsPeer.connect(url, { perMessageDeflate: { threshold: 0 } });
    expect(w.ws.extensions).toBe('');
    await w.send('plain');
    expect((await w.next()).data.toString()).toBe('plain');
    expect(rsv1).toEqual([false]);
    w.ws.close();
  });
});

/** The permessage-deflate parameters ws accepted (ws keeps them on a private field). */
function wsParams(w: WsPeer): Record<string, unknown> {
  const ext = (w.ws as unknown as { _extensions: Record<string, { params: Record<string, unknown> }> })._extensions;
  return ext['permessage-deflate']!.params;
}
