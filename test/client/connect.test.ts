/**
 * connect(): against our own server, and against tiny raw TCP fakes that answer the handshake
 * wrongly (RFC 6455 §4.1: the client MUST fail the connection).
 */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { networkInterfaces } from 'node:os';
import { connect, HandshakeError, OptionsError, Server, WebSocketError, type CloseInfo, type Conn, type Message } from '../../src/index.js';
import { computeAcceptKey, closeAll, deferred, guardProcess, readRequestHead, startServer, startTcpServer, waitUntil, withTimeout } from '../helpers/net.js';

guardProcess();
const hasIpv6Loopback = Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address === '::1'));
if (!hasIpv6Loopback) console.warn('skipping the IPv6 connect test: no ::1 loopback interface');
const fakes: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of fakes.splice(0)) await f();
  await closeAll();
});

async function echo(options?: Parameters<typeof startServer>[0]) {
  return startServer(options, (s) => s.handleData((c, data, isBinary) => c.write(Buffer.from(data), isBinary)));
}

/** A fake server that reads the request and answers with `respond(headers)` (raw bytes). */
async function fake(respond: (req: Record<string, string>, socket: Socket) => string | undefined): Promise<string> {
  const f = await startTcpServer((socket) => {
    void readRequestHead(socket)
      .then(({ headers }) => {
        const r = respond(headers, socket);
        if (r !== undefined) socket.write(r);
      })
      .catch(() => {});
  });
  fakes.push(f.close);
  return `ws://127.0.0.1:${f.port}/`;
}

function accept101(req: Record<string, string>, extra = ''): string {
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${computeAcceptKey(req['sec-websocket-key']!)}\r\n${extra}\r\n`;
}

async function expectRejects(p: Promise<unknown>, cls: typeof WebSocketError, code: string, message: string | RegExp): Promise<WebSocketError> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(cls);
  const e = err as WebSocketError;
  expect(e.code).toBe(code);
  if (typeof message === 'string') expect(e.message).toBe(message);
  else expect(e.message).toMatch(message);
  return e;
}

describe('connect() against wschan', () => {
  it('round-trips text and binary messages', async () => {
    const { url } = await echo();
    const conn = await connect(url);
    const it = conn[Symbol.asyncIterator]();
    await conn.write('héllo');
    expect((await it.next()).value).toEqual({ data: Buffer.from('héllo'), isBinary: false });
    await conn.write(new Uint8Array([0, 255]));
    expect((await it.next()).value).toEqual({ data: Buffer.from([0, 255]), isBinary: true });
    await conn.write('');
    expect((await it.next()).value).toEqual({ data: Buffer.alloc(0), isBinary: false });
    await conn.close();
  });

  it('is an async iterator that ends when the connection closes', async () => {
    const { url } = await startServer(undefined, (s) =>
      s.handleOpen(async (c) => {
        for (let i = 0; i < 5; i++) await c.write(`m${i}`);
        await c.close(1000, 'done');
      }),
    );
    const conn = await connect(url);
    const got: string[] = [];
    for await (const m of conn) got.push(m.data.toString());
    expect(got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    const info = await conn.closed;
    expect(info).toMatchObject({ code: 1000, reason: 'done', wasClean: true });
  });

  it('calls handleOpen, handleData and handleClose', async () => {
    const { url } = await echo();
    const events: string[] = [];
    const closed = deferred<CloseInfo>();
    const conn = await connect<{ n: number }>(url, {
      data: { n: 7 },
      handleOpen: (c) => {
        events.push(`open ${c.data.n}`);
        void c.write('hi');
      },
      handleData: (c, data, isBinary) => {
        events.push(`data ${data.toString()} ${isBinary}`);
        void c.close(4000, 'enough');
      },
      handleClose: (_c, info) => {
        events.push(`close ${info.code}`);
        closed.resolve(info);
      },
    });
    const info = await withTimeout(closed.promise, 2000, 'handleClose');
    expect(events).toEqual(['open 7', 'data hi false', 'close 4000']);
    // The server echoes the code without the reason (RFC 6455 §5.5.1); info holds the peer's frame.
    expect(info).toMatchObject({ code: 4000, reason: '', wasClean: true });
    expect(conn.data).toEqual({ n: 7 });
  });

  it("close(code, reason) reaches the server's handleClose with both", async () => {
    const closed = deferred<CloseInfo>();
    const { url } = await startServer(undefined, (s) => s.handleClose((_c, i) => closed.resolve(i)));
    const conn = await connect(url);
    const mine = await conn.close(4000, 'enough');
    expect(mine.wasClean).toBe(true);
    expect(await withTimeout(closed.promise, 2000, 'handleClose')).toMatchObject({ code: 4000, reason: 'enough', wasClean: true });
  });

  it('handleOpen throwing is reported to handleError and closes with 1011', async () => {
    const { url } = await startServer();
    const errors: WebSocketError[] = [];
    const conn = await connect(url, {
      handleOpen: () => {
        throw new Error('client boom');
      },
      handleError: (_c, e) => void errors.push(e),
    });
    const info = await withTimeout(conn.closed, 2000, 'the close');
    expect(info.code).toBe(1011);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(WebSocketError);
    expect(errors[0]!.code).toBe('WS_ERR_HANDLER_FAILED');
    expect(errors[0]!.closeCode).toBe(1011);
    expect(errors[0]!.message).toBe('handleOpen threw: client boom');
  });

  it('negotiates a subprotocol: conn.protocol is the one the server chose', async () => {
    let serverSide: Conn<undefined> | undefined;
    const { url } = await startServer({ protocols: ['v2', 'v1'] }, (s) => s.handleOpen((c) => void (serverSide = c)));
    const conn = await connect(url, { protocols: ['v1', 'v2'] });
    expect(conn.protocol).toBe('v2');
    await waitUntil(() => serverSide !== undefined, 2000, 'handleOpen');
    expect(serverSide!.protocol).toBe('v2');
    await conn.close();
  });

  it('has no protocol when the server selects none', async () => {
    const { url } = await echo();
    const conn = await connect(url, { protocols: ['v1'] });
    expect(conn.protocol).toBeUndefined();
    await conn.close();
  });

  it('sends its headers and origin', async () => {
    let seen: Record<string, string | string[] | undefined> | undefined;
    const { url } = await startServer(undefined, (s) =>
      s.handleUpgrade((req) => {
        seen = req.headers;
        return { data: undefined };
      }),
    );
    const conn = await connect(`${url}/path?q=1`, { headers: { 'X-Token': 'abc' }, origin: 'https://app.example' });
    expect(seen!['x-token']).toBe('abc');
    expect(seen!['origin']).toBe('https://app.example');
    await conn.close();
  });

  it.skipIf(!hasIpv6Loopback)('connects to an IPv6 literal URL ws://[::1]:port/path?query', async () => {
    let path: string | undefined;
    const server = new Server().handleUpgrade((req) => {
      path = req.url;
      return { data: undefined };
    });
    const addr = await server.listen({ port: 0, host: '::1' });
    try {
      const conn = await connect(`ws://[::1]:${addr.port}/x?y=1`);
      expect(path).toBe('/x?y=1');
      expect(conn.remoteAddress).toBe('::1');
      await conn.close();
    } finally {
      await server.close();
    }
  });

  it('reports a refusal by our server as HandshakeError with its status', async () => {
    const { url } = await startServer(undefined, (s) => s.handleUpgrade(() => ({ status: 401, reason: 'who are you' })));
    const e = await expectRejects(connect(url), HandshakeError, 'WS_ERR_HANDSHAKE_FAILED', 'server answered 401 Unauthorized instead of 101');
    expect(e.status).toBe(401);
  });
});

describe('connect(): handshake failures', () => {
  it('fails with WS_ERR_HANDSHAKE_TIMEOUT when the server accepts TCP and never answers', async () => {
    const url = await fake(() => undefined);
    const t0 = Date.now();
    await expectRejects(connect(url, { handshakeTimeout: 200 }), HandshakeError, 'WS_ERR_HANDSHAKE_TIMEOUT', 'no handshake response within 200 ms');
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it('fails with the status of a non-101 response', async () => {
    const url = await fake(() => 'HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope');
    const e = await expectRejects(connect(url), HandshakeError, 'WS_ERR_HANDSHAKE_FAILED', 'server answered 403 Forbidden instead of 101');
    expect(e.status).toBe(403);
  });

  it('fails a 101 with a wrong Sec-WebSocket-Accept (§4.1 item 4)', async () => {
    const url = await fake(() => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${computeAcceptKey('AAAAAAAAAAAAAAAAAAAAAA==')}\r\n\r\n`);
    await expectRejects(connect(url), HandshakeError, 'WS_ERR_HANDSHAKE_FAILED', 'Invalid Sec-WebSocket-Accept header');
  });

  it('fails a 101 without Sec-WebSocket-Accept', async () => {
    const url = await fake(() => 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    await expectRejects(connect(url), HandshakeError, 'WS_ERR_HANDSHAKE_FAILED', 'Missing Sec-WebSocket-Accept header');
  });

  it('fails a 101 selecting a subprotocol that was not requested (§4.1 item 6)', async () => {
    const url = await fake((req) => accept101(req, 'Sec-WebSocket-Protocol: evil\r\n'));
    await expectRejects(connect(url, { protocols: ['good'] }), HandshakeError, 'WS_ERR_HANDSHAKE_FAILED', 'Server selected subprotocol "evil", which was not requested');
  });

  it('fails a 101 selecting a subprotocol when none was requested', async () => {
    const url = await fake((req) => accept101(req, 'Sec-WebSocket-Protocol: chat\r\n'));
    await expectRejects(connect(url), HandshakeError, 'WS_ERR_HANDSHAKE_FAILED', 'Server selected subprotocol "chat" but none was requested');
  });

  it('fails a 101 with an extension that was not offered (§4.1 item 5)', async () => {
    const url = await fake((req) => accept101(req, 'Sec-WebSocket-Extensions: permessage-deflate\r\n'));
    await expectRejects(connect(url), HandshakeError, 'WS_ERR_HANDSHAKE_FAILED', 'Server sent Sec-WebSocket-Extensions but no extension was offered');
  });

  it('fails a 101 whose deflate answer raises client_max_window_bits above the offer (RFC 7692 §7.1.2.2)', async () => {
    let offered: string | undefined;
    const url = await fake((req) => {
      offered = req['sec-websocket-extensions'];
      return accept101(req, 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=12\r\n');
    });
    await expectRejects(
      connect(url, { deflate: { clientMaxWindowBits: 10 } }),
      HandshakeError,
      'WS_ERR_HANDSHAKE_FAILED',
      'Invalid permessage-deflate response: client_max_window_bits=12 exceeds the offered 10',
    );
    expect(offered).toBe('permessage-deflate; client_max_window_bits=10');
  });

  it('destroys the socket of a failed 101 (the fake sees the connection end)', async () => {
    const gone = deferred<void>();
    const url = await fake((req, socket) => {
      socket.on('close', () => gone.resolve());
      return accept101(req, 'Sec-WebSocket-Protocol: x\r\n');
    });
    await connect(url).catch(() => {});
    await withTimeout(gone.promise, 2000, 'the fake to see the socket close');
  });

  it('fails with WS_ERR_ABORTED when the AbortSignal fires during the handshake', async () => {
    const url = await fake(() => undefined);
    const ac = new AbortController();
    const p = connect(url, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('user left')), 50);
    const e = await expectRejects(p, WebSocketError, 'WS_ERR_ABORTED', 'connect aborted');
    expect((e.cause as Error).message).toBe('user left');
  });

  it('fails with WS_ERR_ABORTED at once for a signal already aborted', async () => {
    const { url } = await echo();
    await expectRejects(connect(url, { signal: AbortSignal.abort() }), WebSocketError, 'WS_ERR_ABORTED', 'connect aborted');
  });

  it('an AbortSignal fired after the handshake leaves the connection open', async () => {
    const { url } = await echo();
    const ac = new AbortController();
    const conn = await connect(url, { signal: ac.signal });
    ac.abort();
    await conn.write('still open');
    expect((await withTimeout(conn[Symbol.asyncIterator]().next(), 2000, 'the echo')).value.data.toString()).toBe('still open');
    expect(conn.state).toBe('open');
    await conn.close();
  });

  it('fails with WS_ERR_HANDSHAKE_FAILED when nothing listens', async () => {
    const f = await startTcpServer(() => {});
    await f.close();
    await expectRejects(connect(`ws://127.0.0.1:${f.port}/`), HandshakeError, 'WS_ERR_HANDSHAKE_FAILED', /^connection failed: connect ECONNREFUSED/);
  });
});

describe('connect(): bad arguments', () => {
  it('refuses a string that is not a URL with WS_ERR_INVALID_ARGUMENT', async () => {
    await expectRejects(connect('not a url'), WebSocketError, 'WS_ERR_INVALID_ARGUMENT', 'invalid URL: not a url');
  });

  it('refuses a scheme other than ws/wss with WS_ERR_INVALID_ARGUMENT', async () => {
    await expectRejects(connect('ftp://127.0.0.1/'), WebSocketError, 'WS_ERR_INVALID_ARGUMENT', 'unsupported URL scheme ftp: (use ws:, wss:, ws+unix: or wss+unix:)');
  });

  it('refuses a URL with a fragment (RFC 6455 §3)', async () => {
    await expectRejects(connect('ws://127.0.0.1/#x'), WebSocketError, 'WS_ERR_INVALID_ARGUMENT', 'a WebSocket URL must not have a fragment (RFC 6455 §3)');
  });

  it('refuses an unknown option with WS_ERR_INVALID_OPTIONS naming it', async () => {
    await expectRejects(connect('ws://127.0.0.1/', { handshakeTimout: 5 } as never), OptionsError, 'WS_ERR_INVALID_OPTIONS', 'invalid client options: /handshakeTimout: Unexpected property');
  });

  it('refuses a duplicate subprotocol with WS_ERR_INVALID_ARGUMENT', async () => {
    await expectRejects(connect('ws://127.0.0.1/', { protocols: ['a', 'a'] }), WebSocketError, 'WS_ERR_INVALID_ARGUMENT', 'Invalid or duplicate subprotocol "a"');
  });

  it('refuses a header value with CR/LF with WS_ERR_INVALID_ARGUMENT', async () => {
    await expectRejects(connect('ws://127.0.0.1/', { headers: { 'X-A': 'a\r\nX-B: b' } }), WebSocketError, 'WS_ERR_INVALID_ARGUMENT', /^Invalid value for header X-A/);
  });
});

// Keep the Message type in use for readers of this file.
export type { Message };
