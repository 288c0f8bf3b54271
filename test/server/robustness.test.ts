/**
 * Bad peers: slow handshakes, huge headers, garbage before and after the upgrade, a client that
 * never reads. Each gets the right status or close code, is reported, and never disturbs the
 * other connections or the process (guardProcess fails the file on any uncaught error).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, ConnectionError, ProtocolError, type CloseInfo, type Conn, type WebSocketError } from '../../src/index.js';
import { HandshakeError } from '../../src/protocol/errors.js';
import { Opcode } from '../../src/protocol/constants.js';
import { parseClosePayload } from '../../src/protocol/close.js';
import { RawClient, clientFrame, closeAll, deferred, guardProcess, parseResponse, rawHandshake, startServer, upgradeRequest, waitUntil, withTimeout } from '../helpers/net.js';

guardProcess();
afterEach(closeAll);

describe('server robustness: before the upgrade', () => {
  it('closes a handshake that stalls half-way after handshakeTimeout, reporting 408 to handleUpgradeError', async () => {
    const reported = deferred<[unknown, WebSocketError]>();
    const { port } = await startServer({ handshakeTimeout: 300 }, (s) => s.handleUpgradeError((req, e) => reported.resolve([req, e])));
    const client = await RawClient.connect(port);
    const t0 = Date.now();
    const req = upgradeRequest();
    client.write(req.slice(0, req.length >> 1));
    await client.waitClosed(3000);
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2000);
    expect(parseResponse(client.received)?.status).toBe(408);
    const [reportedReq, e] = await withTimeout(reported.promise, 2000, 'handleUpgradeError');
    expect(reportedReq).toBeUndefined();
    expect({ code: e.code, status: e.status }).toEqual({ code: 'WS_ERR_HANDSHAKE_FAILED', status: 408 });
  });

  it('closes a connection that sends nothing at all after handshakeTimeout', async () => {
    const { port } = await startServer({ handshakeTimeout: 300 });
    const client = await RawClient.connect(port);
    const t0 = Date.now();
    await client.waitClosed(3000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    const res = parseResponse(client.received);
    if (res !== undefined) expect(res.status).toBe(408);
  });

  it('refuses with 503 and WS_ERR_HANDSHAKE_TIMEOUT when handleUpgrade does not decide within handshakeTimeout', async () => {
    const refused = deferred<WebSocketError>();
    const { port } = await startServer({ handshakeTimeout: 200 }, (s) => {
      s.handleUpgrade(() => new Promise(() => {}));
      s.handleUpgradeError((_req, e) => refused.resolve(e));
    });
    const { client, res } = await rawHandshake(port, upgradeRequest());
    expect(res.status).toBe(503);
    const e = await withTimeout(refused.promise, 2000, 'handleUpgradeError');
    expect(e).toBeInstanceOf(HandshakeError);
    expect(e.code).toBe('WS_ERR_HANDSHAKE_TIMEOUT');
    expect(e.status).toBe(503);
    expect(e.message).toBe('handshake not completed within 200 ms');
    await client.waitClosed();
  });

  it('refuses a header block larger than maxHeaderSize with 431 and reports it to handleUpgradeError without a request', async () => {
    const reported = deferred<[unknown, WebSocketError]>();
    const { port } = await startServer({ maxHeaderSize: 4096 }, (s) => s.handleUpgradeError((req, e) => reported.resolve([req, e])));
    const { client, res } = await rawHandshake(port, upgradeRequest({ headers: { 'X-Big': 'a'.repeat(8000) } }));
    expect(res.status).toBe(431);
    await client.waitClosed();
    const [req, e] = await withTimeout(reported.promise, 2000, 'handleUpgradeError');
    expect(req).toBeUndefined();
    expect(e).toBeInstanceOf(HandshakeError);
    expect({ code: e.code, status: e.status }).toEqual({ code: 'WS_ERR_HANDSHAKE_FAILED', status: 431 });
    expect(e.message).toMatch(/^Request Header Fields Too Large: /);
  });

  it('answers garbage bytes instead of HTTP with 400, closes the socket and reports it to handleUpgradeError', async () => {
    const reported = deferred<[unknown, WebSocketError]>();
    const { port } = await startServer({}, (s) => s.handleUpgradeError((req, e) => reported.resolve([req, e])));
    const { client, res } = await rawHandshake(port, '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n');
    expect(res.status).toBe(400);
    await client.waitClosed();
    const [req, e] = await withTimeout(reported.promise, 2000, 'handleUpgradeError');
    expect(req).toBeUndefined();
    expect({ code: e.code, status: e.status }).toEqual({ code: 'WS_ERR_HANDSHAKE_FAILED', status: 400 });
    expect(e.message).toMatch(/^Bad Request: /);
  });
});

describe('server robustness: after the upgrade', () => {
  it('fails a connection that sends garbage after a valid upgrade with 1002 and reports it to handleError', async () => {
    const errors: WebSocketError[] = [];
    const closed = deferred<CloseInfo>();
    const { port } = await startServer(undefined, (s) => {
      s.handleError((_c, e) => errors.push(e));
      s.handleClose((_c, info) => closed.resolve(info));
    });
    const { client, res } = await rawHandshake(port, upgradeRequest());
    expect(res.status).toBe(101);
    // 'G' = 0x47: RSV1 set and no extension negotiated (RFC 6455 §5.2).
    client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await client.waitClosed();
    const frames = client.frames();
    expect(frames).toHaveLength(1);
    expect(frames[0]!.opcode).toBe(Opcode.Close);
    expect(parseClosePayload(frames[0]!.payload)).toEqual({ code: 1002, reason: '' });
    const info = await withTimeout(closed.promise, 2000, 'handleClose');
    expect(info.code).toBe(1002);
    expect(info.wasClean).toBe(false);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ProtocolError);
    expect(errors[0]!.code).toBe('WS_ERR_UNEXPECTED_RSV');
    expect(errors[0]!.closeCode).toBe(1002);
    expect(info.error).toBe(errors[0]);
  });

  it('fails an unmasked client frame with 1002 (RFC 6455 §5.1)', async () => {
    const errors: WebSocketError[] = [];
    const { port } = await startServer(undefined, (s) => s.handleError((_c, e) => errors.push(e)));
    const { client } = await rawHandshake(port, upgradeRequest());
    client.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
    await client.waitClosed();
    expect(parseClosePayload(client.frames()[0]!.payload)).toEqual({ code: 1002, reason: '' });
    expect(errors.map((e) => [e.code, e.closeCode])).toEqual([['WS_ERR_EXPECTED_MASK', 1002]]);
  });

  it('closes a client that never reads with 1008 under overflow "close", and other connections keep working', async () => {
    const errors: { id: number; e: WebSocketError }[] = [];
    const closes = new Map<number, CloseInfo>();
    const chunk = Buffer.alloc(256 * 1024, 7);
    let slow: Conn<undefined> | undefined;
    const { port, url } = await startServer({ overflow: 'close', maxQueuedBytes: 1024 * 1024, closeTimeout: 300 }, (s) => {
      s.handleError((c, e) => errors.push({ id: c.id, e }));
      s.handleClose((c, info) => closes.set(c.id, info));
      s.handleData(async (c, data) => {
        if (data.toString() !== 'flood') return c.write(Buffer.from(data));
        slow = c;
        while (c.state === 'open') {
          c.tryWrite(chunk);
          await new Promise((r) => setImmediate(r));
        }
      });
    });
    const other = await connect(url);
    const { client } = await rawHandshake(port, upgradeRequest());
    client.socket.pause(); // never read again
    client.write(clientFrame(Opcode.Text, 'flood'));
    await waitUntil(() => slow !== undefined && closes.has(slow.id), 15_000, 'the slow connection to be closed');
    const info = closes.get(slow!.id)!;
    expect(info.code).toBe(1008);
    expect(info.wasClean).toBe(false);
    const mine = errors.filter((x) => x.id === slow!.id).map((x) => x.e);
    expect(mine[0]).toBeInstanceOf(ConnectionError);
    expect(mine[0]!.code).toBe('WS_ERR_OUTBOX_FULL');
    expect(mine[0]!.closeCode).toBe(1008);
    expect(mine[0]!.message).toBe('outbox full: the peer is not reading fast enough');
    // The other connection is untouched.
    expect(other.state).toBe('open');
    await other.write('still here');
    const it = other[Symbol.asyncIterator]();
    const m = await withTimeout(it.next(), 2000, 'the echo');
    expect(m.value.data.toString()).toBe('still here');
    expect(errors.filter((x) => x.id !== slow!.id)).toEqual([]);
    client.destroy();
    await other.close();
  });

  it('closes a client that never reads with overflowCloseCode 1013 when so configured, counting unsent frames', async () => {
    const closed = deferred<CloseInfo>();
    const chunk = Buffer.alloc(256 * 1024, 1);
    const { port } = await startServer({ overflow: 'close', overflowCloseCode: 1013, maxQueuedBytes: 1024 * 1024, closeTimeout: 300 }, (s) => {
      s.handleClose((_c, info) => closed.resolve(info));
      s.handleOpen(async (c) => {
        while (c.state === 'open') {
          c.tryWrite(chunk);
          await new Promise((r) => setImmediate(r));
        }
      });
    });
    const { client } = await rawHandshake(port, upgradeRequest());
    client.socket.pause();
    const info = await withTimeout(closed.promise, 15_000, 'handleClose');
    expect(info.code).toBe(1013);
    expect(info.error?.code).toBe('WS_ERR_OUTBOX_FULL');
    expect(info.error?.closeCode).toBe(1013);
    expect(info.unsent).toBeGreaterThan(0);
  });

  it('a peer that resets TCP mid-connection ends that connection as 1006 and nothing else', async () => {
    const closed = deferred<CloseInfo>();
    const { port, url } = await startServer(undefined, (s) => {
      s.handleClose((_c, info) => closed.resolve(info));
      s.handleData((c, d) => c.write(Buffer.from(d), false));
    });
    const other = await connect(url);
    const { client } = await rawHandshake(port, upgradeRequest());
    client.socket.resetAndDestroy();
    const info = await withTimeout(closed.promise, 2000, 'handleClose');
    expect(info.code).toBe(1006);
    expect(info.wasClean).toBe(false);
    await other.write('ok');
    const m = await withTimeout(other[Symbol.asyncIterator]().next(), 2000, 'the echo');
    expect(m.value.data.toString()).toBe('ok');
    await other.close();
  });
});
