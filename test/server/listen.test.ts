/**
 * listen() reads request heads itself (no node:http): what it answers to each kind of request,
 * what `req` handleUpgrade and handleUpgradeError get, the one handshake deadline, close(), and
 * the synchronous handshake when no decision is awaited.
 */
import { duplexPair } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Server, type Conn, type UpgradeRequest, type WebSocketError } from '../../src/index.js';
import { Opcode } from '../../src/protocol/constants.js';
import { KEY, RawClient, clientFrame, closeAll, deferred, guardProcess, rawHandshake, sleep, startServer, upgradeRequest, waitUntil, withTimeout } from '../helpers/net.js';

guardProcess();
afterEach(closeAll);

/** A server that records every refusal it reports, with the request it was given. */
async function recording(options?: Parameters<typeof startServer>[0], setup?: (s: Server) => void) {
  const refusals: { req: UpgradeRequest | undefined; error: WebSocketError }[] = [];
  const started = await startServer(options, (s) => {
    s.handleUpgradeError((req, error) => refusals.push({ req, error }));
    setup?.(s);
  });
  return { ...started, refusals };
}

function summary(refusals: { req: UpgradeRequest | undefined; error: WebSocketError }[]): unknown[] {
  return refusals.map(({ req, error }) => ({ req: req === undefined ? undefined : 'req', status: error.status, code: error.code, message: error.message }));
}

describe('listen(): requests that are not a handshake', () => {
  it('answers an HTTP/1.0 GET without Upgrade with 426, as an HTTP/1.1 one, and does not report it', async () => {
    const { port, refusals } = await recording();
    const { client, res } = await rawHandshake(port, 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n');
    expect(res.status).toBe(426);
    expect(res.headers['upgrade']).toBe('websocket');
    expect(res.headers['sec-websocket-version']).toBe('13');
    await client.waitClosed();
    expect(refusals).toEqual([]);
  });

  it('names Upgrade in the Connection header of the 426 (RFC 9110 §7.8) and closes the connection', async () => {
    const { port } = await recording();
    const { client, res } = await rawHandshake(port, 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    expect(res.headers['connection']?.toLowerCase().split(/\s*,\s*/).sort()).toEqual(['close', 'upgrade']);
    await client.waitClosed();
  });

  it('answers a HEAD request with the 426 head and no body', async () => {
    const { port } = await recording();
    const client = await RawClient.connect(port);
    client.write('HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await client.waitClosed();
    const text = client.received.toString('latin1');
    expect(text.startsWith('HTTP/1.1 426 Upgrade Required\r\n')).toBe(true);
    expect(text.endsWith('\r\n\r\n')).toBe(true);
    expect(text).toContain('Content-Length: 55\r\n');
  });

  it('answers a POST with a body with 426 and reads the body, so the client gets the whole response', async () => {
    const { port } = await recording();
    const client = await RawClient.connect(port);
    const body = 'x'.repeat(200_000);
    client.write(`POST /form HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await client.waitClosed(3000);
    const res = await client.response();
    expect(res.status).toBe(426);
    expect(res.body).toBe('This is a WebSocket endpoint: send an Upgrade request.\n');
  });
});

describe('listen(): heads it cannot read', () => {
  it('refuses a head with bare LF line ends with 400 at once, reported without a request', async () => {
    const { port, refusals } = await recording({ handshakeTimeout: 5000 });
    const t0 = Date.now();
    const { client, res } = await rawHandshake(port, upgradeRequest().replaceAll('\r\n', '\n'));
    expect(res.status).toBe(400);
    await client.waitClosed();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(summary(refusals)).toEqual([{ req: undefined, status: 400, code: 'WS_ERR_HANDSHAKE_FAILED', message: 'Bad Request: a line ends with a bare LF (expected CRLF)' }]);
  });

  it('refuses whitespace before a colon with 400 (RFC 9112 §5.1)', async () => {
    const { port, refusals } = await recording();
    const { res } = await rawHandshake(port, upgradeRequest().replace('Upgrade:', 'Upgrade :'));
    expect(res.status).toBe(400);
    expect(res.body).toBe('Bad Request: whitespace before the colon in header "Upgrade"');
    expect(summary(refusals)).toEqual([{ req: undefined, status: 400, code: 'WS_ERR_HANDSHAKE_FAILED', message: 'Bad Request: whitespace before the colon in header "Upgrade"' }]);
  });

  it('refuses two Host headers with 400 (RFC 9112 §3.2)', async () => {
    const { port, refusals } = await recording();
    const { res } = await rawHandshake(port, upgradeRequest().replace('\r\n\r\n', '\r\nHost: other\r\n\r\n'));
    expect(res.status).toBe(400);
    expect(summary(refusals)).toEqual([{ req: undefined, status: 400, code: 'WS_ERR_HANDSHAKE_FAILED', message: 'Bad Request: more than one Host header' }]);
  });

  it('refuses an HTTP/2.0 request-line with 505', async () => {
    const { port, refusals } = await recording();
    const { res } = await rawHandshake(port, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    expect(res.status).toBe(505);
    expect(summary(refusals)).toEqual([{ req: undefined, status: 505, code: 'WS_ERR_HANDSHAKE_FAILED', message: 'HTTP Version Not Supported: HTTP/2.0' }]);
  });

  it('refuses more than 100 header fields with 431', async () => {
    const { port, refusals } = await recording();
    let extra = '';
    for (let i = 0; i < 100; i++) extra += `X-${i}: 1\r\n`;
    const { res } = await rawHandshake(port, upgradeRequest().replace('\r\n\r\n', `\r\n${extra}\r\n`));
    expect(res.status).toBe(431);
    expect(summary(refusals)).toEqual([{ req: undefined, status: 431, code: 'WS_ERR_HANDSHAKE_FAILED', message: 'Request Header Fields Too Large: more than 100 header fields' }]);
  });

  it('does not report a client that leaves before sending a request, nor answer it', async () => {
    const { server, port, refusals } = await recording({ handshakeTimeout: 200 });
    const client = await RawClient.connect(port);
    client.write('GET / HT');
    await sleep(20);
    client.destroy();
    await sleep(450);
    expect(refusals).toEqual([]);
    expect(server.clientCount).toBe(0);
  });
});

describe('listen(): the socket listeners', () => {
  it('a socket holds one data and one error listener from accept to close (the Conn\'s), and a reset before or after the handshake is survived', async () => {
    const counts: string[] = [];
    const count = (sock: { listenerCount(e: string): number }, at: string) => counts.push(`${at}: data ${sock.listenerCount('data')} error ${sock.listenerCount('error')} end ${sock.listenerCount('end')}`);
    const errors: WebSocketError[] = [];
    const opened = deferred<Conn>();
    let upgraded: { listenerCount(e: string): number } | undefined;
    const { server, port } = await startServer({}, (s) => {
      s.handleUpgrade((req) => {
        upgraded = req.socket as unknown as { listenerCount(e: string): number };
        count(upgraded, 'upgrade');
        return { data: undefined };
      });
      s.handleOpen((c) => opened.resolve(c));
      s.handleError((_c, e) => errors.push(e));
      s.handleData((c, d, b) => c.write(d, b));
    });
    // A client that resets in the middle of its request head: nothing to report, nothing thrown.
    const early = await RawClient.connect(port);
    early.write('GET / HTTP/1.1\r\nHost: x\r\n');
    await sleep(20);
    early.socket.resetAndDestroy();
    // A client that completes the handshake, echoes once, then resets.
    const { client, res } = await rawHandshake(port, upgradeRequest());
    expect(res.status).toBe(101);
    const conn = await withTimeout(opened.promise, 2000, 'handleOpen');
    count(upgraded!, 'open');
    client.write(clientFrame(Opcode.Text, Buffer.from('hi')));
    await waitUntil(() => conn.messagesIn === 1, 2000, 'the message');
    client.socket.resetAndDestroy();
    const info = await withTimeout(conn.closed, 2000, 'closed after the reset');
    expect(info.code).toBe(1006);
    // net's own 'end' listener only: a socket that ends itself needs none of ours
    expect(counts).toEqual(['upgrade: data 1 error 1 end 1', 'open: data 1 error 1 end 1']);
    expect(server.clientCount).toBe(0);
    // Still serving.
    const again = await rawHandshake(port, upgradeRequest());
    expect(again.res.status).toBe(101);
    again.client.destroy();
    expect(errors.every((e) => e.code === 'WS_ERR_SOCKET')).toBe(true);
  });
});

describe('listen(): the peer ends TCP without a closing handshake', () => {
  it('a write queued after the peer\'s FIN is not written (no EPIPE, no error) and is counted unsent', async () => {
    const errors: WebSocketError[] = [];
    let sock: import('node:stream').Duplex | undefined;
    const opened = deferred<Conn>();
    const { port } = await startServer({}, (s) => {
      s.handleUpgrade((req) => {
        sock = req.socket as unknown as import('node:stream').Duplex;
        return { data: undefined };
      });
      s.handleOpen((c) => opened.resolve(c));
      s.handleError((_c, e) => errors.push(e));
    });
    const { client, res } = await rawHandshake(port, upgradeRequest());
    expect(res.status).toBe(101);
    const conn = await withTimeout(opened.promise, 2000, 'handleOpen');
    const late = deferred<unknown>();
    // Runs after net's own 'end' listener, as a handler reacting to the FIN would.
    sock!.on('end', () => late.resolve(conn.write('late')));
    client.socket.end(); // FIN, no Close frame
    const info = await withTimeout(conn.closed, 2000, 'closed after the FIN');
    expect(await late.promise).toBe('queued');
    expect(info.code).toBe(1006);
    expect(info.unsent).toBe(1);
    expect(errors).toEqual([]);
  });
});

describe('listen(): the request handleUpgrade gets', () => {
  it('has method, url, httpVersion, lower-case headers with repeated fields joined, rawHeaders and the socket', async () => {
    const got = deferred<UpgradeRequest>();
    const { port } = await recording(undefined, (s) => {
      s.handleUpgrade((req, info) => {
        got.resolve(req);
        return { data: undefined, protocol: info.protocols[1] };
      });
    });
    const req = upgradeRequest({ path: '/chat?room=1', headers: { 'Sec-WebSocket-Protocol': 'a' } }).replace('\r\n\r\n', '\r\nsec-websocket-protocol: b\r\n\r\n');
    const { client, res } = await rawHandshake(port, req);
    expect(res.status).toBe(101);
    expect(res.headers['sec-websocket-protocol']).toBe('b');
    const r = await got.promise;
    expect({ method: r.method, url: r.url, httpVersion: r.httpVersion }).toEqual({ method: 'GET', url: '/chat?room=1', httpVersion: '1.1' });
    expect({ ...r.headers }).toEqual({
      host: 'localhost',
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': KEY,
      'sec-websocket-version': '13',
      'sec-websocket-protocol': 'a, b',
    });
    expect(r.rawHeaders.slice(-4)).toEqual(['Sec-WebSocket-Protocol', 'a', 'sec-websocket-protocol', 'b']);
    expect(r.socket.remoteAddress).toBe('127.0.0.1');
    expect(r.socket.remotePort).toBe(client.socket.localPort);
  });

  it('is the request handleUpgradeError gets for a refused handshake', async () => {
    const { port, refusals } = await recording({ path: '/ws' });
    await rawHandshake(port, upgradeRequest({ path: '/elsewhere' }));
    expect(summary(refusals)).toEqual([{ req: 'req', status: 404, code: 'WS_ERR_HANDSHAKE_FAILED', message: 'no WebSocket endpoint at /elsewhere' }]);
    expect(refusals[0]!.req?.url).toBe('/elsewhere');
  });
});

describe('listen(): pipelined bytes and split heads', () => {
  it('reads a head that arrives in several TCP segments, then the frames after it', async () => {
    const got: string[] = [];
    const { port } = await recording(undefined, (s) => s.handleData((_c, d) => void got.push(d.toString())));
    const client = await RawClient.connect(port);
    client.socket.setNoDelay(true);
    const req = upgradeRequest();
    for (const piece of [req.slice(0, 5), req.slice(5, 40), req.slice(40, -1)]) {
      client.write(piece);
      await sleep(20);
    }
    client.write(Buffer.concat([Buffer.from(req.slice(-1)), clientFrame(Opcode.Text, 'one')]));
    await waitUntil(() => got.length === 1, 2000, 'the first message');
    expect(client.frames()).toEqual([]);
    client.write(clientFrame(Opcode.Text, 'two'));
    await waitUntil(() => got.length === 2, 2000, 'the second message');
    expect(got).toEqual(['one', 'two']);
  });

  it('delivers frames sent with the request and after it, in order, while an async handleUpgrade decides', async () => {
    const got: string[] = [];
    const { port } = await recording(undefined, (s) => {
      s.handleUpgrade(async () => {
        await sleep(100);
        return { data: undefined };
      });
      s.handleData((_c, d) => void got.push(d.toString()));
    });
    const client = await RawClient.connect(port);
    client.write(Buffer.concat([Buffer.from(upgradeRequest()), clientFrame(Opcode.Text, 'first')]));
    await sleep(30);
    client.write(clientFrame(Opcode.Text, 'second'));
    await waitUntil(() => got.length === 2, 2000, 'two messages');
    expect(got).toEqual(['first', 'second']);
  });
});

describe('listen(): one deadline per handshake', () => {
  it('counts handshakeTimeout from the connection: a slow head leaves an async handleUpgrade only the rest of it', async () => {
    const refused = deferred<WebSocketError>();
    const { port } = await recording({ handshakeTimeout: 1000 }, (s) => {
      s.handleUpgrade(() => new Promise(() => {}));
      s.handleUpgradeError((_r, e) => refused.resolve(e));
    });
    const client = await RawClient.connect(port);
    const t0 = Date.now();
    const req = upgradeRequest();
    client.write(req.slice(0, 20));
    await sleep(600);
    client.write(req.slice(20));
    const e = await withTimeout(refused.promise, 3000, 'handleUpgradeError');
    const elapsed = Date.now() - t0;
    expect({ code: e.code, status: e.status }).toEqual({ code: 'WS_ERR_HANDSHAKE_TIMEOUT', status: 503 });
    // One deadline 1000 ms after the connection (with a 250 ms sweep): not 600 + 1000.
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(1500);
    const res = await client.response();
    expect(res.status).toBe(503);
  });
});

describe('listen() and close()', () => {
  it('rejects with EADDRINUSE when the port is taken, and can listen again after', async () => {
    const { port } = await startServer();
    const other = new Server();
    const err = (await other.listen({ port, host: '127.0.0.1' }).catch((e: unknown) => e)) as NodeJS.ErrnoException;
    expect(err.code).toBe('EADDRINUSE');
    expect(other.address()).toBeUndefined();
    const addr = await other.listen({ port: 0, host: '127.0.0.1' });
    expect(other.address()).toEqual(addr);
    await other.close();
  });

  it('ends a handshake whose head is still arriving, unreported, and stops listening', async () => {
    const { server, port, refusals } = await recording({ handshakeTimeout: 300 });
    const client = await RawClient.connect(port);
    client.write('GET / HTTP/1.1\r\nHost: x\r\n');
    await sleep(50);
    const t0 = Date.now();
    await withTimeout(server.close(), 2000, 'server.close()');
    expect(Date.now() - t0).toBeLessThan(1000);
    await client.waitClosed();
    await expect(RawClient.connect(port)).rejects.toThrow(/ECONNREFUSED/);
    await sleep(400);
    expect(refusals).toEqual([]);
  });

  it('resolves without waiting for a refused client that does not close its side', async () => {
    const { server, port } = await recording();
    const { client, res } = await rawHandshake(port, upgradeRequest({ headers: { 'Sec-WebSocket-Key': null } }));
    expect(res.status).toBe(400);
    // The client keeps its socket open: the server's 1 s destroy timer has not fired yet.
    const t0 = Date.now();
    await withTimeout(server.close(), 2000, 'server.close()');
    expect(Date.now() - t0).toBeLessThan(500);
    await client.waitClosed();
  });
});

describe('listen(): handlers that throw', () => {
  it('handleOpen and then handleError throwing close the connection with 1011 and nothing escapes', async () => {
    const { port } = await recording(undefined, (s) => {
      s.handleOpen(() => {
        throw new Error('open failed');
      });
      s.handleError(() => {
        throw new Error('error handler failed too');
      });
    });
    const { client, res } = await rawHandshake(port, upgradeRequest());
    expect(res.status).toBe(101);
    await waitUntil(() => client.frames().length > 0, 2000, 'the Close frame');
    const close = client.frames()[0]!;
    expect(close.opcode).toBe(Opcode.Close);
    expect(close.payload.readUInt16BE(0)).toBe(1011);
  });
});

describe('upgrade(): synchronous when nothing is awaited', () => {
  const req = {
    method: 'GET',
    httpVersion: '1.1',
    url: '/',
    headers: { host: 'localhost', upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': KEY, 'sec-websocket-version': '13' },
    rawHeaders: [],
  } as unknown as IncomingMessage;

  async function attempt(setup: (s: Server) => void): Promise<{ openedAtReturn: boolean; conn: Conn | undefined; server: Server }> {
    const server = new Server();
    let opened = false;
    server.handleOpen(() => void (opened = true));
    setup(server);
    const [socket, peer] = duplexPair();
    peer.resume();
    const p = server.upgrade(req, socket, Buffer.alloc(0));
    const openedAtReturn = opened && server.clientCount === 1;
    const conn = await p;
    conn?.terminate();
    await server.close();
    return { openedAtReturn, conn, server };
  }

  it('opens the connection before upgrade() returns when there is no handleUpgrade', async () => {
    const r = await attempt(() => {});
    expect(r.openedAtReturn).toBe(true);
    expect(r.conn).toBeDefined();
  });

  it('opens the connection before upgrade() returns when handleUpgrade decides without a Promise', async () => {
    const r = await attempt((s) => s.handleUpgrade(() => ({ data: undefined })));
    expect(r.openedAtReturn).toBe(true);
    expect(r.conn).toBeDefined();
  });

  it('waits for a Promise from handleUpgrade', async () => {
    const r = await attempt((s) => s.handleUpgrade(async () => ({ data: undefined })));
    expect(r.openedAtReturn).toBe(false);
    expect(r.conn).toBeDefined();
  });

  it('refuses synchronously too: a sync handleUpgrade refusal is answered before upgrade() returns', async () => {
    const server = new Server();
    const reports: number[] = [];
    server.handleUpgrade(() => ({ status: 401 }));
    server.handleUpgradeError((_r, e) => reports.push(e.status!));
    const [socket, peer] = duplexPair();
    peer.resume();
    const p = server.upgrade(req, socket, Buffer.alloc(0));
    expect(reports).toEqual([401]);
    expect(await p).toBeUndefined();
    socket.destroy();
    await server.close();
  });
});
