/** A connection's life on the server: handler failures, keepalive, listen twice, overflow in broadcasts. */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, ConnectionError, WebSocketError, type CloseInfo, type Conn } from '../../src/index.js';
import { Opcode } from '../../src/protocol/constants.js';
import { parseClosePayload } from '../../src/protocol/close.js';
import { clientFrame, closeAll, deferred, guardProcess, rawHandshake, startServer, upgradeRequest, waitUntil, withTimeout } from '../helpers/net.js';

guardProcess();
afterEach(closeAll);

function recorder() {
  const errors: WebSocketError[] = [];
  const closed = deferred<CloseInfo>();
  return { errors, closed };
}

describe('server: handler failures close with 1011 (RFC 6455 §7.4.1)', () => {
  it('handleOpen throwing is reported to handleError and the client sees 1011', async () => {
    const r = recorder();
    const { url } = await startServer(undefined, (s) => {
      s.handleOpen(() => {
        throw new Error('boom');
      });
      s.handleError((_c, e) => r.errors.push(e));
    });
    const conn = await connect(url);
    const info = await withTimeout(conn.closed, 2000, 'the close');
    expect(info.code).toBe(1011);
    expect(info.reason).toBe('internal error');
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.code).toBe('WS_ERR_HANDLER_FAILED');
    expect(r.errors[0]!.closeCode).toBe(1011);
    expect(r.errors[0]!.message).toBe('handleOpen threw: boom');
  });

  it('an async handleOpen rejecting is reported and closes with 1011', async () => {
    const r = recorder();
    const { url } = await startServer(undefined, (s) => {
      s.handleOpen(async () => {
        throw new Error('later boom');
      });
      s.handleError((_c, e) => r.errors.push(e));
    });
    const conn = await connect(url);
    expect((await withTimeout(conn.closed, 2000, 'the close')).code).toBe(1011);
    expect(r.errors.map((e) => [e.code, e.message])).toEqual([['WS_ERR_HANDLER_FAILED', 'handleOpen threw: later boom']]);
  });

  it('handleData throwing is reported to handleError and closes with 1011', async () => {
    const r = recorder();
    const { url } = await startServer(undefined, (s) => {
      s.handleData(() => {
        throw new Error('bad message');
      });
      s.handleError((_c, e) => r.errors.push(e));
    });
    const conn = await connect(url);
    await conn.write('x');
    expect((await withTimeout(conn.closed, 2000, 'the close')).code).toBe(1011);
    expect(r.errors.map((e) => [e.code, e.closeCode, e.message])).toEqual([['WS_ERR_HANDLER_FAILED', 1011, 'a handler threw: bad message']]);
  });

  it('a connection closed by a failing handler does not disturb another one', async () => {
    const { url } = await startServer(undefined, (s) =>
      s.handleData((c, d) => {
        if (d.toString() === 'die') throw new Error('asked to');
        return c.write(Buffer.from(d), false);
      }),
    );
    const a = await connect(url);
    const b = await connect(url);
    await a.write('die');
    expect((await a.closed).code).toBe(1011);
    await b.write('alive');
    expect((await withTimeout(b[Symbol.asyncIterator]().next(), 2000, 'the echo')).value.data.toString()).toBe('alive');
    await b.close();
  });
});

describe('server: keepalive', () => {
  it('ends a connection whose peer never answers pings after pongTimeout, reported as 1006', async () => {
    const r = recorder();
    const { port } = await startServer({ pingInterval: 50, pongTimeout: 100 }, (s) => {
      s.handleError((_c, e) => r.errors.push(e));
      s.handleClose((_c, i) => r.closed.resolve(i));
    });
    const { client } = await rawHandshake(port, upgradeRequest());
    const info = await withTimeout(r.closed.promise, 2000, 'handleClose');
    expect(info.code).toBe(1006);
    expect(info.wasClean).toBe(false);
    expect(info.error).toBeInstanceOf(ConnectionError);
    expect(info.error!.code).toBe('WS_ERR_PONG_TIMEOUT');
    expect(info.error!.message).toBe('no pong within 100 ms');
    expect(r.errors.map((e) => e.code)).toEqual(['WS_ERR_PONG_TIMEOUT']);
    expect(client.frames().some((f) => f.opcode === Opcode.Ping)).toBe(true);
    await client.waitClosed();
  });

  it('keeps a connection whose peer answers pings', async () => {
    let conn: Conn<undefined> | undefined;
    const { url } = await startServer({ pingInterval: 30, pongTimeout: 2000 }, (s) => s.handleOpen((c) => void (conn = c)));
    const client = await connect(url);
    await new Promise((r) => setTimeout(r, 300));
    // Several pings went out (every 30 ms) and each was answered in time.
    expect(conn!.state).toBe('open');
    expect(conn!.rtt).toBeGreaterThanOrEqual(0);
    await client.close();
  });
});

describe('server: misc', () => {
  it('listen() twice is refused with WS_ERR_INVALID_ARGUMENT', async () => {
    const { server } = await startServer();
    const err = await server.listen({ port: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebSocketError);
    expect((err as WebSocketError).code).toBe('WS_ERR_INVALID_ARGUMENT');
    expect((err as WebSocketError).message).toBe('this server is already listening');
  });

  it('address() gives the port listen() chose', async () => {
    const { server, port } = await startServer();
    expect(server.address()?.port).toBe(port);
  });

  it('a Close frame from a raw client is echoed with its code and the TCP connection ends', async () => {
    const r = recorder();
    const { port } = await startServer(undefined, (s) => s.handleClose((_c, i) => r.closed.resolve(i)));
    const { client } = await rawHandshake(port, upgradeRequest());
    client.write(clientFrame(Opcode.Close, Buffer.from([0x0f, 0xa0, 0x68, 0x69]))); // 4000 "hi"
    await client.waitClosed();
    const frames = client.frames();
    expect(frames).toHaveLength(1);
    expect(parseClosePayload(frames[0]!.payload)).toEqual({ code: 4000, reason: '' });
    expect(await r.closed.promise).toMatchObject({ code: 4000, reason: 'hi', wasClean: true });
  });

  it('broadcast to a client that never reads under drop-newest drops instead of growing', async () => {
    const { server, port } = await startServer({ overflow: 'drop-newest', maxQueuedBytes: 64 * 1024 });
    const { client } = await rawHandshake(port, upgradeRequest());
    client.socket.pause();
    await waitUntil(() => server.clientCount === 1, 2000, 'the connection');
    const chunk = Buffer.alloc(64 * 1024);
    let dropped = 0;
    for (let i = 0; i < 2000 && dropped === 0; i++) {
      dropped += server.broadcast(chunk).dropped;
      await new Promise((r) => setImmediate(r));
    }
    expect(dropped).toBeGreaterThan(0);
    const conn = [...server.connections][0]!;
    expect(conn.state).toBe('open');
    expect(conn.dropped).toBe(dropped);
    expect(conn.queuedBytes).toBeLessThanOrEqual(64 * 1024);
  });
});

describe('server: conn.remoteAddress', () => {
  it('is the peer address when read in handleOpen, and keeps that value after the close', async () => {
    const seen = deferred<{ conn: Conn; atOpen: string | undefined }>();
    const { url } = await startServer(undefined, (s) => {
      s.handleOpen((c) => seen.resolve({ conn: c, atOpen: c.remoteAddress }));
    });
    const client = await connect(url);
    const { conn, atOpen } = await withTimeout(seen.promise, 2000, 'handleOpen');
    expect(atOpen).toBe('127.0.0.1');
    await client.close();
    await withTimeout(conn.closed, 2000, 'the server side close');
    expect(conn.remoteAddress).toBe('127.0.0.1');
  });
});
