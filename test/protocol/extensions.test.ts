import { describe, expect, it } from 'vitest';
import { ErrorCode, HandshakeError, WebSocketError } from '../../src/protocol/errors.js';
import { formatExtensions, isToken, parseExtensions } from '../../src/protocol/extensions.js';
import type { ExtensionOffer } from '../../src/protocol/extensions.js';

function expectSyntaxError(header: string | string[], message: RegExp): void {
  let caught: unknown;
  try {
    parseExtensions(header);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(HandshakeError);
  const err = caught as HandshakeError;
  expect(err.code).toBe(ErrorCode.InvalidExtensions);
  expect(err.status).toBe(400);
  expect(err.message).toMatch(/^Invalid Sec-WebSocket-Extensions header: /);
  expect(err.message).toMatch(message);
}

describe('RFC 6455 §9.1 extension-list grammar', () => {
  it('an absent header is an empty list', () => {
    expect(parseExtensions(undefined)).toEqual([]);
  });

  it('an empty header and empty list elements are ignored (RFC 7230 §7)', () => {
    expect(parseExtensions('')).toEqual([]);
    expect(parseExtensions(' , ,foo,, ')).toEqual([{ name: 'foo', params: [] }]);
  });

  it('parses the browser offer', () => {
    expect(parseExtensions('permessage-deflate; client_max_window_bits')).toEqual([
      { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
    ]);
  });

  it('keeps the order of extensions and parameters', () => {
    const list = parseExtensions('permessage-deflate; server_max_window_bits=10; client_no_context_takeover, permessage-deflate, x-foo;a=1;b');
    expect(list).toEqual([
      {
        name: 'permessage-deflate',
        params: [
          ['server_max_window_bits', '10'],
          ['client_no_context_takeover', true],
        ],
      },
      { name: 'permessage-deflate', params: [] },
      { name: 'x-foo', params: [['a', '1'], ['b', true]] },
    ]);
  });

  it('keeps duplicate parameters so that negotiation can refuse them', () => {
    expect(parseExtensions('permessage-deflate; server_no_context_takeover; server_no_context_takeover')).toEqual([
      {
        name: 'permessage-deflate',
        params: [
          ['server_no_context_takeover', true],
          ['server_no_context_takeover', true],
        ],
      },
    ]);
  });

  it('allows optional whitespace around ";", "=" and ","', () => {
    expect(parseExtensions(' a \t;\tb = 1 ; c ,\td ')).toEqual([
      { name: 'a', params: [['b', '1'], ['c', true]] },
      { name: 'd', params: [] },
    ]);
  });

  it('a quoted-string value is unescaped', () => {
    expect(parseExtensions('a; b="10"; c="x\\yz"')).toEqual([{ name: 'a', params: [['b', '10'], ['c', 'xyz']] }]);
  });

  it('several header lines are one list joined with ","', () => {
    expect(parseExtensions(['a; x=1', 'b'])).toEqual([
      { name: 'a', params: [['x', '1']] },
      { name: 'b', params: [] },
    ]);
  });

  it('a quoted value that is not a token after unescaping is refused', () => {
    expectSyntaxError('a; b="1 0"', /quoted value "1 0" is not a token/);
    expectSyntaxError('a; b=""', /quoted value "" is not a token/);
  });

  it('an unterminated quoted-string is refused', () => {
    expectSyntaxError('a; b="10', /unterminated quoted-string/);
    expectSyntaxError('a; b="10\\', /unterminated quoted-string/);
  });

  it('an extension name must be a token', () => {
    expectSyntaxError('a b', /unexpected character "b"/);
    expectSyntaxError('; b', /unexpected character ";" in extension name/);
    expectSyntaxError('a, "b"', /in extension name/);
  });

  it('a parameter name must be a token', () => {
    expectSyntaxError('a;', /missing parameter name/);
    expectSyntaxError('a; =1', /in parameter name/);
    expectSyntaxError('a; b@=1', /unexpected character "@"/);
  });

  it('a parameter value must be a token or a quoted-string', () => {
    expectSyntaxError('a; b=', /missing parameter value/);
    expectSyntaxError('a; b=1=2', /unexpected character "="/);
    expectSyntaxError('a; b=é', /in parameter value/);
  });

  it('isToken follows RFC 7230 tchar', () => {
    expect(isToken("!#$%&'*+-.^_`|~09AZaz")).toBe(true);
    for (const bad of ['', ' ', 'a b', '"', '(', ')', ',', '/', ':', ';', '<', '=', '>', '?', '@', '[', '\\', ']', '{', '}', 'é', '\x7f']) {
      expect(isToken(bad)).toBe(false);
    }
  });
});

describe('RFC 6455 §9.1 formatting', () => {
  it('formats names, bare parameters and values', () => {
    const list: ExtensionOffer[] = [
      { name: 'permessage-deflate', params: [['server_no_context_takeover', true], ['client_max_window_bits', '10']] },
      { name: 'x', params: [] },
    ];
    const s = formatExtensions(list);
    expect(s).toBe('permessage-deflate; server_no_context_takeover; client_max_window_bits=10, x');
    expect(parseExtensions(s)).toEqual(list);
  });

  it('formats an empty list as an empty string', () => {
    expect(formatExtensions([])).toBe('');
  });

  it('refuses names and values that are not tokens', () => {
    expect(() => formatExtensions([{ name: 'a b', params: [] }])).toThrow(WebSocketError);
    expect(() => formatExtensions([{ name: 'a', params: [['b', 'x\r\ny']] }])).toThrow(/is not a token/);
    try {
      formatExtensions([{ name: 'a', params: [['b;', true]] }]);
    } catch (err) {
      expect((err as WebSocketError).code).toBe(ErrorCode.InvalidArgument);
    }
  });
});
