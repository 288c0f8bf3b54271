/**
 * listen() + handleRequest: plain HTTP requests (a load balancer's health check) get the handler's
 * answer; without a handler, or when it returns undefined, the 426 stays; upgrades never reach it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type UpgradeRequest, type WebSocketError } from '../../src/index.js';
import { RawClient, closeAll, deferred, guardProcess, rawHandshake, startServer, withTimeout } from '../helpers/net.js';

guardProcess();
afterEach(closeAll);

const health = (req: UpgradeRequest) => (req.url === '/health' ? { status: 200, body: 'ok\n' } : undefined);

describe('listen(): handleRequest answers plain HTTP requests', () => {
  it('a GET /health gets 200 with its body, through fetch (a real HTTP client)', async () => {
    const { port } = await startServer(undefined, (s) => s.handleRequest(health));
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toBe('ok\n');
  });

  it('other paths get what the handler says: its status, headers and bytes', async () => {
    const seen: string[] = [];
    const { port } = await startServer(undefined, (s) =>
      s.handleRequest((req) => {
        seen.push(`${req.method} ${req.url} ${String(req.headers['x-probe'])}`);
        if (req.url === '/metrics') return { status: 200, headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }, body: Buffer.from('{"conns":0}') };
        return { status: 404, body: 'no such page\n' };
      }),
    );
    const m = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { 'X-Probe': '1' } });
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toBe('application/json');
    expect(m.headers.get('cache-control')).toBe('no-store');
    expect(await m.json()).toEqual({ conns: 0 });
    const n = await fetch(`http://127.0.0.1:${port}/nope?x=1`);
    expect(n.status).toBe(404);
    expect(await n.text()).toBe('no such page\n');
    expect(seen).toEqual(['GET /metrics 1', 'GET /nope?x=1 undefined']);
  });

  it('paths the handler returns undefined for keep the 426 Upgrade Required, as without a handler', async () => {
    const withHandler = await startServer(undefined, (s) => s.handleRequest(health));
    const without = await startServer();
    for (const port of [withHandler.port, without.port]) {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      expect(res.status).toBe(426);
      expect(res.headers.get('upgrade')).toBe('websocket');
      expect(res.headers.get('sec-websocket-version')).toBe('13');
      await res.arrayBuffer();
    }
    // No handler: /health is a 426 too.
    const res = await fetch(`http://127.0.0.1:${without.port}/health`);
    expect(res.status).toBe(426);
    await res.arrayBuffer();
  });

  it('an async handler is awaited', async () => {
    const { port } = await startServer(undefined, (s) => s.handleRequest(async (req) => ({ status: 200, body: `later ${req.url}` })));
    const res = await fetch(`http://127.0.0.1:${port}/x`);
    expect(await res.text()).toBe('later /x');
  });

  it('a HEAD request gets the head with the Content-Length of the body, and no body (RFC 9110 §9.3.2)', async () => {
    const { port } = await startServer(undefined, (s) => s.handleRequest(health));
    const client = await RawClient.connect(port);
    client.write('HEAD /health HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await client.waitClosed();
    const text = client.received.toString('latin1');
    expect(text.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
    expect(text).toContain('Content-Length: 3\r\n');
    expect(text).toContain('Connection: close\r\n');
    expect(text.endsWith('\r\n\r\n')).toBe(true);
  });

  it('WebSocket upgrades never reach the handler, on any path', async () => {
    let calls = 0;
    const { url } = await startServer(undefined, (s) =>
      s.handleRequest(() => {
        calls++;
        return { status: 200 };
      }),
    );
    const conn = await connect(`${url}/health`);
    expect(conn.state).toBe('open');
    await conn.close();
    expect(calls).toBe(0);
  });

  it('a handler that throws: 500 to the client, the error (code WS_ERR_HANDLER_FAILED, its cause) to handleUpgradeError', async () => {
    const errors: WebSocketError[] = [];
    const boom = new Error('database is down');
    const { port } = await startServer(undefined, (s) =>
      s
        .handleRequest(() => {
          throw boom;
        })
        .handleUpgradeError((_req, e) => errors.push(e)),
    );
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    expect(res.status).toBe(500);
    // The reason goes to the report, not to the client.
    expect(await res.text()).toBe('Internal Server Error');
    expect(errors.map((e) => [e.code, e.status, e.message, e.cause])).toEqual([['WS_ERR_HANDLER_FAILED', 500, 'handleRequest failed: database is down', boom]]);
  });

  it.each([
    ['a 1xx status', { status: 101 }, 'handleRequest returned the status 101: expected an integer from 200 to 599'],
    ['a Content-Length header', { status: 200, headers: { 'content-length': '9' } }, 'handleRequest may not set the content-length header: the server sets it'],
    ['a header value with CR LF', { status: 200, headers: { 'X-A': 'a\r\nSet-Cookie: x=1' } }, 'Invalid value for header X-A: "a\\r\\nSet-Cookie: x=1"'],
    ['a body that is neither text nor bytes', { status: 200, body: 42 }, 'handleRequest returned a body that is neither a string nor bytes'],
  ])('a response with %s is not sent: 500, reported', async (_what, response, message) => {
    const errors: WebSocketError[] = [];
    const { port } = await startServer(undefined, (s) => s.handleRequest(() => response as never).handleUpgradeError((_req, e) => errors.push(e)));
    const { client, res } = await rawHandshake(port, 'GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n');
    expect(res.status).toBe(500);
    expect(res.headers['set-cookie']).toBeUndefined();
    await client.waitClosed();
    expect(errors.map((e) => [e.code, e.message])).toEqual([['WS_ERR_HANDLER_FAILED', `handleRequest failed: ${message}`]]);
  });

  it('an async handler that does not answer within handshakeTimeout: 503, reported; close() does not wait for it', async () => {
    const errors: WebSocketError[] = [];
    const never = deferred<undefined>();
    const { port, server } = await startServer({ handshakeTimeout: 200 }, (s) => s.handleRequest(() => never.promise).handleUpgradeError((_req, e) => errors.push(e)));
    const { client, res } = await withTimeout(rawHandshake(port, 'GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n'), 3000, 'the 503');
    expect(res.status).toBe(503);
    await client.waitClosed();
    expect(errors.map((e) => [e.code, e.status, e.message])).toEqual([['WS_ERR_HANDSHAKE_TIMEOUT', 503, 'handleRequest did not answer within 200 ms']]);
    // A second one still waiting when the server closes: the close ends it.
    const late = await RawClient.connect(port);
    late.write('GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await new Promise((r) => setTimeout(r, 20));
    await withTimeout(server.close(), 2000, 'close()');
    await withTimeout(late.waitClosed(), 2000, 'the waiting request to end');
  });
});
