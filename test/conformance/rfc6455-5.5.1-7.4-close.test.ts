/**
 * RFC 6455 §5.5.1 Close and §7.4 Status Codes: "If there is a body, the first two bytes of the
 * body MUST be a 2-byte unsigned integer (in network byte order) representing a status code";
 * the rest is a UTF-8 reason. 1004, 1005, 1006 and 1015 are reserved and never sent; 0-999 are
 * not used; 1016-2999 are for future RFCs; 3000-4999 for libraries and applications (§7.4.2).
 * Each close frame here goes through the parser (masked, as a client sends it) and then
 * parseClosePayload, as the connection does.
 */
import { describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode, Opcode, ProtocolError, parseClosePayload } from '../../src/protocol/index.js';
import { KEY, expectChunkInvariant, feed, frameEvent, frames, hex, makeParser } from '../protocol/helpers.js';

/** Parse one masked close frame carrying `body` and read its body. */
function closeWith(body: Buffer): ReturnType<typeof parseClosePayload> {
  const bytes = frames({ opcode: Opcode.Close, payload: body, maskKey: KEY });
  expectChunkInvariant(bytes, 'server', [frameEvent({ opcode: Opcode.Close, payload: body, masked: true })]);
  const p = makeParser('server');
  p.push(Buffer.from(bytes));
  const e = p.next();
  if (e?.type !== 'frame') throw new Error('expected a close frame');
  return parseClosePayload(e.frame.payload);
}

function codeBody(code: number, reason: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, reason]);
}

function expectError(result: unknown, code: string, closeCode: number, message: string): void {
  expect(result).toBeInstanceOf(ProtocolError);
  const e = result as ProtocolError;
  expect({ code: e.code, closeCode: e.closeCode, message: e.message }).toEqual({ code, closeCode, message });
}

const INVALID_RANGES: Array<[string, number[]]> = [
  ['0-999 (not used)', [0, 1, 500, 999]],
  ['1004 (reserved)', [1004]],
  ['1005 (no status: never on the wire)', [1005]],
  ['1006 (abnormal closure: never on the wire)', [1006]],
  ['1015 (TLS handshake: never on the wire)', [1015]],
  ['1016-2999 (reserved for future RFCs)', [1016, 1100, 2000, 2999]],
  ['5000 and above (undefined)', [5000, 5001, 10000, 65535]],
];

const VALID_RANGES: Array<[string, number[]]> = [
  ['1000-1003', [1000, 1001, 1002, 1003]],
  ['1007-1014', [1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]],
  ['3000-4999 (libraries, frameworks, applications)', [3000, 3001, 3999, 4000, 4998, 4999]],
];

describe('RFC 6455 §5.5.1 the close body', () => {
  it('an empty body is legal and means no status code: 1005 with no reason (Autobahn 7.3.1)', () => {
    expect(closeWith(Buffer.alloc(0))).toEqual({ code: CloseCode.NoStatusReceived, reason: '' });
  });

  it('a body of 1 byte fails with 1002: it cannot hold a status code (Autobahn 7.3.2)', () => {
    expectError(closeWith(hex('03')), ErrorCode.InvalidClosePayload, CloseCode.ProtocolError, 'close frame body of 1 byte');
  });

  it('a code with a UTF-8 reason is read back (Autobahn 7.3.3-7.3.5)', () => {
    expect(closeWith(codeBody(1000))).toEqual({ code: 1000, reason: '' });
    expect(closeWith(codeBody(1000, Buffer.from('Hello κόσμε')))).toEqual({ code: 1000, reason: 'Hello κόσμε' });
    const longest = 'x'.repeat(123);
    expect(closeWith(codeBody(4999, Buffer.from(longest)))).toEqual({ code: 4999, reason: longest });
  });

  it('a reason that is not UTF-8 fails with 1007 (Autobahn 7.5.1)', () => {
    for (const bad of ['ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64', 'ff', 'c0 af', 'f4 90 80 80', 'e2 82']) {
      expectError(closeWith(codeBody(1000, hex(bad))), ErrorCode.InvalidUtf8, CloseCode.InvalidPayloadData, 'close reason is not valid UTF-8');
    }
  });

  it('a close body of 126 bytes is a control frame too long: 1002 at the header (Autobahn 7.3.6)', () => {
    const bytes = frames({ opcode: Opcode.Close, payload: codeBody(1000, Buffer.alloc(124, 0x61)), maskKey: KEY });
    expect(feed(makeParser('server'), [bytes.subarray(0, 2)])).toEqual([
      { type: 'fail', errorClass: 'ProtocolError', code: ErrorCode.InvalidControlFrame, closeCode: CloseCode.ProtocolError, message: 'control frame payload over 125 bytes' },
    ]);
  });
});

describe('RFC 6455 §7.4 status codes on the wire', () => {
  for (const [range, codes] of INVALID_RANGES) {
    it(`${range} fails with 1002 (Autobahn 7.9.*)`, () => {
      for (const code of codes) expectError(closeWith(codeBody(code)), ErrorCode.InvalidCloseCode, CloseCode.ProtocolError, `invalid close code ${code}`);
    });
  }

  for (const [range, codes] of VALID_RANGES) {
    it(`${range} are accepted (Autobahn 7.7.*)`, () => {
      for (const code of codes) expect(closeWith(codeBody(code, Buffer.from('r')))).toEqual({ code, reason: 'r' });
    });
  }

  it('every code 0-65535 is accepted exactly when it is in 1000-1003, 1007-1014 or 3000-4999', () => {
    const body = Buffer.alloc(2);
    for (let code = 0; code <= 0xffff; code++) {
      body.writeUInt16BE(code);
      const valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
      const result = parseClosePayload(body);
      if ((result instanceof ProtocolError) === valid) expect.fail(`close code ${code} should be ${valid ? 'accepted' : 'refused'}`);
    }
  });
});
