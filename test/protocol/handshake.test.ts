import { describe, expect, it } from 'vitest';
import { ErrorCode, HandshakeError, WebSocketError } from '../../src/protocol/errors.js';
import {
  buildAcceptResponse,
  buildClientHeaders,
  buildRefusalResponse,
  computeAcceptKey,
  generateKey,
  isValidKey,
  parseProtocols,
  validateServerResponse,
  validateUpgradeRequest,
} from '../../src/protocol/handshake.js';
import type { ServerResponseLike, UpgradeRequestLike } from '../../src/protocol/handshake.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

function request(headers: Record<string, string | string[] | undefined> = {}, over: Partial<UpgradeRequestLike> = {}): UpgradeRequestLike {
  return {
    method: 'GET',
    httpVersion: '1.1',
    url: '/chat',
    headers: {
      host: 'server.example.com',
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': KEY,
      'sec-websocket-version': '13',
      ...headers,
    },
    ...over,
  };
}

function caught(fn: () => unknown): HandshakeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HandshakeError);
    return err as HandshakeError;
  }
  throw new Error('expected a HandshakeError');
}

function expectRefusal(req: UpgradeRequestLike, status: number, code: ErrorCode, message: RegExp | string): HandshakeError {
  const err = caught(() => validateUpgradeRequest(req));
  expect(err.code).toBe(code);
  expect(err.status).toBe(status);
  if (typeof message === 'string') expect(err.message).toBe(message);
  else expect(err.message).toMatch(message);
  return err;
}

describe('RFC 6455 §1.3 / §4.2.2 Sec-WebSocket-Accept', () => {
  it('the accept key of the RFC example nonce is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=', () => {
    expect(computeAcceptKey(KEY)).toBe(ACCEPT);
  });
});

describe('RFC 6455 §4.1 Sec-WebSocket-Key', () => {
  it('a generated key is 16 random bytes in base64', () => {
    const a = generateKey();
    const b = generateKey();
    expect(a).toHaveLength(24);
    expect(Buffer.from(a, 'base64')).toHaveLength(16);
    expect(isValidKey(a)).toBe(true);
    expect(a).not.toBe(b);
  });

  it('a valid key decodes to exactly 16 bytes', () => {
    expect(isValidKey(KEY)).toBe(true);
    expect(isValidKey('AAAAAAAAAAAAAAAAAAAAAA==')).toBe(true);
    expect(isValidKey('AAAAAAAAAAAAAAAAAAAAAAA=')).toBe(false); // 17 bytes
    expect(isValidKey('AAAAAAAAAAAAAAAAAAAAAAAAAAA=')).toBe(false);
    expect(isValidKey('AAAAAAAAAAAAAAAAAAAAA==')).toBe(false); // too short
    expect(isValidKey('AAAAAAAAAAAAAAAAAAAA-_==')).toBe(false); // base64url alphabet
    expect(isValidKey('')).toBe(false);
  });
});

describe('RFC 6455 §4.2.1 server: reading the client opening handshake', () => {
  it('accepts the RFC example request', () => {
    const v = validateUpgradeRequest(
      request({
        origin: 'http://example.com',
        'sec-websocket-protocol': 'chat, superchat',
        'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits',
      }),
    );
    expect(v).toEqual({
      key: KEY,
      protocols: ['chat', 'superchat'],
      extensions: [{ name: 'permessage-deflate', params: [['client_max_window_bits', true]] }],
      origin: 'http://example.com',
      host: 'server.example.com',
    });
  });

  it('the method must be GET (405 with Allow: GET, RFC 7231 §6.5.5)', () => {
    const err = expectRefusal(request({}, { method: 'POST' }), 405, ErrorCode.HandshakeFailed, 'Invalid HTTP method POST: the upgrade must be a GET');
    expect(err.headers).toEqual({ Allow: 'GET' });
  });

  it('the request must be HTTP/1.1 or later', () => {
    expectRefusal(request({}, { httpVersion: '1.0' }), 400, ErrorCode.HandshakeFailed, 'Invalid HTTP version 1.0: the upgrade needs HTTP/1.1 or later');
    expectRefusal(request({}, { httpVersion: 'x' }), 400, ErrorCode.HandshakeFailed, /Invalid HTTP version x/);
    expect(validateUpgradeRequest(request({}, { httpVersion: '2.0' })).key).toBe(KEY);
  });

  it('the Host header must be present', () => {
    expectRefusal(request({ host: undefined }), 400, ErrorCode.HandshakeFailed, 'Missing Host header');
    expectRefusal(request({ host: '' }), 400, ErrorCode.HandshakeFailed, 'Missing Host header');
  });

  it('the Upgrade header must contain the token websocket, case-insensitive', () => {
    expect(validateUpgradeRequest(request({ upgrade: 'WebSocket' })).key).toBe(KEY);
    expect(validateUpgradeRequest(request({ upgrade: 'foo/2, websocket' })).key).toBe(KEY);
    expectRefusal(request({ upgrade: undefined }), 400, ErrorCode.HandshakeFailed, 'Invalid Upgrade header: expected "websocket"');
    expectRefusal(request({ upgrade: 'h2c' }), 400, ErrorCode.HandshakeFailed, 'Invalid Upgrade header: expected "websocket"');
    expectRefusal(request({ upgrade: 'websockets' }), 400, ErrorCode.HandshakeFailed, /Invalid Upgrade header/);
  });

  it('the Connection header must contain the token upgrade in a comma list, case-insensitive', () => {
    expect(validateUpgradeRequest(request({ connection: 'keep-alive, Upgrade' })).key).toBe(KEY);
    expect(validateUpgradeRequest(request({ connection: ['keep-alive', 'UPGRADE'] })).key).toBe(KEY);
    expectRefusal(request({ connection: undefined }), 400, ErrorCode.HandshakeFailed, 'Invalid Connection header: expected the token "Upgrade"');
    expectRefusal(request({ connection: 'keep-alive' }), 400, ErrorCode.HandshakeFailed, /Invalid Connection header/);
    expectRefusal(request({ connection: 'upgrade-insecure' }), 400, ErrorCode.HandshakeFailed, /Invalid Connection header/);
  });

  it('Sec-WebSocket-Version other than 13 is refused with 426 and Sec-WebSocket-Version: 13 (§4.2.2, §4.4)', () => {
    const err = expectRefusal(request({ 'sec-websocket-version': '8' }), 426, ErrorCode.UnsupportedVersion, 'Unsupported WebSocket version "8"');
    expect(err.headers).toEqual({ 'Sec-WebSocket-Version': '13' });
    expectRefusal(request({ 'sec-websocket-version': '13, 8' }), 426, ErrorCode.UnsupportedVersion, /Unsupported WebSocket version/);
  });

  it('a missing Sec-WebSocket-Version is refused with 426', () => {
    const err = expectRefusal(request({ 'sec-websocket-version': undefined }), 426, ErrorCode.UnsupportedVersion, 'Missing Sec-WebSocket-Version header');
    expect(err.headers).toEqual({ 'Sec-WebSocket-Version': '13' });
  });

  it('Sec-WebSocket-Key must be present and decode to 16 bytes', () => {
    expectRefusal(request({ 'sec-websocket-key': undefined }), 400, ErrorCode.HandshakeFailed, 'Missing Sec-WebSocket-Key header');
    expectRefusal(request({ 'sec-websocket-key': 'c2hvcnQ=' }), 400, ErrorCode.HandshakeFailed, 'Invalid Sec-WebSocket-Key header');
    expectRefusal(request({ 'sec-websocket-key': [KEY, KEY] }), 400, ErrorCode.HandshakeFailed, 'Invalid Sec-WebSocket-Key header');
  });

  it('a Sec-WebSocket-Extensions header that does not parse is refused with 400', () => {
    expectRefusal(request({ 'sec-websocket-extensions': 'permessage-deflate; =' }), 400, ErrorCode.InvalidExtensions, /^Invalid Sec-WebSocket-Extensions header/);
  });

  it('a bad Sec-WebSocket-Protocol header is refused with 400', () => {
    expectRefusal(request({ 'sec-websocket-protocol': 'chat, chat' }), 400, ErrorCode.HandshakeFailed, 'Invalid Sec-WebSocket-Protocol header: duplicate protocol "chat"');
  });
});

describe('RFC 6455 §4.1 Sec-WebSocket-Protocol', () => {
  it('parses a comma list of tokens, ignoring whitespace and empty elements', () => {
    expect(parseProtocols(undefined)).toEqual([]);
    expect(parseProtocols(' chat ,\tsuperchat,, ')).toEqual(['chat', 'superchat']);
    expect(parseProtocols(['a', 'b, c'])).toEqual(['a', 'b', 'c']);
  });

  it('each protocol must be a token', () => {
    const err = caught(() => parseProtocols('chat, sup er'));
    expect(err.code).toBe(ErrorCode.HandshakeFailed);
    expect(err.status).toBe(400);
    expect(err.message).toBe('Invalid Sec-WebSocket-Protocol header: "sup er" is not a token');
  });

  it('each protocol must appear once', () => {
    const err = caught(() => parseProtocols(['chat', 'chat']));
    expect(err.status).toBe(400);
    expect(err.message).toBe('Invalid Sec-WebSocket-Protocol header: duplicate protocol "chat"');
  });
});

describe('RFC 6455 §4.2.2 server: the response', () => {
  it('the 101 response carries Upgrade, Connection and Sec-WebSocket-Accept', () => {
    expect(buildAcceptResponse({ key: KEY })).toBe(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' + `Sec-WebSocket-Accept: ${ACCEPT}\r\n\r\n`,
    );
  });

  it('the 101 response carries the selected protocol, the extensions and extra headers', () => {
    const res = buildAcceptResponse({
      key: KEY,
      protocol: 'chat',
      extensions: 'permessage-deflate; server_no_context_takeover',
      headers: { 'X-A': '1', 'Set-Cookie': ['a=1', 'b=2'] },
    });
    expect(res).toBe(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\n` +
        'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n' +
        'X-A: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n',
    );
  });

  it('extra headers of the 101 response cannot inject CRLF', () => {
    expect(() => buildAcceptResponse({ key: KEY, headers: { 'X-A': 'a\r\nX-Evil: 1' } })).toThrow(WebSocketError);
    expect(() => buildAcceptResponse({ key: KEY, headers: { 'X-A\r\nX-Evil': '1' } })).toThrow(/Invalid header name/);
    expect(() => buildAcceptResponse({ key: KEY, protocol: 'a\nb' })).toThrow(/Invalid value for header Sec-WebSocket-Protocol/);
  });

  it('a refusal has a status line, Connection: close and a plain-text reason', () => {
    expect(buildRefusalResponse(400, 'Missing Host header')).toBe(
      'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 19\r\n\r\nMissing Host header',
    );
  });

  it('a 426 refusal carries Sec-WebSocket-Version: 13 (§4.4)', () => {
    const err = caught(() => validateUpgradeRequest(request({ 'sec-websocket-version': '7' })));
    const res = buildRefusalResponse(err.status!, err.message, err.headers);
    expect(res).toBe(
      'HTTP/1.1 426 Upgrade Required\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 33\r\n' +
        'Sec-WebSocket-Version: 13\r\n\r\nUnsupported WebSocket version "7"',
    );
  });

  it('the Content-Length of a refusal counts UTF-8 bytes', () => {
    expect(buildRefusalResponse(403, 'né')).toMatch(/Content-Length: 3\r\n\r\nné$/);
  });

  it('refusal headers cannot inject CRLF', () => {
    let err: unknown;
    try {
      buildRefusalResponse(400, 'x', { 'X-A': 'b\r\n\r\nHTTP/1.1 200 OK' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WebSocketError);
    expect((err as WebSocketError).code).toBe(ErrorCode.InvalidArgument);
    expect(() => buildRefusalResponse(400, 'x', { 'X\nA': 'b' })).toThrow(/Invalid header name/);
    expect(() => buildRefusalResponse(400, 'x', { 'X-A': 'nul\0' })).toThrow(/Invalid value/);
  });

  it('a refusal status must be a three-digit integer', () => {
    expect(() => buildRefusalResponse(42, 'x')).toThrow(/Invalid HTTP status 42/);
  });
});

describe('RFC 6455 §4.1 client: the request headers', () => {
  it('carries Connection, Upgrade, version 13 and the key', () => {
    expect(buildClientHeaders({ key: KEY })).toEqual({
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': KEY,
    });
  });

  it('carries protocols, extensions, origin and extra headers', () => {
    expect(
      buildClientHeaders({
        key: KEY,
        protocols: ['chat', 'superchat'],
        extensions: 'permessage-deflate; client_max_window_bits',
        origin: 'http://example.com',
        headers: { Authorization: 'Bearer x' },
      }),
    ).toEqual({
      Authorization: 'Bearer x',
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': KEY,
      'Sec-WebSocket-Protocol': 'chat, superchat',
      'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits',
      Origin: 'http://example.com',
    });
  });

  it('extra headers cannot override the handshake headers', () => {
    expect(buildClientHeaders({ key: KEY, headers: { 'Sec-WebSocket-Key': 'x' } })['Sec-WebSocket-Key']).toBe(KEY);
  });

  it('protocols must be unique tokens', () => {
    expect(() => buildClientHeaders({ key: KEY, protocols: ['a', 'a'] })).toThrow(/Invalid or duplicate subprotocol "a"/);
    expect(() => buildClientHeaders({ key: KEY, protocols: ['a b'] })).toThrow(WebSocketError);
  });
});

function response(headers: Record<string, string | string[] | undefined> = {}, statusCode = 101): ServerResponseLike {
  return {
    statusCode,
    headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': ACCEPT, ...headers },
  };
}

function expectClientFailure(res: ServerResponseLike, expectOpts: { protocols?: string[]; extensionsOffered?: boolean }, message: string | RegExp): void {
  const err = caught(() =>
    validateServerResponse(res, { key: KEY, protocols: expectOpts.protocols ?? [], extensionsOffered: expectOpts.extensionsOffered ?? false }),
  );
  expect(err.code).toBe(ErrorCode.HandshakeFailed);
  expect(err.status).toBeUndefined();
  if (typeof message === 'string') expect(err.message).toBe(message);
  else expect(err.message).toMatch(message);
}

describe('RFC 6455 §4.1 client: reading the server handshake', () => {
  it('accepts the RFC example response', () => {
    expect(validateServerResponse(response({ 'sec-websocket-protocol': 'chat' }), { key: KEY, protocols: ['chat', 'superchat'], extensionsOffered: false })).toEqual({
      protocol: 'chat',
      extensions: [],
    });
  });

  it('the status must be 101', () => {
    expectClientFailure(response({}, 200), {}, 'Unexpected server response status 200');
    expectClientFailure({ headers: {} }, {}, 'Unexpected server response status (none)');
  });

  it('the Upgrade header must contain websocket', () => {
    expectClientFailure(response({ upgrade: 'h2c' }), {}, 'Invalid Upgrade header in the server response');
    expect(validateServerResponse(response({ upgrade: 'WEBSOCKET' }), { key: KEY, protocols: [], extensionsOffered: false }).protocol).toBeUndefined();
  });

  it('the Connection header must contain upgrade', () => {
    expectClientFailure(response({ connection: 'close' }), {}, 'Invalid Connection header in the server response');
  });

  it('Sec-WebSocket-Accept must match the key', () => {
    expectClientFailure(response({ 'sec-websocket-accept': undefined }), {}, 'Missing Sec-WebSocket-Accept header');
    expectClientFailure(response({ 'sec-websocket-accept': computeAcceptKey(generateKey()) }), {}, 'Invalid Sec-WebSocket-Accept header');
  });

  it('the subprotocol must be one we offered', () => {
    expectClientFailure(response({ 'sec-websocket-protocol': 'other' }), { protocols: ['chat'] }, 'Server selected subprotocol "other", which was not requested');
    expectClientFailure(response({ 'sec-websocket-protocol': ['chat', 'chat'] }), { protocols: ['chat'] }, 'Invalid Sec-WebSocket-Protocol header in the server response');
  });

  it('a subprotocol is a failure when we offered none', () => {
    expectClientFailure(response({ 'sec-websocket-protocol': 'chat' }), {}, 'Server selected subprotocol "chat" but none was requested');
  });

  it('no subprotocol in the response is allowed when we offered some', () => {
    expect(validateServerResponse(response(), { key: KEY, protocols: ['chat'], extensionsOffered: false }).protocol).toBeUndefined();
  });

  it('Sec-WebSocket-Extensions when we offered none is a failure', () => {
    expectClientFailure(response({ 'sec-websocket-extensions': 'permessage-deflate' }), {}, 'Server sent Sec-WebSocket-Extensions but no extension was offered');
  });

  it('Sec-WebSocket-Extensions that does not parse is a failure', () => {
    expectClientFailure(response({ 'sec-websocket-extensions': 'a;' }), { extensionsOffered: true }, /^Invalid Sec-WebSocket-Extensions header/);
  });

  it('returns the parsed extensions when we offered some', () => {
    expect(
      validateServerResponse(response({ 'sec-websocket-extensions': 'permessage-deflate; server_no_context_takeover' }), {
        key: KEY,
        protocols: [],
        extensionsOffered: true,
      }).extensions,
    ).toEqual([{ name: 'permessage-deflate', params: [['server_no_context_takeover', true]] }]);
  });
});
