/**
 * The server's side of the opening handshake (RFC 6455 §4.2), over raw TCP: a hand-made request
 * goes in, the exact response comes out, and every refusal is reported to handleUpgradeError.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HandshakeError, type Conn, type Server, type UpgradeRequest, type WebSocketError } from '../../src/index.js';
import { ACCEPT, KEY, closeAll, computeAcceptKey, guardProcess, rawHandshake, startServer, upgradeRequest, waitUntil } from '../helpers/net.js';

guardProcess();
afterEach(closeAll);

/** A server that records every refusal it reports. */
async function recording<D = undefined>(options?: Parameters<typeof startServer>[0], setup?: (s: Server<D>) => void) {
  const refusals: { req: UpgradeRequest | undefined; error: WebSocketError }[] = [];
  const started = await startServer<D>(options, (s) => {
    s.handleUpgradeError((req, error) => refusals.push({ req, error }));
    setup?.(s);
  });
  return { ...started, refusals };
}

/** Expect exactly one refusal, reported as a HandshakeError with this status, code and message. */
function expectRefusal(refusals: { error: WebSocketError }[], status: number, code: string, message: string | RegExp): void {
  expect(refusals).toHaveLength(1);
  const e = refusals[0]!.error;
  expect(e).toBeInstanceOf(HandshakeError);
  expect(e.status).toBe(status);
  expect(e.code).toBe(code);
  if (typeof message === 'string') expect(e.message).toBe(message);
  else expect(e.message).toMatch(message);
}

describe('server handshake: acceptance (RFC 6455 §4.2.2)', () => {
  it('answers a valid upgrade with 101 and Sec-WebSocket-Accept = base64(SHA-1(key + GUID))', async () => {
    const { port, refusals } = await recording();
    const { client, res } = await rawHandshake(port, upgradeRequest());
    expect(res.status).toBe(101);
    expect(res.headers['upgrade']?.toLowerCase()).toBe('websocket');
    expect(res.headers['connection']?.toLowerCase()).toBe('upgrade');
    expect(res.headers['sec-websocket-accept']).toBe(ACCEPT);
    expect(computeAcceptKey(KEY)).toBe(ACCEPT);
    expect(res.headers['sec-websocket-protocol']).toBeUndefined();
    expect(res.headers['sec-websocket-extensions']).toBeUndefined();
    expect(refusals).toHaveLength(0);
    client.destroy();
  });

  it('accepts Upgrade/Connection tokens case-insensitively and inside lists', async () => {
    const { port } = await recording();
    const { client, res } = await rawHandshake(port, upgradeRequest({ headers: { Upgrade: 'WebSocket', Connection: 'keep-alive, UPGRADE' } }));
    expect(res.status).toBe(101);
    client.destroy();
  });

  it('handleUpgrade accepting with data and a protocol sets conn.data, conn.protocol and Sec-WebSocket-Protocol', async () => {
    let opened: Conn<{ user: string }> | undefined;
    let seen: { protocols: string[]; origin: string | undefined } | undefined;
    const { port } = await recording<{ user: string }>(undefined, (s) => {
      s.handleUpgrade(async (_req, info) => {
        seen = { protocols: info.protocols, origin: info.origin };
        await new Promise((r) => setTimeout(r, 5));
        return { data: { user: 'ada' }, protocol: 'chat.v2' };
      });
      s.handleOpen((c) => {
        opened = c;
      });
    });
    const { client, res } = await rawHandshake(
      port,
      upgradeRequest({ headers: { 'Sec-WebSocket-Protocol': 'chat.v1, chat.v2', Origin: 'https://a.example' } }),
    );
    expect(res.status).toBe(101);
    expect(res.headers['sec-websocket-protocol']).toBe('chat.v2');
    expect(seen).toEqual({ protocols: ['chat.v1', 'chat.v2'], origin: 'https://a.example' });
    await waitUntil(() => opened !== undefined, 2000, 'handleOpen');
    expect(opened!.data).toEqual({ user: 'ada' });
    expect(opened!.protocol).toBe('chat.v2');
    client.destroy();
  });

  it('the protocols option picks the first of ours that the client offered', async () => {
    let opened: Conn<undefined> | undefined;
    const { port } = await recording({ protocols: ['mqtt', 'wamp', 'chat'] }, (s) => s.handleOpen((c) => void (opened = c)));
    const { client, res } = await rawHandshake(port, upgradeRequest({ headers: { 'Sec-WebSocket-Protocol': 'chat, wamp' } }));
    expect(res.status).toBe(101);
    expect(res.headers['sec-websocket-protocol']).toBe('wamp');
    await waitUntil(() => opened !== undefined, 2000, 'handleOpen');
    expect(opened!.protocol).toBe('wamp');
    client.destroy();
  });

  it('the protocols option selects nothing (no header) when no offer matches', async () => {
    const { port } = await recording({ protocols: ['mqtt'] });
    const { client, res } = await rawHandshake(port, upgradeRequest({ headers: { 'Sec-WebSocket-Protocol': 'chat' } }));
    expect(res.status).toBe(101);
    expect(res.headers['sec-websocket-protocol']).toBeUndefined();
    client.destroy();
  });
});

describe('server handshake: refusals', () => {
  it('refuses a version other than 13 with 426 and Sec-WebSocket-Version: 13 (§4.2.2 item 4)', async () => {
    const { port, refusals } = await recording();
    const { res } = await rawHandshake(port, upgradeRequest({ headers: { 'Sec-WebSocket-Version': '8' } }));
    expect(res.status).toBe(426);
    expect(res.headers['sec-websocket-version']).toBe('13');
    expect(res.body).toBe('Unsupported WebSocket version "8"');
    expectRefusal(refusals, 426, 'WS_ERR_UNSUPPORTED_VERSION', 'Unsupported WebSocket version "8"');
  });

  it('refuses a missing version with 426 and Sec-WebSocket-Version: 13', async () => {
    const { port, refusals } = await recording();
    const { res } = await rawHandshake(port, upgradeRequest({ headers: { 'Sec-WebSocket-Version': null } }));
    expect(res.status).toBe(426);
    expect(res.headers['sec-websocket-version']).toBe('13');
    expectRefusal(refusals, 426, 'WS_ERR_UNSUPPORTED_VERSION', 'Missing Sec-WebSocket-Version header');
  });

  it('refuses a missing Sec-WebSocket-Key with 400', async () => {
    const { port, refusals } = await recording();
    const { res } = await rawHandshake(port, upgradeRequest({ headers: { 'Sec-WebSocket-Key': null } }));
    expect(res.status).toBe(400);
    expect(res.body).toBe('Missing Sec-WebSocket-Key header');
    expectRefusal(refusals, 400, 'WS_ERR_HANDSHAKE_FAILED', 'Missing Sec-WebSocket-Key header');
  });

  it('refuses a key that does not decode to 16 bytes with 400', async () => {
    const { port, refusals } = await recording();
    const { res } = await rawHandshake(port, upgradeRequest({ headers: { 'Sec-WebSocket-Key': 'c2hvcnQ=' } }));
    expect(res.status).toBe(400);
    expect(res.body).toBe('Invalid Sec-WebSocket-Key header');
    expectRefusal(refusals, 400, 'WS_ERR_HANDSHAKE_FAILED', 'Invalid Sec-WebSocket-Key header');
  });

  it('refuses an Upgrade header without "websocket" with 400', async () => {
    const { port, refusals } = await recording();
    const { res } = await rawHandshake(port, upgradeRequest({ headers: { Upgrade: 'h2c' } }));
    expect(res.status).toBe(400);
    expect(res.body).toBe('Invalid Upgrade header: expected "websocket"');
    expectRefusal(refusals, 400, 'WS_ERR_HANDSHAKE_FAILED', 'Invalid Upgrade header: expected "websocket"');
  });

  it('refuses a handshake without an Upgrade header with 400', async () => {
    const { port, refusals } = await recording();
    const { res } = await rawHandshake(port, upgradeRequest({ headers: { Upgrade: null } }));
    expect(res.status).toBe(400);
    expect(res.body).toBe('Invalid Upgrade header: expected "websocket"');
    expectRefusal(refusals, 400, 'WS_ERR_HANDSHAKE_FAILED', 'Invalid Upgrade header: expected "websocket"');
  });

  it('refuses a handshake whose Connection header lacks "Upgrade" with 400', async () => {
    const { port, refusals } = await recording();
    const { res } = await rawHandshake(port, upgradeRequest({ headers: { Connection: 'keep-alive' } }));
    expect(res.status).toBe(400);
    expect(res.body).toBe('Invalid Connection header: expected the token "Upgrade"');
    expectRefusal(refusals, 400, 'WS_ERR_HANDSHAKE_FAILED', 'Invalid Connection header: expected the token "Upgrade"');
  });

  it('refuses a handshake without a Host header with 400', async () => {
    const { port, refusals } = await recording();
    const { res } = await rawHandshake(port, upgradeRequest({ headers: { Host: null } }));
    expect(res.status).toBe(400);
    expect(res.body).toBe('Missing Host header');
    expectRefusal(refusals, 400, 'WS_ERR_HANDSHAKE_FAILED', 'Missing Host header');
  });

  it('refuses a POST upgrade with 405 and Allow: GET', async () => {
    const { port, refusals } = await recording();
    const { res } = await rawHandshake(port, upgradeRequest({ method: 'POST' }));
    expect(res.status).toBe(405);
    expect(res.headers['allow']).toBe('GET');
    expect(res.body).toBe('Invalid HTTP method POST: the upgrade must be a GET');
    expectRefusal(refusals, 405, 'WS_ERR_HANDSHAKE_FAILED', 'Invalid HTTP method POST: the upgrade must be a GET');
  });

  it('refuses an Origin outside the allow-list with 403', async () => {
    const { port, refusals } = await recording({ origins: ['https://good.example'] });
    const { res } = await rawHandshake(port, upgradeRequest({ headers: { Origin: 'https://evil.example' } }));
    expect(res.status).toBe(403);
    expect(res.body).toBe('origin https://evil.example is not allowed');
    expectRefusal(refusals, 403, 'WS_ERR_FORBIDDEN', 'origin https://evil.example is not allowed');
  });

  it('refuses a missing Origin with 403 when an allow-list is set', async () => {
    const { port, refusals } = await recording({ origins: ['https://good.example'] });
    const { res } = await rawHandshake(port, upgradeRequest());
    expect(res.status).toBe(403);
    expectRefusal(refusals, 403, 'WS_ERR_FORBIDDEN', 'origin (none) is not allowed');
  });

  it('accepts an Origin on the allow-list', async () => {
    const { port, refusals } = await recording({ origins: ['https://good.example'] });
    const { client, res } = await rawHandshake(port, upgradeRequest({ headers: { Origin: 'https://good.example' } }));
    expect(res.status).toBe(101);
    expect(refusals).toHaveLength(0);
    client.destroy();
  });

  it('refuses another path than the path option with 404 (the query string is ignored)', async () => {
    const { port, refusals } = await recording({ path: '/ws' });
    const ok = await rawHandshake(port, upgradeRequest({ path: '/ws?token=1' }));
    expect(ok.res.status).toBe(101);
    ok.client.destroy();
    const { res } = await rawHandshake(port, upgradeRequest({ path: '/other' }));
    expect(res.status).toBe(404);
    expect(res.body).toBe('no WebSocket endpoint at /other');
    expectRefusal(refusals, 404, 'WS_ERR_HANDSHAKE_FAILED', 'no WebSocket endpoint at /other');
  });

  it('handleUpgrade refusing with { status: 401, reason } answers 401 with that reason', async () => {
    let opened = false;
    const { port, refusals } = await recording(undefined, (s) => {
      s.handleUpgrade(async () => ({ status: 401, reason: 'bad token', headers: { 'WWW-Authenticate': 'Bearer' } }));
      s.handleOpen(() => void (opened = true));
    });
    const { res } = await rawHandshake(port, upgradeRequest());
    expect(res.status).toBe(401);
    expect(res.body).toBe('bad token');
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expectRefusal(refusals, 401, 'WS_ERR_FORBIDDEN', 'bad token');
    expect(opened).toBe(false);
  });

  it('handleUpgrade choosing a subprotocol the client did not offer answers 500 (§4.2.2 item 5)', async () => {
    const { port, refusals } = await recording(undefined, (s) => {
      s.handleUpgrade(() => ({ data: undefined, protocol: 'graphql-ws' }));
    });
    const { res } = await rawHandshake(port, upgradeRequest({ headers: { 'Sec-WebSocket-Protocol': 'chat' } }));
    expect(res.status).toBe(500);
    expectRefusal(refusals, 500, 'WS_ERR_HANDSHAKE_FAILED', 'handleUpgrade chose subprotocol graphql-ws, which the client did not offer');
  });

  it('handleUpgrade throwing answers 500 and reports the cause', async () => {
    const { port, refusals } = await recording(undefined, (s) => {
      s.handleUpgrade(() => {
        throw new Error('db down');
      });
    });
    const { res } = await rawHandshake(port, upgradeRequest());
    expect(res.status).toBe(500);
    expectRefusal(refusals, 500, 'WS_ERR_HANDSHAKE_FAILED', 'handshake failed: db down');
    expect((refusals[0]!.error.cause as Error).message).toBe('db down');
  });

  it('a plain HTTP GET to listen() gets 426 Upgrade Required with Sec-WebSocket-Version: 13', async () => {
    const { port, refusals } = await recording();
    const { res } = await rawHandshake(port, 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    expect(res.status).toBe(426);
    expect(res.headers['sec-websocket-version']).toBe('13');
    expect(res.headers['upgrade']).toBe('websocket');
    expect(res.body).toBe('This is a WebSocket endpoint: send an Upgrade request.\n');
    expect(refusals).toHaveLength(0);
  });

  it('every refusal closes the TCP connection', async () => {
    const { port } = await recording();
    const { client, res } = await rawHandshake(port, upgradeRequest({ headers: { 'Sec-WebSocket-Version': '8' } }));
    expect(res.status).toBe(426);
    expect(res.headers['connection']?.toLowerCase()).toBe('close');
    await client.waitClosed();
  });
});
