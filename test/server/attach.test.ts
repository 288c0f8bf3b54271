/** attach(): a wschan Server serves the upgrades of an existing node:http or node:https server. */
import { createServer as createHttp, type Server as HttpServer } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { describe, expect, it } from 'vitest';
import { connect, HandshakeError, Server } from '../../src/index.js';
import { cleanupsAfterEach, listenHttp, selfSignedCert } from '../helpers/http-server.js';
import { guardProcess, withTimeout } from '../helpers/net.js';

guardProcess();

const cleanups = cleanupsAfterEach();
const listen = (server: HttpServer): Promise<number> => listenHttp(server, cleanups);

function echoServer(): Server {
  const ws = new Server().handleData((c, data, isBinary) => c.write(Buffer.from(data), isBinary));
  cleanups.push(() => ws.close());
  return ws;
}

describe('attach() to node:http', () => {
  it("an idle timeout the http server put on its sockets does not end a quiet WebSocket", async () => {
    const http = createHttp();
    http.setTimeout(150); // every accepted socket gets a 150 ms idle timeout
    const port = await listen(http);
    echoServer().attach(http);
    const conn = await connect(`ws://127.0.0.1:${port}`);
    // Quiet for well past the http timeout: the connection must still be open and working.
    await new Promise((r) => setTimeout(r, 500));
    expect(conn.state).toBe('open');
    await conn.write('still here');
    const reply = await withTimeout(conn[Symbol.asyncIterator]().next(), 2000, 'the echo');
    expect(reply.value?.data.toString()).toBe('still here');
    await conn.close();
  });

  it('serves WebSocket upgrades while normal requests are still served', async () => {
    const http = createHttp((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(`hello ${req.url}`);
    });
    echoServer().attach(http);
    const port = await listen(http);
    const r = await fetch(`http://127.0.0.1:${port}/page`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('hello /page');
    const conn = await connect(`ws://127.0.0.1:${port}/`);
    await conn.write('ping?');
    const m = await withTimeout(conn[Symbol.asyncIterator]().next(), 2000, 'the echo');
    expect(m.value).toEqual({ data: Buffer.from('ping?'), isBinary: false });
    await conn.close();
  });

  it('after server.close(), the http server no longer upgrades but still serves requests', async () => {
    const http = createHttp((_req, res) => res.end('still here'));
    const ws = echoServer().attach(http);
    const port = await listen(http);
    await ws.close();
    expect(http.listenerCount('upgrade')).toBe(0);
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('still here');
  });

  it('several servers can each take their own path on one http server', async () => {
    const http = createHttp();
    const a = new Server({ path: '/a' });
    const ws = new Server();
    // Route by hand with upgrade(): the documented way to share one http server.
    http.on('upgrade', (req, socket, head) => {
      void (req.url === '/a' ? a : ws).upgrade(req, socket, head);
    });
    a.handleData((c) => c.write('from a'));
    ws.handleData((c) => c.write('from default'));
    cleanups.push(() => a.close(), () => ws.close());
    const port = await listen(http);
    const ca = await connect(`ws://127.0.0.1:${port}/a`);
    const cb = await connect(`ws://127.0.0.1:${port}/b`);
    await ca.write('x');
    await cb.write('x');
    expect((await ca[Symbol.asyncIterator]().next()).value.data.toString()).toBe('from a');
    expect((await cb[Symbol.asyncIterator]().next()).value.data.toString()).toBe('from default');
    await Promise.all([ca.close(), cb.close()]);
  });
});

// A self-signed certificate made at test time, when openssl is available.
const tls = selfSignedCert();

describe.skipIf(tls.skip !== undefined)('attach() to node:https and connect("wss://...")', () => {
  it('speaks WebSocket over TLS with the CA given in tls.ca', async () => {
    const { key, cert } = tls as { key: Buffer; cert: Buffer };
    const https = createHttps({ key, cert }, (_req, res) => res.end('secure page'));
    echoServer().attach(https);
    const port = await listen(https);
    const conn = await connect(`wss://localhost:${port}/`, { tls: { ca: cert } });
    await conn.write(Buffer.from([1, 2, 3]));
    const m = await withTimeout(conn[Symbol.asyncIterator]().next(), 2000, 'the echo');
    expect(m.value).toEqual({ data: Buffer.from([1, 2, 3]), isBinary: true });
    const info = await conn.close(1000, 'bye');
    expect(info.code).toBe(1000);
    expect(info.wasClean).toBe(true);
  });

  it('connects to wss://127.0.0.1 without sending an IP address as the TLS server name (RFC 6066 §3)', async () => {
    const { key, cert } = tls as { key: Buffer; cert: Buffer };
    const https = createHttps({ key, cert });
    const names: (string | false | null)[] = [];
    https.on('secureConnection', (s) => names.push(s.servername));
    echoServer().attach(https);
    const port = await listen(https);
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const conn = await connect(`wss://127.0.0.1:${port}/`, { tls: { ca: cert } });
      await conn.close();
      await new Promise((r) => setTimeout(r, 20));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
    expect(names).toEqual([false]);
  });

  it('refuses a certificate it cannot verify (no CA given)', async () => {
    const { key, cert } = tls as { key: Buffer; cert: Buffer };
    const https = createHttps({ key, cert });
    echoServer().attach(https);
    const port = await listen(https);
    const err = await connect(`wss://localhost:${port}/`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as HandshakeError).code).toBe('WS_ERR_HANDSHAKE_FAILED');
    // Node 24 appends a hint (`; if the root CA is installed locally, try ... --use-system-ca`).
    expect((err as HandshakeError).message).toMatch(/^connection failed: self-signed certificate(;|$)/);
  });
});
