/** The server against hand-written client bytes: pipelined frames, odd requests, one Close frame. */
import { afterEach, describe, expect, it } from 'vitest';
import type { Conn, WebSocketError } from '../../src/index.js';
import { Opcode } from '../../src/protocol/constants.js';
import { parseClosePayload } from '../../src/protocol/close.js';
import { RawClient, clientFrame, closeAll, guardProcess, rawHandshake, startServer, upgradeRequest, waitUntil } from '../helpers/net.js';

guardProcess();
afterEach(closeAll);

describe('server on the wire', () => {
  it('delivers frames sent in the same TCP segment as the upgrade request', async () => {
    const got: string[] = [];
    const { port } = await startServer(undefined, (s) => s.handleData((_c, d) => void got.push(d.toString())));
    const client = await RawClient.connect(port);
    client.write(Buffer.concat([Buffer.from(upgradeRequest()), clientFrame(Opcode.Text, 'first'), clientFrame(Opcode.Text, 'second')]));
    await waitUntil(() => got.length === 2, 2000, 'two messages');
    expect(got).toEqual(['first', 'second']);
  });

  it('delivers frames sent while an async handleUpgrade is still deciding', async () => {
    const got: string[] = [];
    const { port } = await startServer(undefined, (s) => {
      s.handleUpgrade(async () => {
        await new Promise((r) => setTimeout(r, 100));
        return { data: undefined };
      });
      s.handleData((_c, d) => void got.push(d.toString()));
    });
    const client = await RawClient.connect(port);
    client.write(upgradeRequest());
    await new Promise((r) => setTimeout(r, 20));
    client.write(clientFrame(Opcode.Text, 'early bird'));
    await waitUntil(() => got.length === 1, 2000, 'the message');
    expect(got).toEqual(['early bird']);
  });

  it('sends exactly one Close frame when close() is called twice', async () => {
    let conn: Conn<undefined> | undefined;
    const { port } = await startServer(undefined, (s) => s.handleOpen((c) => void (conn = c)));
    const { client } = await rawHandshake(port, upgradeRequest());
    await waitUntil(() => conn !== undefined, 2000, 'handleOpen');
    const p1 = conn!.close(4000, 'a');
    const p2 = conn!.close(4001, 'b');
    expect(p2).toBe(p1);
    await waitUntil(() => client.frames().length > 0, 2000, 'the Close frame');
    client.write(clientFrame(Opcode.Close, Buffer.from([0x0f, 0xa0])));
    await client.waitClosed();
    const closes = client.frames().filter((f) => f.opcode === Opcode.Close);
    expect(closes).toHaveLength(1);
    expect(parseClosePayload(closes[0]!.payload)).toEqual({ code: 4000, reason: 'a' });
    expect((await p1).wasClean).toBe(true);
  });

  it('refuses an HTTP/1.0 upgrade with 400 and reports it', async () => {
    const refusals: WebSocketError[] = [];
    const { port } = await startServer(undefined, (s) => s.handleUpgradeError((_r, e) => refusals.push(e)));
    const req = upgradeRequest().replace('HTTP/1.1', 'HTTP/1.0');
    const { res } = await rawHandshake(port, req);
    expect(res.status).toBe(400);
    expect(refusals.map((e) => [e.status, e.code, e.message])).toEqual([[400, 'WS_ERR_HANDSHAKE_FAILED', 'Invalid HTTP version 1.0: the upgrade needs HTTP/1.1 or later']]);
  });

  it('handleUpgrade returning nothing is refused with 500', async () => {
    const refusals: WebSocketError[] = [];
    const { port } = await startServer(undefined, (s) => {
      s.handleUpgrade(() => undefined as never);
      s.handleUpgradeError((_r, e) => refusals.push(e));
    });
    const { res } = await rawHandshake(port, upgradeRequest());
    expect(res.status).toBe(500);
    expect(refusals.map((e) => [e.status, e.code, e.message])).toEqual([[500, 'WS_ERR_HANDSHAKE_FAILED', 'handleUpgrade must return { data } or { status }']]);
  });

  it('refuses a malformed Sec-WebSocket-Extensions header with 400', async () => {
    const refusals: WebSocketError[] = [];
    const { port } = await startServer({ deflate: true }, (s) => s.handleUpgradeError((_r, e) => refusals.push(e)));
    const { res } = await rawHandshake(port, upgradeRequest({ headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; =bad' } }));
    expect(res.status).toBe(400);
    const msg = 'Invalid Sec-WebSocket-Extensions header: unexpected character "=" in parameter name at index 20';
    expect(res.body).toBe(msg);
    expect(refusals.map((e) => [e.status, e.code, e.message])).toEqual([[400, 'WS_ERR_INVALID_EXTENSIONS', msg]]);
  });

  it('refuses duplicate subprotocols with 400 (RFC 6455 §4.1 item 10)', async () => {
    const refusals: WebSocketError[] = [];
    const { port } = await startServer(undefined, (s) => s.handleUpgradeError((_r, e) => refusals.push(e)));
    const { res } = await rawHandshake(port, upgradeRequest({ headers: { 'Sec-WebSocket-Protocol': 'chat, chat' } }));
    expect(res.status).toBe(400);
    expect(refusals.map((e) => [e.status, e.message])).toEqual([[400, 'Invalid Sec-WebSocket-Protocol header: duplicate protocol "chat"']]);
  });

  it('answers a deflate offer with the negotiated parameters in the 101', async () => {
    const { port } = await startServer({ deflate: { serverNoContextTakeover: true } });
    const { client, res } = await rawHandshake(port, upgradeRequest({ headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' } }));
    expect(res.status).toBe(101);
    expect(res.headers['sec-websocket-extensions']).toBe('permessage-deflate; server_no_context_takeover');
    client.destroy();
  });
});
