/**
 * MessageAssembler (RFC 6455 §5.4 joining fragments; RFC 7692 §6.2 inflating them). The inflater
 * here is a stand-in that "inflates" by copying, so the assembler's own rules are what is tested.
 */
import { describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode, MessageAssembler, ProtocolError, type Inflater } from '../../src/protocol/index.js';
import { hex, toHex } from './helpers.js';

/**
 * Copies its input; records the maxBytes it was given; like PerMessageDeflate, counts the whole
 * message across fragments against maxBytes and refuses more with 1009.
 */
class CopyInflater implements Inflater {
  calls: Array<{ data: string; fin: boolean; maxBytes: number }> = [];
  #message = 0;
  decompress(data: Uint8Array, fin: boolean, maxBytes: number): Buffer | ProtocolError {
    this.calls.push({ data: toHex(data), fin, maxBytes });
    this.#message += data.length;
    if (this.#message > maxBytes) return new ProtocolError(ErrorCode.PayloadTooBig, 'inflated message too big', CloseCode.MessageTooBig);
    if (fin) this.#message = 0;
    return Buffer.from(data);
  }
}

function expectFailed(a: MessageAssembler, result: unknown, code: string, closeCode: number, message: string): void {
  expect(result).toBeNull();
  expect(a.error).toBeInstanceOf(ProtocolError);
  expect({ code: a.error?.code, closeCode: a.error?.closeCode, message: a.error?.message }).toEqual({ code, closeCode, message });
  expect(a.buffered).toBe(0);
}

describe('RFC 6455 §5.4 joining fragments', () => {
  it('a one-frame message is returned as it is, without a copy', () => {
    const a = new MessageAssembler({ maxMessageSize: 100 });
    const payload = Buffer.from('whole');
    expect(a.push(payload, true, true, false)).toBe(payload);
  });

  it('fragments are held until FIN, then returned joined in order', () => {
    const a = new MessageAssembler({ maxMessageSize: 100 });
    expect(a.push(Buffer.from('Hel'), false, true, false)).toBeUndefined();
    expect(a.buffered).toBe(3);
    expect(a.push(Buffer.from('l'), false, true, false)).toBeUndefined();
    expect(a.push(Buffer.from('o'), true, true, false)?.toString()).toBe('Hello');
    expect(a.buffered).toBe(0);
  });

  it('an empty message is delivered, whether in one frame or in empty fragments', () => {
    const a = new MessageAssembler({ maxMessageSize: 100 });
    expect(a.push(Buffer.alloc(0), true, true, false)?.length).toBe(0);
    expect(a.push(Buffer.alloc(0), false, false, false)).toBeUndefined();
    expect(a.push(Buffer.alloc(0), false, false, false)).toBeUndefined();
    expect(a.push(Buffer.alloc(0), true, false, false)?.length).toBe(0);
  });

  it('empty fragments around data add nothing', () => {
    const a = new MessageAssembler({ maxMessageSize: 100 });
    expect(a.push(Buffer.alloc(0), false, false, false)).toBeUndefined();
    expect(a.push(hex('01 02'), false, false, false)).toBeUndefined();
    expect(a.push(Buffer.alloc(0), true, false, false)).toEqual(hex('01 02'));
  });

  it('reset() drops the message in progress', () => {
    const a = new MessageAssembler({ maxMessageSize: 100 });
    a.push(Buffer.from('stale'), false, true, false);
    a.reset();
    expect(a.buffered).toBe(0);
    expect(a.push(Buffer.from('fresh'), true, true, false)?.toString()).toBe('fresh');
  });
});

describe('RFC 7692 §6.2 compressed messages', () => {
  it('a compressed message without a negotiated extension fails with 1002', () => {
    const a = new MessageAssembler({ maxMessageSize: 100 });
    expectFailed(a, a.push(hex('00'), true, false, true), ErrorCode.UnexpectedRsv, CloseCode.ProtocolError, 'compressed message without a negotiated extension');
  });

  it('every fragment is inflated under the whole-message limit, which the inflater counts across fragments', () => {
    const inflater = new CopyInflater();
    const a = new MessageAssembler({ maxMessageSize: 10, inflater });
    expect(a.push(hex('01 02 03'), false, false, true)).toBeUndefined();
    expect(a.push(hex('04 05'), false, false, true)).toBeUndefined();
    expect(a.push(hex('06'), true, false, true)).toEqual(hex('01 02 03 04 05 06'));
    expect(inflater.calls).toEqual([
      { data: '01 02 03', fin: false, maxBytes: 10 },
      { data: '04 05', fin: false, maxBytes: 10 },
      { data: '06', fin: true, maxBytes: 10 },
    ]);
  });

  it("the inflater's error (an inflated message over the limit: 1009) fails the message", () => {
    const a = new MessageAssembler({ maxMessageSize: 4, inflater: new CopyInflater() });
    expect(a.push(hex('01 02 03'), false, false, true)).toBeUndefined();
    expectFailed(a, a.push(hex('04 05'), true, false, true), ErrorCode.PayloadTooBig, CloseCode.MessageTooBig, 'inflated message too big');
  });

  it('inflated text is checked for UTF-8 across fragments and fails (1007) on the fragment with the first bad byte', () => {
    const a = new MessageAssembler({ maxMessageSize: 100, inflater: new CopyInflater() });
    expect(a.push(Buffer.from('κόσμε'), false, true, true)).toBeUndefined();
    expect(a.push(hex('ed'), false, true, true)).toBeUndefined(); // could still be valid
    expectFailed(a, a.push(hex('a0 80'), false, true, true), ErrorCode.InvalidUtf8, CloseCode.InvalidPayloadData, 'text message is not valid UTF-8');
  });

  it('inflated text that ends inside a UTF-8 sequence fails with 1007', () => {
    const a = new MessageAssembler({ maxMessageSize: 100, inflater: new CopyInflater() });
    expect(a.push(hex('61 e2 82'), false, true, true)).toBeUndefined();
    expectFailed(a, a.push(Buffer.alloc(0), true, true, true), ErrorCode.InvalidUtf8, CloseCode.InvalidPayloadData, 'text message is not valid UTF-8');
  });

  it('a code point split across inflated fragments is valid', () => {
    const a = new MessageAssembler({ maxMessageSize: 100, inflater: new CopyInflater() });
    expect(a.push(hex('f0 9f'), false, true, true)).toBeUndefined();
    expect(a.push(hex('98'), false, true, true)).toBeUndefined();
    expect(a.push(hex('80'), true, true, true)?.toString()).toBe('😀');
  });

  it('each compressed text message starts with a fresh UTF-8 state, even after an empty first fragment', () => {
    const a = new MessageAssembler({ maxMessageSize: 100, inflater: new CopyInflater() });
    expect(a.push(hex('e2 82'), false, true, true)).toBeUndefined();
    a.reset(); // the message is abandoned with a sequence open
    expect(a.push(Buffer.alloc(0), false, true, true)).toBeUndefined();
    expect(a.push(Buffer.from('plain'), true, true, true)?.toString()).toBe('plain');
    // And after a failure, too.
    expect(a.push(hex('ff'), true, true, true)).toBeNull();
    expect(a.push(Buffer.from('ok'), true, true, true)?.toString()).toBe('ok');
  });

  it('binary compressed messages are not checked for UTF-8', () => {
    const a = new MessageAssembler({ maxMessageSize: 100, inflater: new CopyInflater() });
    expect(a.push(hex('ff fe'), true, false, true)).toEqual(hex('ff fe'));
  });
});
