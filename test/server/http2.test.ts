/**
 * WebSockets over HTTP/2 (RFC 8441) on real TLS with a self-signed certificate made here: the
 * server attached to `http2.createSecureServer({ allowHTTP1: true })`, wschan's client on shared
 * sessions, HTTP/1.1 upgrades on the same port, deflate, stream resets and GOAWAY.
 */
import { once } from 'node:events';
import {
  connect as h2connect,
  constants as h2,
  createSecureServer,
  createServer as createH2c,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type Http2SecureServer,
  type Http2Server,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, ErrorCode, HandshakeError, Server, type CloseInfo, type Conn } from '../../src/index.js';
import { makeSelfSigned, type SelfSigned } from '../../stress-tests/self-signed.js';
import { guardProcess, waitUntil, withTimeout } from '../helpers/net.js';

guardProcess();

let cert: SelfSigned;
beforeAll(() => {
  cert = makeSelfSigned();
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen(server: Http2SecureServer | Http2Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const sessions = new Set<{ destroy(): void }>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  cleanups.push(() => {
    for (const s of sessions) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return (server.address() as AddressInfo).port;
}

/** An echo Server attached to a TLS HTTP/2 server that also takes HTTP/1.1; every close is recorded. */
async function setup(options: ConstructorParameters<typeof Server>[0] = {}) {
  const h2server = createSecureServer({ cert: cert.cert, key: cert.key, allowHTTP1: true }, (req, res) => {
    res.end(`page ${req.url} over ${req.httpVersion}`);
  });
  // The stream under each server Conn: the stream event comes first, handleOpen in the same tick.
  let lastStream: ServerHttp2Stream | undefined;
  h2server.on('stream', (st) => (lastStream = st));
  const streams = new Map<Conn, ServerHttp2Stream>();
  const server = new Server(options);
  server.handleOpen((c) => {
    streams.set(c, lastStream!);
  });
  const closes: Array<{ conn: Conn; info: CloseInfo }> = [];
  const errors: string[] = [];
  server.handleData((c, data, isBinary) => c.write(Buffer.from(data), isBinary));
  server.handleClose((conn, info) => closes.push({ conn, info }));
  server.handleError((_c, e) => errors.push(e.code));
  server.attach(h2server);
  cleanups.push(() => server.close());
  const port = await listen(h2server);
  return { server, port, closes, errors, streams, url: `wss://localhost:${port}/chat` };
}

/** The client streams made on each session, in order (a Conn's stream is private). */
const made = new WeakMap<ClientHttp2Session, ClientHttp2Stream[]>();

function session(port: number): ClientHttp2Session {
  const s = h2connect(`https://localhost:${port}`, { ca: cert.cert });
  s.on('error', () => {});
  const list: ClientHttp2Stream[] = [];
  made.set(s, list);
  const request = s.request.bind(s);
  s.request = ((...args: Parameters<typeof request>) => {
    const st = request(...args);
    list.push(st);
    return st;
  }) as typeof s.request;
  cleanups.push(() => {
    s.destroy();
  });
  return s;
}

async function next(conn: Conn): Promise<string> {
  const r = await withTimeout(conn[Symbol.asyncIterator]().next(), 3000, 'a message');
  return r.value!.data.toString();
}

describe('RFC 8441: WebSockets over HTTP/2 (TLS, self-signed)', () => {
  it('answers the extended CONNECT with 200 and no Sec-WebSocket-Accept, and handleUpgrade sees an UpgradeRequest', async () => {
    const { server, port } = await setup({ protocols: ['chat'] });
    const seen: Array<{ method?: string; url?: string; httpVersion: string; host: unknown; protocols: string[] }> = [];
    server.handleUpgrade((req, info) => {
      seen.push({ method: req.method, url: req.url, httpVersion: req.httpVersion, host: req.headers.host, protocols: info.protocols });
      return { data: undefined, protocol: 'chat', headers: { 'X-Served-By': 'wschan' } };
    });
    // A raw HTTP/2 client, to see the response headers as sent.
    const s = session(port);
    await once(s, 'remoteSettings');
    expect(s.remoteSettings.enableConnectProtocol).toBe(true);
    const stream = s.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/chat?room=1', ':scheme': 'https', ':authority': `localhost:${port}`, 'sec-websocket-version': '13', 'sec-websocket-protocol': 'v1, chat' });
    const [headers] = (await once(stream, 'response')) as [Record<string, unknown>];
    expect(headers[':status']).toBe(200);
    expect(headers['sec-websocket-protocol']).toBe('chat');
    expect(headers['x-served-by']).toBe('wschan');
    expect(headers['sec-websocket-accept']).toBeUndefined();
    expect(seen).toEqual([{ method: 'CONNECT', url: '/chat?room=1', httpVersion: '2.0', host: `localhost:${port}`, protocols: ['v1', 'chat'] }]);
    expect([...server.connections][0]!.transport).toBe('http2');
    stream.close();
  });

  it('many WebSockets multiplexed on one session echo independently, with deflate, and close cleanly', async () => {
    const { server, url, port, closes } = await setup({ deflate: { threshold: 0 } });
    const s = session(port);
    const conns = await Promise.all(Array.from({ length: 50 }, () => connect(url, { http2: s, tls: { ca: cert.cert }, deflate: true })));
    expect(server.clientCount).toBe(50);
    for (const c of [...server.connections]) {
      expect(c.transport).toBe('http2');
      expect(c.extensions).toMatch(/^permessage-deflate/);
      expect(c.remoteAddress).toBe('127.0.0.1');
    }
    for (const c of conns) {
      expect(c.transport).toBe('http2');
      expect(c.extensions).toMatch(/^permessage-deflate/);
    }
    await Promise.all(conns.map((c, i) => c.write(`hello ${i} `.repeat(100))));
    const replies = await Promise.all(conns.map((c) => next(c)));
    replies.forEach((r, i) => expect(r).toBe(`hello ${i} `.repeat(100)));
    const infos = await Promise.all(conns.map((c) => c.close(1000, 'done').then(() => c.closed)));
    for (const info of infos) expect(info).toMatchObject({ code: 1000, wasClean: true, error: undefined });
    await waitUntil(() => closes.length === 50, 3000, 'the server to see 50 closes');
    for (const { info } of closes) expect(info).toMatchObject({ code: 1000, reason: 'done', wasClean: true, error: undefined });
    // One TCP connection carried them all, and it is still usable.
    expect(s.closed).toBe(false);
    const again = await connect(url, { http2: s });
    await again.write('again');
    expect(await next(again)).toBe('again');
    await again.close();
  });

  it('HTTP/1.1 upgrades, HTTP/1.1 pages and HTTP/2 WebSockets share one port', async () => {
    const { server, url, port } = await setup();
    const s = session(port);
    const [a, b] = await Promise.all([connect(url, { http2: s }), connect(url, { tls: { ca: cert.cert } })]);
    expect(a.transport).toBe('http2');
    expect(b.transport).toBe('http1');
    const transports = [...server.connections].map((c) => c.transport).sort();
    expect(transports).toEqual(['http1', 'http2']);
    await a.write('over h2');
    await b.write('over h1');
    expect(await next(a)).toBe('over h2');
    expect(await next(b)).toBe('over h1');
    // An ordinary HTTP/2 request on the same session still reaches the application.
    const req = s.request({ ':path': '/page' });
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    await once(req, 'end');
    expect(body).toBe('page /page over 2.0');
    await Promise.all([a.close(), b.close()]);
  });

  it('refuses over HTTP/2 with the status and the reason as the body (handleUpgrade, path, version)', async () => {
    const { server, port, url } = await setup({ path: '/chat' });
    const refused: Array<number | undefined> = [];
    server.handleUpgradeError((_req, e) => refused.push(e.status));
    server.handleUpgrade((req) => (req.headers['authorization'] === 'yes' ? { data: undefined } : { status: 401, reason: 'who are you?' }));
    const s = session(port);
    const err = await connect(url, { http2: s }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as HandshakeError).status).toBe(401);
    const ok = await connect(url, { http2: s, headers: { Authorization: 'yes' } });
    expect(ok.transport).toBe('http2');
    await ok.close();
    const notFound = await connect(`wss://localhost:${port}/other`, { http2: s }).catch((e: unknown) => e);
    expect((notFound as HandshakeError).status).toBe(404);
    // A raw request with a wrong version: 426 and Sec-WebSocket-Version: 13 (RFC 6455 §4.4).
    const stream = s.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/chat', ':scheme': 'https', ':authority': 'localhost', 'sec-websocket-version': '8', authorization: 'yes' });
    const [headers] = (await once(stream, 'response')) as [Record<string, unknown>];
    expect(headers[':status']).toBe(426);
    expect(headers['sec-websocket-version']).toBe('13');
    let body = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => (body += d));
    await once(stream, 'close');
    expect(body).toMatch(/Unsupported WebSocket version/);
    expect(refused).toEqual([401, 404, 426]);
    // The session survived the refusals.
    expect(s.closed || s.destroyed).toBe(false);
  });

  it('routes extended CONNECTs by path as HTTP/1.1 upgrades are: two Servers on one http2 server, 404 for the rest', async () => {
    const h2server = createSecureServer({ cert: cert.cert, key: cert.key, allowHTTP1: true });
    const chat = new Server({ path: '/chat' }).handleData((c) => c.write('chat'));
    const feed = new Server({ path: '/feed' }).handleData((c) => c.write('feed'));
    chat.attach(h2server);
    feed.attach(h2server);
    cleanups.push(() => chat.close(), () => feed.close());
    const port = await listen(h2server);
    const s = session(port);
    const [a, b] = await Promise.all([connect(`wss://localhost:${port}/chat`, { http2: s }), connect(`wss://localhost:${port}/feed?x=1`, { http2: s })]);
    await a.write('?');
    await b.write('?');
    expect(await next(a)).toBe('chat');
    expect(await next(b)).toBe('feed');
    expect([chat.clientCount, feed.clientCount]).toEqual([1, 1]);
    const err = await connect(`wss://localhost:${port}/other`, { http2: s }).catch((e: unknown) => e);
    expect((err as HandshakeError).status).toBe(404);
    // Over HTTP/1.1 on the same port, the same routes.
    const c = await connect(`wss://localhost:${port}/feed`, { tls: { ca: cert.cert } });
    expect(c.transport).toBe('http1');
    expect(feed.clientCount).toBe(2);
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('handleUpgrade headers that HTTP/2 forbids (Connection) are refused with 500, not a broken stream', async () => {
    const { server, port, url } = await setup();
    server.handleUpgrade(() => ({ data: undefined, headers: { Connection: 'keep-alive' } }));
    const s = session(port);
    const err = await connect(url, { http2: s }).catch((e: unknown) => e);
    expect((err as HandshakeError).status).toBe(500);
    expect(server.clientCount).toBe(0);
  });

  it('a stream reset by the client ends the server Conn with 1006 and WS_ERR_H2_STREAM_RESET; the other streams go on', async () => {
    const { port, url, closes } = await setup();
    const s = session(port);
    const [victim, other] = await Promise.all([connect(url, { http2: s }), connect(url, { http2: s })]);
    // Reset the victim's stream under its Conn. (destroy(err) sends RST_STREAM(INTERNAL_ERROR) alone;
    // node's close(code) sends END_STREAM before the reset, which reads as a half-close.)
    made.get(s)![0]!.destroy(new Error('tab gone'));
    await waitUntil(() => closes.length === 1, 3000, 'the server to close the reset connection');
    expect(closes[0]!.info).toMatchObject({ code: 1006, wasClean: false });
    expect(closes[0]!.info.error?.code).toBe(ErrorCode.StreamReset);
    expect(closes[0]!.info.error?.message).toBe('the HTTP/2 stream was reset (INTERNAL_ERROR)');
    const vi = await victim.closed;
    expect(vi.code).toBe(1006);
    await other.write('still here');
    expect(await next(other)).toBe('still here');
    await other.close();
  });

  it('a stream reset by the server ends the client Conn with 1006 and WS_ERR_H2_STREAM_RESET', async () => {
    const { server, port, url, streams } = await setup();
    const s = session(port);
    const errors: string[] = [];
    const c = await connect(url, { http2: s, handleError: (_c, e) => errors.push(e.code) });
    await waitUntil(() => server.clientCount === 1, 2000, 'the server conn');
    streams.get([...server.connections][0]!)!.destroy(new Error('server side failure'));
    const info = await withTimeout(c.closed, 3000, 'the client to close');
    expect(info.code).toBe(1006);
    expect(info.error?.code).toBe(ErrorCode.StreamReset);
    expect(info.error?.message).toBe('the HTTP/2 stream was reset (INTERNAL_ERROR)');
    expect(errors).toEqual([ErrorCode.StreamReset]);
  });

  it('a GOAWAY with an error code ends every WebSocket of the session with 1006 and WS_ERR_H2_SESSION_CLOSED', async () => {
    const { port, url, closes } = await setup();
    const s = session(port);
    const conns = await Promise.all([connect(url, { http2: s }), connect(url, { http2: s }), connect(url, { http2: s })]);
    // The client's session goes away with ENHANCE_YOUR_CALM (RFC 9113 §6.8).
    s.goaway(h2.NGHTTP2_ENHANCE_YOUR_CALM);
    s.destroy();
    const infos = await withTimeout(Promise.all(conns.map((c) => c.closed)), 3000, 'the client conns to close');
    for (const info of infos) expect(info.code).toBe(1006);
    await waitUntil(() => closes.length === 3, 3000, 'the server to close all three');
    for (const { info } of closes) {
      expect(info.code).toBe(1006);
      expect(info.error?.code).toBe(ErrorCode.SessionClosed);
    }
  });

  it('a graceful GOAWAY (NO_ERROR) lets open WebSockets run to their close; new ones fail', async () => {
    const { port, url, server, streams } = await setup();
    const s = session(port);
    const c = await connect(url, { http2: s });
    await waitUntil(() => server.clientCount === 1, 2000, 'the server conn');
    const serverSession = streams.get([...server.connections][0]!)!.session!;
    serverSession.goaway(h2.NGHTTP2_NO_ERROR);
    await once(s, 'goaway');
    // RFC 9113 §6.8: streams up to the last stream id carry on.
    await c.write('after goaway');
    expect(await next(c)).toBe('after goaway');
    const late = await connect(url, { http2: s }).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(HandshakeError);
    expect((late as HandshakeError).code).toBe(ErrorCode.HandshakeFailed);
    await c.close();
    expect((await c.closed).wasClean).toBe(true);
  });

  it('fails with WS_ERR_H2_NO_EXTENDED_CONNECT when the server does not allow extended CONNECT', async () => {
    const plain = createSecureServer({ cert: cert.cert, key: cert.key }, (_req, res) => res.end('x'));
    const port = await listen(plain);
    const err = await connect(`wss://localhost:${port}/`, { http2: true, tls: { ca: cert.cert } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as HandshakeError).code).toBe(ErrorCode.ExtendedConnectDisabled);
  });

  it('http2: true opens a session of its own, closed when the WebSocket closes', async () => {
    const { url, server, streams } = await setup();
    const c = await connect(url, { http2: true, tls: { ca: cert.cert } });
    expect(c.transport).toBe('http2');
    await c.write('x');
    expect(await next(c)).toBe('x');
    const serverSession = streams.get([...server.connections][0]!)!.session!;
    await c.close();
    await withTimeout(once(serverSession, 'close'), 3000, 'the session to close');
  });

  it('over cleartext HTTP/2 (h2c, http2.createServer), as behind a proxy', async () => {
    const h2c = createH2c();
    const server = new Server().handleData((c, d, b) => c.write(Buffer.from(d), b));
    server.attach(h2c);
    cleanups.push(() => server.close());
    const port = await listen(h2c);
    const c = await connect(`ws://127.0.0.1:${port}/`, { http2: true });
    expect(c.transport).toBe('http2');
    await c.write('plain');
    expect(await next(c)).toBe('plain');
    await c.close();
  });

  it('HTTP/2 flow control is the backpressure: a peer that stops reading fills the outbox, not memory', async () => {
    const { port, url, server } = await setup({ maxQueuedBytes: 256 * 1024, overflow: 'drop-newest' });
    server.handleData(() => {}); // no echo
    const s = session(port);
    const c = await connect(url, { http2: s });
    expect(c.transport).toBe("http2");
    await waitUntil(() => server.clientCount === 1, 2000, 'the server conn');
    const sc = [...server.connections][0]!;
    made.get(s)![0]!.pause(); // the client reads nothing: its stream window (64 KiB) fills
    const chunk = Buffer.alloc(16 * 1024);
    let dropped = 0;
    for (let i = 0; i < 200 && dropped === 0; i++) {
      if ((await sc.write(chunk)) === 'dropped') dropped++;
      await new Promise((r) => setImmediate(r));
    }
    expect(dropped).toBe(1);
    expect(sc.queuedBytes).toBeLessThanOrEqual(256 * 1024);
    made.get(s)![0]!.resume();
  });
});

describe('RFC 8441: the Conn over a stream is the same Conn', () => {
  it('keepalive pings run over the stream and measure rtt; counters count the stream bytes', async () => {
    const { server, port, url } = await setup({ pingInterval: 40 });
    const s = session(port);
    const c = await connect(url, { http2: s });
    await waitUntil(() => server.clientCount === 1, 2000, 'the server conn');
    const sc = [...server.connections][0]!;
    await waitUntil(() => !Number.isNaN(sc.rtt), 3000, 'a keepalive round trip');
    expect(sc.rtt).toBeGreaterThanOrEqual(0);
    await c.write('12345');
    expect(await next(c)).toBe('12345');
    expect(sc.messagesIn).toBe(1);
    expect(sc.messagesOut).toBe(1);
    // 5 payload bytes + 6 header bytes (masked), at least, plus the keepalive pongs.
    expect(sc.bytesIn).toBeGreaterThanOrEqual(11);
    expect(c.bytesOut).toBe(sc.bytesIn);
    await c.close();
  });

  it('limits hold: a message over maxMessageSize closes with 1009, and the stream ends without a reset', async () => {
    const { port, url, closes, streams } = await setup({ maxMessageSize: 1000 });
    const s = session(port);
    const c = await connect(url, { http2: s });
    await c.write('x'.repeat(2000));
    const info = await withTimeout(c.closed, 3000, 'the client to see the close');
    expect(info.code).toBe(1009);
    await waitUntil(() => closes.length === 1, 3000, 'the server close');
    expect(closes[0]!.info.code).toBe(1009);
    expect(closes[0]!.info.error?.code).toBe(ErrorCode.PayloadTooBig);
    // The WebSocket close ended the stream with END_STREAM both ways, not RST_STREAM.
    expect(streams.get(closes[0]!.conn)!.rstCode).toBe(h2.NGHTTP2_NO_ERROR);
    expect(s.closed).toBe(false);
  });

  it('server.close() sends 1001 to WebSockets over HTTP/2 and they close cleanly; the session stays', async () => {
    const { server, port, url } = await setup();
    const s = session(port);
    const conns = await Promise.all([connect(url, { http2: s }), connect(url, { http2: s })]);
    await server.close();
    const infos = await Promise.all(conns.map((c) => c.closed));
    for (const info of infos) expect(info).toMatchObject({ code: 1001, wasClean: true });
    expect(s.closed || s.destroyed).toBe(false);
  });

  it('an async handleUpgrade that never decides is refused with 503 after handshakeTimeout', async () => {
    const { server, port, url } = await setup({ handshakeTimeout: 100 });
    const refused: Array<{ code: string; status: number | undefined }> = [];
    server.handleUpgradeError((_req, e) => refused.push({ code: e.code, status: e.status }));
    server.handleUpgrade(() => new Promise(() => {}));
    const s = session(port);
    const err = await connect(url, { http2: s }).catch((e: unknown) => e);
    expect((err as HandshakeError).status).toBe(503);
    expect(refused).toEqual([{ code: ErrorCode.HandshakeTimeout, status: 503 }]);
  });

  it('connect rejects with the handshake timeout when the server never answers the CONNECT', async () => {
    const h2server = createSecureServer({ cert: cert.cert, key: cert.key, settings: { enableConnectProtocol: true } });
    h2server.on('stream', () => {}); // takes the stream, never answers
    const port = await listen(h2server);
    const s = session(port);
    const err = await connect(`wss://localhost:${port}/`, { http2: s, handshakeTimeout: 150 }).catch((e: unknown) => e);
    expect((err as HandshakeError).code).toBe(ErrorCode.HandshakeTimeout);
    expect(s.closed || s.destroyed).toBe(false); // a shared session is not ours to close
  });
});
