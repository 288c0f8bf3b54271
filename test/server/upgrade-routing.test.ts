/**
 * Several Servers, and other libraries' `upgrade` listeners, on one http server: each upgrade goes
 * to the Server of its path (or the one without a path); a Server never touches a socket it does
 * not take; an upgrade nobody takes gets a clean HTTP error, not a hang.
 */
import { once } from 'node:events';
import { createServer as createHttp, type Server as HttpServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { WebSocket as WsClient, WebSocketServer } from 'ws';
import { connect, HandshakeError, Server, type Conn, type WebSocketError } from '../../src/index.js';
import { cleanupsAfterEach, listenHttp } from '../helpers/http-server.js';
import { guardProcess, withTimeout } from '../helpers/net.js';

guardProcess();

const cleanups = cleanupsAfterEach();
const listen = (server: HttpServer): Promise<number> => listenHttp(server, cleanups);

/** A Server that answers every message with `name: message`. */
function named(name: string, path?: string): Server {
  const s = new Server(path === undefined ? {} : { path }).handleData((c, data) => c.write(`${name}: ${data.toString()}`));
  cleanups.push(() => s.close());
  return s;
}

async function roundTrip(conn: Conn, text: string): Promise<string> {
  await conn.write(text);
  const m = await withTimeout(conn[Symbol.asyncIterator]().next(), 2000, `the answer to ${text}`);
  return m.value?.data.toString() ?? '(closed)';
}

async function refusal(url: string): Promise<HandshakeError> {
  const err = await withTimeout(connect(url).catch((e: unknown) => e), 3000, `the refusal of ${url}`);
  expect(err).toBeInstanceOf(HandshakeError);
  return err as HandshakeError;
}

describe('attach(): several Servers on one http server', () => {
  it('two Servers with different paths both work, each on its own path, and exchange messages after the 101', async () => {
    const http = createHttp();
    named('a', '/a').attach(http);
    named('b', '/b').attach(http);
    const port = await listen(http);
    // Each connection carries several messages: a 404 written into it by the other Server would
    // arrive as a bad frame (the client would close with 1002).
    const ca = await connect(`ws://127.0.0.1:${port}/a?x=1`);
    const cb = await connect(`ws://127.0.0.1:${port}/b`);
    for (let i = 0; i < 3; i++) {
      expect(await roundTrip(ca, `m${i}`)).toBe(`a: m${i}`);
      expect(await roundTrip(cb, `m${i}`)).toBe(`b: m${i}`);
    }
    expect((await ca.close()).code).toBe(1000);
    expect((await cb.close()).code).toBe(1000);
    expect(http.listenerCount('upgrade')).toBe(1);
  });

  it('a Server without a path takes every path the others do not', async () => {
    const http = createHttp();
    named('any').attach(http);
    named('a', '/a').attach(http);
    const port = await listen(http);
    const ca = await connect(`ws://127.0.0.1:${port}/a`);
    const cx = await connect(`ws://127.0.0.1:${port}/elsewhere`);
    expect(await roundTrip(ca, 'hi')).toBe('a: hi');
    expect(await roundTrip(cx, 'hi')).toBe('any: hi');
    await Promise.all([ca.close(), cx.close()]);
  });

  it('an upgrade for a path no Server serves gets a 404 (reported once), and the http server still serves requests', async () => {
    const http = createHttp((_req, res) => res.end('page'));
    const errors: [string | undefined, number | undefined][] = [];
    const report = (req: { url?: string | undefined } | undefined, e: WebSocketError): void => void errors.push([req?.url, e.status]);
    named('a', '/a').handleUpgradeError(report).attach(http);
    named('b', '/b').handleUpgradeError(report).attach(http);
    const port = await listen(http);
    const err = await refusal(`ws://127.0.0.1:${port}/nowhere`);
    expect(err.status).toBe(404);
    expect(err.message).toBe('server answered 404 Not Found instead of 101');
    expect(errors).toEqual([['/nowhere', 404]]);
    expect(await (await fetch(`http://127.0.0.1:${port}/x`)).text()).toBe('page');
  });

  it('refuses to attach a second Server for the same path, or a second Server without a path', async () => {
    const http = createHttp();
    named('a', '/a').attach(http);
    named('any').attach(http);
    expect(() => named('a2', '/a').attach(http)).toThrow('another Server with path /a is attached to this http server');
    expect(() => named('any2').attach(http)).toThrow('another Server without a path is attached to this http server: give each Server its own path option');
  });

  it("a closed Server's path is free again; the last one closed, the http server has no upgrade listener left", async () => {
    const http = createHttp();
    const a = named('a', '/a').attach(http);
    const b = named('b', '/b').attach(http);
    const port = await listen(http);
    await a.close();
    expect((await refusal(`ws://127.0.0.1:${port}/a`)).status).toBe(404);
    named('a2', '/a').attach(http);
    const c = await connect(`ws://127.0.0.1:${port}/a`);
    expect(await roundTrip(c, 'x')).toBe('a2: x');
    await c.close();
    await b.close();
    expect(http.listenerCount('upgrade')).toBe(1);
    await cleanups.splice(0).reverse().reduce((p, f) => p.then(() => f()), Promise.resolve());
    expect(http.listenerCount('upgrade')).toBe(0);
  });
});

describe('a Server next to a ws WebSocketServer({ noServer: true }) on one http server', () => {
  function legacyWss(): WebSocketServer {
    const wss = new WebSocketServer({ noServer: true });
    wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`legacy: ${String(data)}`)));
    cleanups.push(() => new Promise<void>((r) => wss.close(() => r())));
    return wss;
  }

  async function wsRoundTrip(url: string, text: string): Promise<string> {
    const ws = new WsClient(url);
    try {
      await withTimeout(once(ws, 'open'), 2000, 'the ws client to open');
      const answers: string[] = [];
      ws.on('message', (d) => answers.push(String(d)));
      for (let i = 0; i < 3; i++) ws.send(`${text}${i}`);
      const closed = once(ws, 'close');
      await withTimeout(
        new Promise<void>((resolve) => {
          const t = setInterval(() => answers.length === 3 && (clearInterval(t), resolve()), 5);
        }),
        2000,
        'three answers',
      );
      ws.close(1000);
      const [code] = (await withTimeout(closed, 2000, 'the ws close')) as [number];
      expect(code).toBe(1000);
      return answers.join(',');
    } finally {
      ws.terminate();
    }
  }

  it('attach() with a path leaves the other listener its upgrades untouched; both serve their paths', async () => {
    const http = createHttp();
    const wss = legacyWss();
    http.on('upgrade', (req, socket, head) => {
      if (req.url === '/legacy') wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    });
    named('chat', '/chat').attach(http);
    const port = await listen(http);
    expect(await wsRoundTrip(`ws://127.0.0.1:${port}/legacy`, 'm')).toBe('legacy: m0,legacy: m1,legacy: m2');
    const c = await connect(`ws://127.0.0.1:${port}/chat`);
    expect(await roundTrip(c, 'hi')).toBe('chat: hi');
    await c.close();
  });

  it('an upgrade no Server takes is left to the other listener, even one that answers it later', async () => {
    const http = createHttp();
    const errors: WebSocketError[] = [];
    named('chat', '/chat').handleUpgradeError((_req, e) => errors.push(e)).attach(http);
    // Another library's listener that decides asynchronously (say, after a session lookup).
    http.on('upgrade', (req, socket) => {
      if (req.url === '/chat') return;
      setTimeout(() => socket.end('HTTP/1.1 418 I\'m a Teapot\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'), 50);
    });
    const port = await listen(http);
    const err = await refusal(`ws://127.0.0.1:${port}/other`);
    expect(err.status).toBe(418);
    expect(errors).toEqual([]);
  });

  it('routed by hand in one listener: ws for its path, server.upgrade() for the rest, which answers 404 outside its path', async () => {
    const http = createHttp();
    const wss = legacyWss();
    const chat = named('chat', '/chat');
    http.on('upgrade', (req, socket, head) => {
      if (req.url === '/legacy') wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      else void chat.upgrade(req, socket, head);
    });
    const port = await listen(http);
    expect(await wsRoundTrip(`ws://127.0.0.1:${port}/legacy`, 'm')).toBe('legacy: m0,legacy: m1,legacy: m2');
    const c = await connect(`ws://127.0.0.1:${port}/chat`);
    expect(await roundTrip(c, 'hi')).toBe('chat: hi');
    await c.close();
    const err = await refusal(`ws://127.0.0.1:${port}/nowhere`);
    expect(err.status).toBe(404);
  });
});
