/**
 * RequestHeadReader: the HTTP/1.1 request head (RFC 9112) as listen() reads it, fed whole, split
 * at every offset, one byte at a time and at random splits; limits; malformed lines; duplicates;
 * the bytes after the head.
 */
import { describe, expect, it } from 'vitest';
import { HandshakeError } from '../../src/protocol/errors.js';
import { DEFAULT_MAX_HEADER_FIELDS, RequestHeadReader, parseRequestHead, type RequestHeadResult } from '../../src/protocol/http-request.js';
import { Rng } from './helpers.js';

const REQUEST =
  'GET /chat?room=1 HTTP/1.1\r\n' +
  'Host: server.example.com\r\n' +
  'Upgrade: websocket\r\n' +
  'Connection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
  'Sec-WebSocket-Version: 13\r\n' +
  '\r\n';

/** A masked text frame "Hi", as a client would pipeline it after its request. */
const FRAME = Buffer.from([0x81, 0x82, 0x01, 0x02, 0x03, 0x04, 0x49, 0x6b]);

const LIMITS = { maxHeaderSize: 16 * 1024 };

/** What a result is, as plain data that compares with toEqual. */
function describeResult(r: RequestHeadResult | undefined): unknown {
  if (r === undefined) return undefined;
  if (!r.ok) {
    expect(r.error).toBeInstanceOf(HandshakeError);
    return { status: r.error.status, code: r.error.code, message: r.error.message };
  }
  const { method, url, httpVersion, headers, rawHeaders } = r.request;
  return { method, url, httpVersion, headers: { ...headers }, rawHeaders, head: r.head.toString('hex') };
}

/**
 * Feed `chunks` in order until there is a result, as listen() does. The chunks after that one go
 * to the connection: they are appended to `head`, which is then every byte after the request head.
 */
function feed(chunks: Buffer[], limits = LIMITS): unknown {
  const reader = new RequestHeadReader(limits);
  let result: RequestHeadResult | undefined;
  const after: Buffer[] = [];
  for (const c of chunks) {
    if (result === undefined) result = reader.push(Buffer.from(c));
    else after.push(c);
  }
  if (result?.ok === true) result = { ...result, head: Buffer.concat([result.head, ...after]) };
  return describeResult(result);
}

function whole(bytes: string | Buffer, limits = LIMITS): unknown {
  return feed([Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1')], limits);
}

/** Expect the same result whole, split in two at every offset, one byte at a time, and at random splits. */
function expectChunkInvariant(bytes: Buffer, limits = LIMITS): unknown {
  const expected = feed([bytes], limits);
  for (let i = 0; i <= bytes.length; i++) {
    expect(feed([bytes.subarray(0, i), bytes.subarray(i)], limits), `split at ${i}`).toEqual(expected);
  }
  const bytewise: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) bytewise.push(bytes.subarray(i, i + 1));
  expect(feed(bytewise, limits), 'one byte at a time').toEqual(expected);
  const rng = new Rng(6455);
  for (let round = 0; round < 50; round++) {
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length; ) {
      const n = rng.range(1, 40);
      chunks.push(bytes.subarray(at, at + n));
      at += n;
    }
    expect(feed(chunks, limits), `random splits, round ${round}`).toEqual(expected);
  }
  return expected;
}

function refusal(status: number, message: string | RegExp): unknown {
  return { status, code: 'WS_ERR_HANDSHAKE_FAILED', message: typeof message === 'string' ? message : expect.stringMatching(message) };
}

describe('RequestHeadReader: a valid head (RFC 9112 §2-§5)', () => {
  it('parses the request-line and the fields: lower-case names in headers, lines as sent in rawHeaders', () => {
    expect(whole(REQUEST)).toEqual({
      method: 'GET',
      url: '/chat?room=1',
      httpVersion: '1.1',
      headers: {
        host: 'server.example.com',
        upgrade: 'websocket',
        connection: 'Upgrade',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'sec-websocket-version': '13',
      },
      rawHeaders: [
        'Host', 'server.example.com',
        'Upgrade', 'websocket',
        'Connection', 'Upgrade',
        'Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version', '13',
      ],
      head: '',
    });
  });

  it('gives the same request split at every byte offset, one byte at a time and at random splits', () => {
    const r = expectChunkInvariant(Buffer.from(REQUEST, 'latin1'));
    expect(r).toMatchObject({ method: 'GET', head: '' });
  });

  it('returns the bytes after the head (pipelined frames) as head, at every split', () => {
    const bytes = Buffer.concat([Buffer.from(REQUEST, 'latin1'), FRAME, FRAME]);
    const r = expectChunkInvariant(bytes);
    expect(r).toMatchObject({ url: '/chat?room=1', head: Buffer.concat([FRAME, FRAME]).toString('hex') });
  });

  it('returns the result once: later chunks are ignored', () => {
    const reader = new RequestHeadReader(LIMITS);
    expect(reader.push(Buffer.from(REQUEST))).toMatchObject({ ok: true });
    expect(reader.push(Buffer.from(REQUEST))).toBeUndefined();
    expect(reader.push(FRAME)).toBeUndefined();
  });

  it('skips empty lines before the request-line (§2.2)', () => {
    expect(whole('\r\n\r\n' + REQUEST)).toEqual(whole(REQUEST));
  });

  it('trims optional whitespace around a value and keeps the whitespace inside it (§5.1)', () => {
    const r = whole('GET / HTTP/1.1\r\nHost:   a b \t\r\nX-Empty:\r\nX-Tab:\tv\r\n\r\n');
    expect(r).toMatchObject({ headers: { host: 'a b', 'x-empty': '', 'x-tab': 'v' }, rawHeaders: ['Host', 'a b', 'X-Empty', '', 'X-Tab', 'v'] });
  });

  it('keeps obs-text in values byte for byte (latin1)', () => {
    const bytes = Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nX-Name: '), Buffer.from([0xc3, 0xa9, 0xff]), Buffer.from('\r\n\r\n')]);
    expect(whole(bytes)).toMatchObject({ headers: { 'x-name': '\xc3\xa9\xff' } });
  });

  it('parses HTTP/1.0 and a later HTTP/1.x (the handshake, not the reader, refuses 1.0)', () => {
    expect(whole('GET / HTTP/1.0\r\nHost: x\r\n\r\n')).toMatchObject({ httpVersion: '1.0' });
    expect(whole('GET / HTTP/1.2\r\nHost: x\r\n\r\n')).toMatchObject({ httpVersion: '1.2' });
  });

  it('reads any token as the method and an absolute-form target', () => {
    expect(whole('M-SEARCH http://a.example/x?y HTTP/1.1\r\nHost: x\r\n\r\n')).toMatchObject({ method: 'M-SEARCH', url: 'http://a.example/x?y' });
  });

  it('reads a head with no fields', () => {
    expect(whole('GET / HTTP/1.1\r\n\r\n')).toMatchObject({ headers: {}, rawHeaders: [] });
  });

  it('has no inherited keys in headers: "constructor" and "__proto__" are fields like any other', () => {
    const reader = new RequestHeadReader(LIMITS);
    const r = reader.push(Buffer.from('GET / HTTP/1.1\r\nConstructor: a\r\n__proto__: b\r\nX: c\r\n\r\n'));
    expect(r?.ok).toBe(true);
    const headers = r!.ok ? r!.request.headers : {};
    expect(headers['constructor']).toBe('a');
    expect(headers['__proto__']).toBe('b');
    expect(headers['tostring']).toBeUndefined();
    expect(headers['toString']).toBeUndefined();
    expect(Object.keys(headers)).toEqual(['constructor', '__proto__', 'x']);
  });
});

describe('RequestHeadReader: repeated fields', () => {
  it('joins repeated fields with ", " in headers, whatever the case of their names, and keeps each line in rawHeaders', () => {
    const r = whole(
      'GET / HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Protocol: chat\r\nsec-websocket-protocol: superchat, v2\r\n' +
        'Sec-WebSocket-Extensions: permessage-deflate\r\nSEC-WEBSOCKET-EXTENSIONS: x-foo\r\n\r\n',
    );
    expect(r).toMatchObject({
      headers: { 'sec-websocket-protocol': 'chat, superchat, v2', 'sec-websocket-extensions': 'permessage-deflate, x-foo' },
      rawHeaders: ['Host', 'x', 'Sec-WebSocket-Protocol', 'chat', 'sec-websocket-protocol', 'superchat, v2', 'Sec-WebSocket-Extensions', 'permessage-deflate', 'SEC-WEBSOCKET-EXTENSIONS', 'x-foo'],
    });
  });

  it('lower-cases every name, including names as long as a handshake field that are not one (the known-name shortcut)', () => {
    const names = ['HOST', 'Origin', 'UpGrAdE', 'Connection', 'User-Agent', 'Keep-Alive', 'X-Customs1', 'SEC-WEBSOCKET-KEY', 'Sec-WebSocket-Version',
      'Sec-WebSocket-Protocol', 'Sec-WebSocket-Extensions', 'Sec-WebSocket-Kex', 'Xost', 'Originn', 'Upgradf', 'Sec-WebSocket-Versio1', 'Sec-WebSocket-Protocoi', 'Sec-WebSocket-Extension5'];
    const r = whole(`GET / HTTP/1.1\r\n${names.map((n, i) => `${n}: v${i}`).join('\r\n')}\r\n\r\n`) as { headers: Record<string, string>; rawHeaders: string[] };
    expect(Object.keys(r.headers)).toEqual(names.map((n) => n.toLowerCase()));
    expect(r.rawHeaders.filter((_, i) => i % 2 === 0)).toEqual(names);
    names.forEach((n, i) => expect(r.headers[n.toLowerCase()]).toBe(`v${i}`));
  });

  it('joins repeated Cookie fields with "; " (as Node does)', () => {
    expect(whole('GET / HTTP/1.1\r\nHost: x\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n')).toMatchObject({ headers: { cookie: 'a=1; b=2' } });
  });

  it('refuses two Host fields with 400 (RFC 9112 §3.2)', () => {
    expect(whole('GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n')).toEqual(refusal(400, 'Bad Request: more than one Host header'));
  });
});

describe('RequestHeadReader: limits', () => {
  const size = Buffer.byteLength(REQUEST);

  it('accepts a head of exactly maxHeaderSize bytes (the final CRLF CRLF included)', () => {
    expect(expectChunkInvariant(Buffer.from(REQUEST), { maxHeaderSize: size })).toMatchObject({ method: 'GET' });
  });

  it('refuses a head one byte over maxHeaderSize with 431, at every split', () => {
    expect(expectChunkInvariant(Buffer.from(REQUEST), { maxHeaderSize: size - 1 })).toEqual(
      refusal(431, `Request Header Fields Too Large: request head larger than ${size - 1} bytes`),
    );
  });

  it('counts the skipped empty lines before the request-line', () => {
    expect(whole('\r\n' + REQUEST, { maxHeaderSize: size + 1 })).toMatchObject({ status: 431 });
    expect(whole('\r\n' + REQUEST, { maxHeaderSize: size + 2 })).toMatchObject({ method: 'GET' });
  });

  it('refuses as soon as maxHeaderSize bytes are held without the end of the head, not at a deadline', () => {
    const reader = new RequestHeadReader({ maxHeaderSize: 1024 });
    const start = Buffer.from('GET / HTTP/1.1\r\nX-Big: ');
    expect(reader.push(start)).toBeUndefined();
    // 1023 bytes held: not over the limit yet.
    expect(reader.push(Buffer.alloc(1023 - start.length, 'a'))).toBeUndefined();
    const r = reader.push(Buffer.from('a'));
    expect(describeResult(r)).toEqual(refusal(431, 'Request Header Fields Too Large: request head larger than 1024 bytes'));
  });

  it('bytes after a head that fits do not count against maxHeaderSize', () => {
    const bytes = Buffer.concat([Buffer.from(REQUEST), Buffer.alloc(4096, 0x81)]);
    expect(expectChunkInvariant(bytes, { maxHeaderSize: size })).toMatchObject({ method: 'GET' });
  });

  it(`accepts ${DEFAULT_MAX_HEADER_FIELDS} fields and refuses ${DEFAULT_MAX_HEADER_FIELDS + 1} with 431 by default`, () => {
    const fields = (n: number): string => {
      let s = 'GET / HTTP/1.1\r\n';
      for (let i = 0; i < n; i++) s += `X-${i}: v\r\n`;
      return s + '\r\n';
    };
    expect(whole(fields(DEFAULT_MAX_HEADER_FIELDS))).toMatchObject({ method: 'GET' });
    const tooMany = Buffer.from(fields(DEFAULT_MAX_HEADER_FIELDS + 1));
    expect(expectChunkInvariant(tooMany)).toEqual(refusal(431, `Request Header Fields Too Large: more than ${DEFAULT_MAX_HEADER_FIELDS} header fields`));
  });

  it('refuses too many fields before the head ends (the cap is on lines read, not on a finished head)', () => {
    const reader = new RequestHeadReader({ maxHeaderSize: 16 * 1024, maxHeaderFields: 3 });
    expect(reader.push(Buffer.from('GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n'))).toBeUndefined();
    expect(describeResult(reader.push(Buffer.from('D: 4\r\n')))).toEqual(refusal(431, 'Request Header Fields Too Large: more than 3 header fields'));
  });
});

describe('RequestHeadReader: malformed heads are refused with 400 (or 505)', () => {
  const cases: [string, string, RegExp | string][] = [
    ['a bare LF ending the request-line', 'GET / HTTP/1.1\nHost: x\r\n\r\n', 'Bad Request: a line ends with a bare LF (expected CRLF)'],
    ['a bare LF ending a field line', 'GET / HTTP/1.1\r\nHost: x\n\r\n', 'Bad Request: a line ends with a bare LF (expected CRLF)'],
    ['a head ending with LF LF', 'GET / HTTP/1.1\r\nHost: x\n\n', 'Bad Request: a line ends with a bare LF (expected CRLF)'],
    ['a bare LF as the first byte', '\nGET / HTTP/1.1\r\n\r\n', 'Bad Request: a line ends with a bare LF (expected CRLF)'],
    ['whitespace between a field name and the colon (§5.1)', 'GET / HTTP/1.1\r\nHost : x\r\n\r\n', 'Bad Request: whitespace before the colon in header "Host"'],
    ['a tab between a field name and the colon', 'GET / HTTP/1.1\r\nHost\t: x\r\n\r\n', 'Bad Request: whitespace before the colon in header "Host"'],
    ['obs-fold (§5.2)', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n', 'Bad Request: obsolete line folding in a header field'],
    ['obs-fold with a tab', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n\ttwo\r\n\r\n', 'Bad Request: obsolete line folding in a header field'],
    ['a field line without a colon', 'GET / HTTP/1.1\r\nHost x\r\n\r\n', 'Bad Request: a header line without a colon'],
    ['an empty field name', 'GET / HTTP/1.1\r\n: x\r\n\r\n', 'Bad Request: invalid header name ""'],
    ['a field name with a non-token character', 'GET / HTTP/1.1\r\nX(y): x\r\n\r\n', 'Bad Request: invalid header name "X(y)"'],
    ['a NUL in a value', 'GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n', 'Bad Request: invalid character in the value of header Host'],
    ['a lone CR in a value', 'GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n', 'Bad Request: invalid character in the value of header Host'],
    ['a CR before CRLF', 'GET / HTTP/1.1\r\nHost: a\r\r\n\r\n', 'Bad Request: invalid character in the value of header Host'],
    ['a DEL in a value', 'GET / HTTP/1.1\r\nHost: a\x7fb\r\n\r\n', 'Bad Request: invalid character in the value of header Host'],
    ['a request-line with two parts', 'GET /\r\nHost: x\r\n\r\n', 'Bad Request: malformed request line'],
    ['an HTTP/0.9 simple request', 'GET /\r\n\r\n', 'Bad Request: malformed request line'],
    ['a request-line starting with a space', ' GET / HTTP/1.1\r\n\r\n', 'Bad Request: not an HTTP request: the request-line does not start with a method'],
    ['two spaces after the method', 'GET  / HTTP/1.1\r\n\r\n', 'Bad Request: malformed request line'],
    ['a space in the request-target', 'GET /a b HTTP/1.1\r\n\r\n', 'Bad Request: malformed request line: the HTTP version'],
    ['a trailing space after the version', 'GET / HTTP/1.1 \r\n\r\n', 'Bad Request: malformed request line: the HTTP version'],
    ['a lower-case protocol name', 'GET / http/1.1\r\n\r\n', 'Bad Request: malformed request line: the HTTP version'],
    ['a version without a minor digit', 'GET / HTTP/1\r\n\r\n', 'Bad Request: malformed request line: the HTTP version'],
    ['a two-digit version', 'GET / HTTP/1.10\r\n\r\n', 'Bad Request: malformed request line: the HTTP version'],
    ['a method that is not a token', 'G(T / HTTP/1.1\r\n\r\n', 'Bad Request: not an HTTP request: the request-line does not start with a method'],
    ['a control character in the request-target', 'GET /\x01 HTTP/1.1\r\n\r\n', 'Bad Request: malformed request line: invalid character in the request target'],
    ['a non-ASCII byte in the request-target', 'GET /\xe9 HTTP/1.1\r\n\r\n', 'Bad Request: malformed request line: invalid character in the request target'],
    ['a TLS ClientHello', '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n', 'Bad Request: not an HTTP request: the request-line does not start with a method'],
  ];
  for (const [what, text, message] of cases) {
    it(`refuses ${what}, at every split`, () => {
      expect(expectChunkInvariant(Buffer.from(text, 'latin1'))).toEqual(refusal(400, message));
    });
  }

  it('refuses bytes that cannot begin a request-line at once (a TLS ClientHello, a WebSocket frame, binary), not at the handshake timeout', () => {
    for (const first of [Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5]), Buffer.from([0x81, 0x85, 0x37, 0xfa]), Buffer.from('GET\x00'), Buffer.from('\r\n GET')]) {
      const reader = new RequestHeadReader(LIMITS);
      expect(describeResult(reader.push(first)), first.toString('hex')).toEqual(refusal(400, 'Bad Request: not an HTTP request: the request-line does not start with a method'));
    }
    // A method cut anywhere, after empty lines, is still waited for.
    for (const first of ['G', 'GE', 'GET', 'GET ', '\r\n', '\r\nGET', 'M-SEARCH']) {
      expect(new RequestHeadReader(LIMITS).push(Buffer.from(first, 'latin1')), JSON.stringify(first)).toBeUndefined();
    }
  });

  it('refuses a bare LF at once, without waiting for the end of a head that would never come', () => {
    const reader = new RequestHeadReader(LIMITS);
    expect(describeResult(reader.push(Buffer.from('GET / HTTP/1.1\n')))).toMatchObject({ status: 400 });
  });

  it('tells a CRLF split across two chunks from a bare LF', () => {
    const reader = new RequestHeadReader(LIMITS);
    expect(reader.push(Buffer.from('GET / HTTP/1.1\r'))).toBeUndefined();
    expect(reader.push(Buffer.from('\nHost: x\r'))).toBeUndefined();
    expect(describeResult(reader.push(Buffer.from('\n\r\n')))).toMatchObject({ method: 'GET', headers: { host: 'x' } });
  });

  it('refuses a major version other than 1 with 505 (RFC 9110 §6.2), as for the HTTP/2 preface', () => {
    expect(whole('GET / HTTP/2.0\r\nHost: x\r\n\r\n')).toEqual(refusal(505, 'HTTP Version Not Supported: HTTP/2.0'));
    expect(whole('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')).toEqual(refusal(505, 'HTTP Version Not Supported: HTTP/2.0'));
    expect(whole('GET / HTTP/0.9\r\n\r\n')).toEqual(refusal(505, 'HTTP Version Not Supported: HTTP/0.9'));
  });
});

describe('parseRequestHead', () => {
  it('parses a head given as text and returns a HandshakeError (never throws) for a bad one', () => {
    expect(parseRequestHead('GET /x HTTP/1.1\r\nHost: y\r\n')).toEqual({ method: 'GET', url: '/x', httpVersion: '1.1', headers: { host: 'y' }, rawHeaders: ['Host', 'y'] });
    const e = parseRequestHead('nonsense');
    expect(e).toBeInstanceOf(HandshakeError);
    expect((e as HandshakeError).status).toBe(400);
  });

  it('applies its own cap on the number of fields', () => {
    expect(parseRequestHead('GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n', 1)).toMatchObject({ status: 431 });
  });
});
