/** Close frame bodies (RFC 6455 §5.5.1, §7.4): parseClosePayload and encodeClosePayload. */
import { describe, expect, it } from 'vitest';
import {
  CloseCode,
  ErrorCode,
  ProtocolError,
  WebSocketError,
  encodeClosePayload,
  parseClosePayload,
} from '../../src/protocol/index.js';
import { hex, toHex } from './helpers.js';

function expectProtocolError(result: unknown, code: string, closeCode: number, message: string): void {
  expect(result).toBeInstanceOf(ProtocolError);
  const e = result as ProtocolError;
  expect({ code: e.code, closeCode: e.closeCode, message: e.message }).toEqual({ code, closeCode, message });
}

function expectInvalidArgument(fn: () => unknown, message: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(WebSocketError);
  const e = thrown as WebSocketError;
  expect({ code: e.code, closeCode: e.closeCode, message: e.message }).toEqual({ code: ErrorCode.InvalidArgument, closeCode: undefined, message });
}

describe('parseClosePayload', () => {
  it('an empty body means no status code was present: 1005 and no reason', () => {
    expect(parseClosePayload(Buffer.alloc(0))).toEqual({ code: CloseCode.NoStatusReceived, reason: '' });
  });

  it('reads the code big-endian from the first two bytes and the rest as a UTF-8 reason', () => {
    expect(parseClosePayload(hex('03 e8'))).toEqual({ code: 1000, reason: '' });
    expect(parseClosePayload(Buffer.concat([hex('0f a0'), Buffer.from('bye ✓')]))).toEqual({ code: 4000, reason: 'bye ✓' });
  });

  it('reads a body that is a view into a larger buffer, not the bytes around it', () => {
    const backing = Buffer.concat([Buffer.from('xx'), hex('03 e9'), Buffer.from('away'), Buffer.from('yy')]);
    expect(parseClosePayload(backing.subarray(2, 8))).toEqual({ code: 1001, reason: 'away' });
  });

  it('a body of 1 byte is a protocol error (1002)', () => {
    expectProtocolError(parseClosePayload(hex('03')), ErrorCode.InvalidClosePayload, CloseCode.ProtocolError, 'close frame body of 1 byte');
  });

  it('a code that may not appear on the wire is a protocol error (1002) naming the code', () => {
    expectProtocolError(parseClosePayload(hex('03 ed')), ErrorCode.InvalidCloseCode, CloseCode.ProtocolError, 'invalid close code 1005');
  });

  it('a reason that is not UTF-8 fails with 1007', () => {
    expectProtocolError(parseClosePayload(hex('03 e8 ce')), ErrorCode.InvalidUtf8, CloseCode.InvalidPayloadData, 'close reason is not valid UTF-8');
  });
});

describe('encodeClosePayload', () => {
  it('no code gives an empty body', () => {
    expect(encodeClosePayload().length).toBe(0);
  });

  it('writes the code big-endian followed by the UTF-8 reason', () => {
    expect(toHex(encodeClosePayload(1000))).toBe('03 e8');
    expect(toHex(encodeClosePayload(4999, 'é'))).toBe('13 87 c3 a9');
  });

  it('a reason without a code is refused', () => {
    expectInvalidArgument(() => encodeClosePayload(undefined, 'why'), 'a close reason needs a close code');
  });

  it('a code that may not be sent is refused (RFC 6455 §7.4), as is a non-integer', () => {
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]) {
      expectInvalidArgument(() => encodeClosePayload(code), `close code ${code} may not be sent (RFC 6455 §7.4)`);
    }
    expectInvalidArgument(() => encodeClosePayload(1000.5), 'close code 1000.5 may not be sent (RFC 6455 §7.4)');
  });

  it('a reason of 123 UTF-8 bytes fits (125 with the code); 124 is refused', () => {
    expect(encodeClosePayload(1000, 'a'.repeat(123)).length).toBe(125);
    expectInvalidArgument(() => encodeClosePayload(1000, 'a'.repeat(124)), 'close reason is 124 bytes; at most 123 fit in a close frame');
    // Counted in bytes, not characters: 62 two-byte characters are 124 bytes.
    expectInvalidArgument(() => encodeClosePayload(1000, 'é'.repeat(62)), 'close reason is 124 bytes; at most 123 fit in a close frame');
  });

  it('every body it encodes parses back to the same code and reason', () => {
    for (const code of [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999]) {
      for (const reason of ['', 'ok', 'κόσμε', '😀'.repeat(30)]) {
        expect(parseClosePayload(encodeClosePayload(code, reason))).toEqual({ code, reason });
      }
    }
  });
});
