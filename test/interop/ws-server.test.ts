/** Interop: the wschan client (`connect`) against a `ws` WebSocketServer. */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type CloseInfo, type Conn, type Message } from '../../src/index.js';
import { deferred, guardProcess, waitUntil, withTimeout } from '../helpers/net.js';
import { startWsServer, type WsPeer } from '../helpers/ws-peer.js';

guardProcess();
const servers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of servers.splice(0)) await c();
});

const MiB = 1024 * 1024;

async function wsEcho(options: Parameters<typeof startWsServer>[0] = {}, onPeer?: (p: WsPeer) => void) {
  const s = await startWsServer(options, (p) => {
    p.ws.on('message', (data, isBinary) => p.ws.send(data as Buffer, { binary: isBinary }));
    onPeer?.(p);
  });
  servers.push(s.close);
  return s;
}

async function next(conn: Conn<undefined>, it = conn[Symbol.asyncIterator]()): Promise<Message> {
  const r = await withTimeout(it.next(), 3000, 'a message from ws');
  if (r.done) throw new Error('the connection ended');
  return r.value;
}

describe('wschan client -> ws server', () => {
  it('round-trips text, binary and empty messages', async () => {
    const { url } = await wsEcho();
    const conn = await connect(url);
    const it = conn[Symbol.asyncIterator]();
    await conn.write('héllo');
    await conn.write(Buffer.from([9, 8, 7]));
    await conn.write('');
    await conn.write(Buffer.alloc(0));
    expect(await next(conn, it)).toEqual({ data: Buffer.from('héllo'), isBinary: false });
    expect(await next(conn, it)).toEqual({ data: Buffer.from([9, 8, 7]), isBinary: true });
    expect(await next(conn, it)).toEqual({ data: Buffer.alloc(0), isBinary: false });
    expect(await next(conn, it)).toEqual({ data: Buffer.alloc(0), isBinary: true });
    await conn.close();
  });

  it('round-trips 1 MiB text and binary messages', async () => {
    const { url } = await wsEcho();
    const conn = await connect(url);
    const it = conn[Symbol.asyncIterator]();
    const text = '0123456789'.repeat(MiB / 10);
    const bin = Buffer.alloc(MiB);
    for (let i = 0; i < bin.length; i++) bin[i] = (i * 13) & 0xff;
    await conn.write(text);
    await conn.write(bin);
    const a = await next(conn, it);
    const b = await next(conn, it);
    expect(a.isBinary).toBe(false);
    expect(a.data.toString()).toBe(text);
    expect(b.isBinary).toBe(true);
    expect(b.data.equals(bin)).toBe(true);
    await conn.close();
  });

  it('assembles a fragmented message that ws sends with fin: false', async () => {
    const { url } = await startWsServer({}, (p) => {
      p.ws.send('par', { fin: false });
      p.ws.send('t-', { fin: false });
      p.ws.send('ié', { fin: true });
      p.ws.send(Buffer.from([1]), { binary: true, fin: false });
      p.ws.send(Buffer.from([2, 3]), { binary: true, fin: true });
    }).then((s) => (servers.push(s.close), s));
    const conn = await connect(url);
    const it = conn[Symbol.asyncIterator]();
    expect(await next(conn, it)).toEqual({ data: Buffer.from('part-ié'), isBinary: false });
    expect(await next(conn, it)).toEqual({ data: Buffer.from([1, 2, 3]), isBinary: true });
    await conn.close();
  });

  it('answers a ping from ws with the same payload and reports it to handlePing', async () => {
    const pings: string[] = [];
    const peer = deferred<WsPeer>();
    const { url } = await wsEcho({}, (p) => peer.resolve(p));
    const conn = await connect(url, { handlePing: (_c, p) => void pings.push(p.toString()) });
    const p = await peer.promise;
    p.ws.ping('server ping');
    await waitUntil(() => p.pongs.length === 1, 2000, 'the pong');
    expect(p.pongs[0]!.toString()).toBe('server ping');
    expect(pings).toEqual(['server ping']);
    await conn.close();
  });

  it('gets a pong from ws for conn.ping() and reports it to handlePong', async () => {
    const pongs: string[] = [];
    const peer = deferred<WsPeer>();
    const { url } = await wsEcho({}, (p) => peer.resolve(p));
    const conn = await connect(url, { handlePong: (_c, p) => void pongs.push(p.toString()) });
    expect(conn.ping('client ping')).toBe(true);
    await waitUntil(() => pongs.length === 1, 2000, 'the pong');
    expect(pongs).toEqual(['client ping']);
    expect((await peer.promise).pings.map(String)).toEqual(['client ping']);
    await conn.close();
  });

  it('a close code and reason from the client reach ws', async () => {
    const peer = deferred<WsPeer>();
    const { url } = await wsEcho({}, (p) => peer.resolve(p));
    const conn = await connect(url);
    const info = await withTimeout(conn.close(4010, 'client leaving'), 3000, 'the close');
    expect(await (await peer.promise).closed).toEqual({ code: 4010, reason: 'client leaving' });
    expect(info.code).toBe(4010);
    expect(info.wasClean).toBe(true);
  });

  it('a close code and reason from ws reach the client', async () => {
    const closed = deferred<CloseInfo>();
    const { url } = await wsEcho({}, (p) => p.ws.close(4011, 'server leaving'));
    const conn = await connect(url, { handleClose: (_c, i) => closed.resolve(i) });
    const info = await withTimeout(closed.promise, 3000, 'handleClose');
    expect(info).toMatchObject({ code: 4011, reason: 'server leaving', wasClean: true });
    expect(await conn.closed).toBe(info);
  });

  it('ws terminating the TCP connection is reported as 1006', async () => {
    const { url } = await wsEcho({}, (p) => setTimeout(() => p.ws.terminate(), 20));
    const conn = await connect(url);
    const info = await withTimeout(conn.closed, 3000, 'the close');
    expect(info.code).toBe(1006);
    expect(info.wasClean).toBe(false);
  });

  it('sends its subprotocols and gets the one ws selects', async () => {
    const { url } = await wsEcho({ handleProtocols: (protocols) => (protocols.has('b') ? 'b' : false) });
    const conn = await connect(url, { protocols: ['a', 'b'] });
    expect(conn.protocol).toBe('b');
    await conn.close();
  });
});

describe('wschan client -> ws server, permessage-deflate', () => {
  const json = (i: number): string => JSON.stringify({ seq: i, kind: 'update', body: 'lorem ipsum dolor sit amet, consectetur adipiscing elit' });

  async function deflateRun(serverPmd: object, clientDeflate: object, n: number) {
    const peer = deferred<WsPeer>();
    const { url } = await wsEcho({ perMessageDeflate: { threshold: 0, ...serverPmd } }, (p) => peer.resolve(p));
    const conn = await connect(url, { deflate: { threshold: 0, ...clientDeflate } });
    const it = conn[Symbol.asyncIterator]();
    let payload = 0;
    for (let i = 0; i < n; i++) {
      payload += json(i).length;
      await conn.write(json(i));
    }
    for (let i = 0; i < n; i++) expect((await next(conn, it)).data.toString()).toBe(json(i));
    const p = await peer.promise;
    return { conn, p, payload };
  }

  it('negotiates with ws and keeps context takeover over many messages in both directions', async () => {
    const { conn, payload } = await deflateRun({}, {}, 300);
    expect(conn.extensions).toBe('permessage-deflate');
    expect(conn.bytesOut).toBeLessThan(payload / 4);
    expect(conn.bytesIn).toBeLessThan(payload / 4);
    await conn.close();
  });

  it('asks ws for server_no_context_takeover and decodes what ws then sends', async () => {
    const { conn, payload } = await deflateRun({}, { serverNoContextTakeover: true }, 100);
    expect(conn.extensions).toContain('server_no_context_takeover');
    // Our own direction keeps its window, so it stays small; ws's direction compresses each alone.
    expect(conn.bytesOut).toBeLessThan(payload / 4);
    expect(conn.bytesIn).toBeGreaterThan(conn.bytesOut * 2);
    await conn.close();
  });

  it('honours server_no_context_takeover and client_no_context_takeover imposed by ws', async () => {
    const { conn, payload } = await deflateRun({ serverNoContextTakeover: true, clientNoContextTakeover: true }, {}, 100);
    expect(conn.extensions).toContain('server_no_context_takeover');
    expect(conn.extensions).toContain('client_no_context_takeover');
    expect(conn.bytesOut).toBeLessThan(payload);
    await conn.close();
  });

  it('works with smaller windows (client_max_window_bits=9, server_max_window_bits=10)', async () => {
    const { conn } = await deflateRun({}, { clientMaxWindowBits: 9, serverMaxWindowBits: 10 }, 50);
    expect(conn.extensions).toContain('server_max_window_bits=10');
    await conn.close();
  });

  it('round-trips a 1 MiB compressed message', async () => {
    const { url } = await wsEcho({ perMessageDeflate: { threshold: 0 } });
    const conn = await connect(url, { deflate: { threshold: 0 } });
    const big = Buffer.alloc(MiB);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 10)) & 0xff;
    await conn.write(big);
    const m = await next(conn);
    expect(m.isBinary).toBe(true);
    expect(m.data.equals(big)).toBe(true);
    await conn.close();
  });

  it('a ws server without deflate declines, and messages flow uncompressed', async () => {
    const { url } = await wsEcho({ perMessageDeflate: false });
    const conn = await connect(url, { deflate: true });
    expect(conn.extensions).toBeUndefined();
    await conn.write('plain');
    expect((await next(conn)).data.toString()).toBe('plain');
    await conn.close();
  });
});
