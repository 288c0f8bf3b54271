/**
 * How connect() reaches a server: through an HTTP proxy (an `agent` such as https-proxy-agent,
 * or a `createConnection` hook), over a unix domain socket (`ws+unix:` or `socketPath`), and
 * after redirects (`followRedirects`, bounded by `maxRedirects`).
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, HandshakeError, Server, type Conn, type UpgradeRequest } from '../../src/index.js';
import { closeAll, guardProcess, startServer } from '../helpers/net.js';

guardProcess();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await closeAll();
});

/** An echo server that also records each upgrade request. */
async function echo() {
  const requests: UpgradeRequest[] = [];
  const s = await startServer(undefined, (srv) =>
    srv
      .handleUpgrade((req) => {
        requests.push(req);
        return { data: undefined };
      })
      .handleData((c, data, isBinary) => c.write(Buffer.from(data), isBinary)),
  );
  return { ...s, requests };
}

async function roundTrip(conn: Conn, text: string): Promise<string> {
  await conn.write(text);
  for await (const m of conn) return m.data.toString();
  throw new Error('closed before the echo');
}

async function listenHttp(server: HttpServer, where: number | string = 0): Promise<void> {
  if (typeof where === 'string') server.listen(where);
  else server.listen(where, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
}

/** A tiny HTTP CONNECT proxy on loopback (RFC 9110 §9.3.6): it tunnels bytes and records each target. */
async function startConnectProxy(): Promise<{ url: string; port: number; tunnels: string[] }> {
  const tunnels: string[] = [];
  const proxy = createHttpServer((_req, res) => res.writeHead(405).end());
  const sockets = new Set<Duplex>();
  proxy.on('connect', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    tunnels.push(req.url ?? '');
    sockets.add(client);
    const [host, port] = (req.url ?? '').split(':');
    const upstream = netConnect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
  });
  await listenHttp(proxy);
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
  });
  const port = (proxy.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, port, tunnels };
}

describe('through an HTTP proxy', () => {
  it('an agent (https-proxy-agent) tunnels the connection through CONNECT', async () => {
    const { port, requests } = await echo();
    const proxy = await startConnectProxy();
    const agent = new HttpsProxyAgent(proxy.url);
    const conn = await connect(`ws://127.0.0.1:${port}/chat?room=1`, { agent });
    expect(await roundTrip(conn, 'via proxy')).toBe('via proxy');
    expect(proxy.tunnels).toEqual([`127.0.0.1:${port}`]);
    expect(requests[0]!.url).toBe('/chat?room=1');
    agent.destroy();
  });

  it('a createConnection hook can open the tunnel itself (the socket passed to its callback later)', async () => {
    const { port } = await echo();
    const proxy = await startConnectProxy();
    const conn = await connect(`ws://127.0.0.1:${port}/`, {
      createConnection: (_options, callback) => {
        const req = httpRequest({ host: '127.0.0.1', port: proxy.port, method: 'CONNECT', path: `127.0.0.1:${port}` });
        req.on('connect', (res: IncomingMessage, socket: Socket) => {
          if (res.statusCode === 200) callback(null, socket);
          else callback(new Error(`proxy answered ${res.statusCode}`), socket);
        });
        req.on('error', (err) => callback(err, undefined as never));
        req.end();
        return undefined;
      },
    });
    expect(await roundTrip(conn, 'hooked')).toBe('hooked');
    expect(proxy.tunnels).toEqual([`127.0.0.1:${port}`]);
  });

  it('a proxy that refuses the tunnel fails the handshake with a HandshakeError', async () => {
    const refusing = createHttpServer();
    refusing.on('connect', (_req, socket: Duplex) => socket.end('HTTP/1.1 403 Forbidden\r\n\r\n'));
    await listenHttp(refusing);
    const agent = new HttpsProxyAgent(`http://127.0.0.1:${(refusing.address() as { port: number }).port}`);
    const err = await connect('ws://127.0.0.1:9/', { agent, handshakeTimeout: 3000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    agent.destroy();
  });
});

describe('over a unix domain socket', () => {
  async function unixServer() {
    const dir = mkdtempSync(join(tmpdir(), 'wschan-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const socketPath = join(dir, 'ws.sock');
    const http = createHttpServer((_req, res) => res.end('plain http'));
    const server = new Server<string | undefined>().handleUpgrade((req) => ({ data: req.url })).handleData((c, data) => c.write(`${String(c.data)} ${data.toString()}`));
    server.attach(http);
    await listenHttp(http, socketPath);
    cleanups.push(() => server.close());
    return socketPath;
  }

  it('ws+unix:<socket>:<path> reaches a Server attached to an http server listening on that path', async () => {
    const socketPath = await unixServer();
    const conn = await connect(`ws+unix:${socketPath}:/room/7?x=1`);
    expect(await roundTrip(conn, 'hello')).toBe('/room/7?x=1 hello');
  });

  it('ws+unix: with no request path asks for /', async () => {
    const socketPath = await unixServer();
    const conn = await connect(`ws+unix://${socketPath}`);
    expect(await roundTrip(conn, 'x')).toBe('/ x');
  });

  it('the socketPath option sends a ws:// URL\'s path over the unix socket', async () => {
    const socketPath = await unixServer();
    const conn = await connect('ws://localhost/over-socket', { socketPath });
    expect(await roundTrip(conn, 'y')).toBe('/over-socket y');
  });

  it('a missing socket fails the handshake with a HandshakeError naming the error', async () => {
    const err = await connect('ws+unix:/nonexistent/wschan.sock:/').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as Error).message).toMatch(/^connection failed: connect ENOENT/);
  });
});

describe('redirects', () => {
  /** An http server that answers every request with `status` and a Location made by `to(url)`. */
  async function redirector(status: number, to: (url: string) => string) {
    const seen: IncomingMessage[] = [];
    const http = createHttpServer((req, res) => {
      seen.push(req);
      res.writeHead(status, { location: to(req.url ?? '/') }).end();
    });
    // An upgrade request is answered like any other request: with the redirect.
    http.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      seen.push(req);
      socket.end(`HTTP/1.1 ${status} Moved\r\nLocation: ${to(req.url ?? '/')}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    });
    await listenHttp(http);
    return { port: (http.address() as { port: number }).port, seen };
  }

  for (const status of [301, 302, 303, 307, 308]) {
    it(`follows a ${status} to the Location when followRedirects is set`, async () => {
      const { port, requests } = await echo();
      const r = await redirector(status, (url) => `ws://127.0.0.1:${port}${url}`);
      const conn = await connect(`ws://127.0.0.1:${r.port}/a?b=1`, { followRedirects: true });
      expect(await roundTrip(conn, 'moved')).toBe('moved');
      expect(r.seen.map((q) => q.url)).toEqual(['/a?b=1']);
      expect(requests.map((q) => q.url)).toEqual(['/a?b=1']);
    });
  }

  it('follows a relative Location on the same server, and an http: Location as ws:', async () => {
    const { port, requests } = await echo();
    const served: string[] = [];
    const upgrades = new Server().handleData((c, data) => c.write(data.toString()));
    const http = createHttpServer();
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      served.push(req.url ?? '');
      if (req.url === '/start') socket.end('HTTP/1.1 302 Found\r\nLocation: ../final?q=1\r\nContent-Length: 0\r\n\r\n');
      else if (req.url === '/away') socket.end(`HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:${port}/echo\r\nContent-Length: 0\r\n\r\n`);
      else upgrades.upgrade(req, socket, head);
    });
    await listenHttp(http);
    cleanups.push(() => upgrades.close());
    const here = (http.address() as { port: number }).port;
    const conn = await connect(`ws://127.0.0.1:${here}/start`, { followRedirects: true });
    expect(await roundTrip(conn, 'relative')).toBe('relative');
    expect(served).toEqual(['/start', '/final?q=1']);
    const away = await connect(`ws://127.0.0.1:${here}/away`, { followRedirects: true });
    expect(await roundTrip(away, 'http')).toBe('http');
    expect(requests.map((q) => q.url)).toEqual(['/echo']);
  });

  it('stops after maxRedirects with WS_ERR_TOO_MANY_REDIRECTS', async () => {
    const r = await redirector(307, (url) => `${url}x`);
    const loop = await connect(`ws://127.0.0.1:${r.port}/`, { followRedirects: true, maxRedirects: 2 }).catch((e: unknown) => e);
    expect(loop).toBeInstanceOf(HandshakeError);
    expect((loop as HandshakeError).code).toBe('WS_ERR_TOO_MANY_REDIRECTS');
    expect((loop as HandshakeError).status).toBe(307);
    expect(r.seen.map((q) => q.url)).toEqual(['/', '/x', '/xx']);
  });

  it('does not follow without followRedirects: the 3xx fails the handshake with its status', async () => {
    const r = await redirector(301, () => 'ws://127.0.0.1:9/');
    const err = await connect(`ws://127.0.0.1:${r.port}/`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as HandshakeError).status).toBe(301);
    expect(r.seen).toHaveLength(1);
  });

  it('keeps credentials on the same origin and drops them when the redirect leaves it', async () => {
    const { port, requests } = await echo();
    const cross = await redirector(302, () => `ws://localhost:${port}/other`);
    const headers = { authorization: 'Bearer secret', cookie: 'sid=1', 'x-trace': 't' };
    await (await connect(`ws://127.0.0.1:${cross.port}/`, { followRedirects: true, headers })).close();
    expect(requests[0]!.headers['authorization']).toBeUndefined();
    expect(requests[0]!.headers['cookie']).toBeUndefined();
    expect(requests[0]!.headers['x-trace']).toBe('t');
    // Same scheme, host and port: a relative Location keeps them.
    const same = new Server().handleUpgrade((req) => {
      requests.push(req);
      return { data: undefined };
    });
    const http = createHttpServer();
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (req.url === '/old') socket.end('HTTP/1.1 308 Permanent Redirect\r\nLocation: /new\r\nContent-Length: 0\r\n\r\n');
      else same.upgrade(req, socket, head);
    });
    await listenHttp(http);
    cleanups.push(() => same.close());
    await (await connect(`ws://127.0.0.1:${(http.address() as { port: number }).port}/old`, { followRedirects: true, headers })).close();
    expect(requests[1]!.url).toBe('/new');
    expect(requests[1]!.headers['authorization']).toBe('Bearer secret');
    expect(requests[1]!.headers['cookie']).toBe('sid=1');
  });
});
