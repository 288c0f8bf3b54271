/** RFC 8441 §4-5: the extended CONNECT handshake as pure functions over header objects. */
import { describe, expect, it } from 'vitest';
import { ErrorCode, HandshakeError, WebSocketError } from '../../src/protocol/errors.js';
import {
  buildConnectRefusalHeaders,
  buildConnectRequestHeaders,
  buildConnectResponseHeaders,
  isWebSocketConnect,
  validateConnectRequest,
  validateConnectResponse,
} from '../../src/protocol/extended-connect.js';

const request = (extra: Record<string, string> = {}) => ({
  headers: { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': '/chat', ':authority': 'example.com', 'sec-websocket-version': '13', ...extra },
});

function refusal(fn: () => unknown): HandshakeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HandshakeError);
    return err as HandshakeError;
  }
  throw new Error('expected a refusal');
}

describe('server: validateConnectRequest', () => {
  it('accepts an extended CONNECT and reads the offers as RFC 6455 does, with no key', () => {
    const v = validateConnectRequest(request({ 'sec-websocket-protocol': 'a, b', 'sec-websocket-extensions': 'permessage-deflate', origin: 'https://example.com' }));
    expect(v).toEqual({ key: '', protocols: ['a', 'b'], extensions: [{ name: 'permessage-deflate', params: [] }], origin: 'https://example.com', host: 'example.com' });
  });

  it('only :method CONNECT with :protocol websocket is ours (case-insensitive token)', () => {
    expect(isWebSocketConnect(request().headers)).toBe(true);
    expect(isWebSocketConnect(request({ ':protocol': 'WebSocket' }).headers)).toBe(true);
    expect(isWebSocketConnect(request({ ':protocol': 'connect-udp' }).headers)).toBe(false);
    expect(isWebSocketConnect({ ':method': 'GET', ':path': '/' })).toBe(false);
    expect(refusal(() => validateConnectRequest(request({ ':protocol': 'connect-udp' }))).status).toBe(400);
  });

  it('refuses a missing :authority, :path or :scheme with 400', () => {
    for (const name of [':authority', ':path', ':scheme']) {
      const r = request();
      delete (r.headers as Record<string, string | undefined>)[name];
      expect(refusal(() => validateConnectRequest(r)).status).toBe(400);
    }
  });

  it('RFC 8441 §5 keeps Sec-WebSocket-Version: another version is 426 with Sec-WebSocket-Version: 13', () => {
    const e = refusal(() => validateConnectRequest(request({ 'sec-websocket-version': '8' })));
    expect(e.code).toBe(ErrorCode.UnsupportedVersion);
    expect(e.status).toBe(426);
    expect(e.headers).toEqual({ 'Sec-WebSocket-Version': '13' });
  });
});

describe('server: the response headers', () => {
  it('accepts with :status 200, the selection, lower-case extra headers, and no Sec-WebSocket-Accept', () => {
    expect(buildConnectResponseHeaders({ protocol: 'chat', extensions: 'permessage-deflate', headers: { 'X-Id': '7' } })).toEqual({
      ':status': 200,
      'x-id': '7',
      'sec-websocket-protocol': 'chat',
      'sec-websocket-extensions': 'permessage-deflate',
    });
  });

  it('refuses a header value with CR/LF, and a status outside 200-599', () => {
    expect(() => buildConnectResponseHeaders({ headers: { 'X-Bad': 'a\r\nb' } })).toThrow(WebSocketError);
    expect(() => buildConnectRefusalHeaders(101)).toThrow(WebSocketError);
    expect(buildConnectRefusalHeaders(426, { 'Sec-WebSocket-Version': '13' })).toEqual({ 'sec-websocket-version': '13', ':status': 426, 'content-type': 'text/plain; charset=utf-8' });
  });
});

describe('client: the request and the response', () => {
  it('builds the extended CONNECT: pseudo-headers, version 13, offers; no key, Upgrade, Connection or Host', () => {
    const h = buildConnectRequestHeaders({ path: '/x?y=1', authority: 'example.com:8443', scheme: 'https', protocols: ['chat'], extensions: 'permessage-deflate', origin: 'https://o', headers: { 'X-Token': 't' } });
    expect(h).toEqual({
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'https',
      ':path': '/x?y=1',
      ':authority': 'example.com:8443',
      'x-token': 't',
      'sec-websocket-version': '13',
      'sec-websocket-protocol': 'chat',
      'sec-websocket-extensions': 'permessage-deflate',
      origin: 'https://o',
    });
  });

  it('accepts any 2xx, fails another status with it in `status`, and checks the subprotocol as RFC 6455 §4.1 does', () => {
    expect(validateConnectResponse({ ':status': 200, 'sec-websocket-protocol': 'chat' }, { protocols: ['chat'], extensionsOffered: false })).toEqual({ protocol: 'chat', extensions: [] });
    const e = refusal(() => validateConnectResponse({ ':status': 403 }, { protocols: [], extensionsOffered: false }));
    expect(e.status).toBe(403);
    expect(e.message).toMatch(/403/);
    expect(() => validateConnectResponse({ ':status': 200, 'sec-websocket-protocol': 'other' }, { protocols: ['chat'], extensionsOffered: false })).toThrow(/not requested/);
    expect(() => validateConnectResponse({ ':status': 200, 'sec-websocket-extensions': 'permessage-deflate' }, { protocols: [], extensionsOffered: false })).toThrow(/no extension was offered/);
  });
});
