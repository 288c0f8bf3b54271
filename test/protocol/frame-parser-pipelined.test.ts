/**
 * Reads that hold many small masked frames (pipelined clients, tcpkali): the parser unmasks their
 * payloads four bytes at a time through a DataView over the read (`unmaskShort`) and takes an
 * all-ASCII first frame of a text message as valid UTF-8 without another pass. These tests hold
 * that path to the byte-by-byte one: the same vector fed whole (the word path) and one byte at a
 * time or at random splits (the byte path) gives the same events, including every UTF-8 failure.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/protocol/index.js';
import { applyMaskNaive, unmaskShort } from '../../src/protocol/mask.js';
import {
  Opcode,
  Rng,
  byteChunks,
  expectChunkInvariant,
  feed,
  frameEvent,
  frames,
  makeParser,
  toHex,
  wholeChunks,
  type FrameSpec,
} from './helpers.js';

describe('unmaskShort', () => {
  it('unmasks exactly as the byte-by-byte twin, at any offset and length, for any key', () => {
    const rng = new Rng(11);
    for (let n = 0; n < 600; n++) {
      const len = rng.range(0, 140);
      const start = rng.range(0, 9);
      const buf = rng.bytes(start + len + rng.range(0, 5));
      if (rng.bool()) for (let i = 0; i < buf.length; i++) buf[i]! &= 0x7f; // ASCII-only now and then
      const key = n % 7 === 0 ? 0xffffffff - n : rng.u32(); // keys over 2^31 included
      const expected = Buffer.from(buf);
      applyMaskNaive(expected, key, start, start + len, 0);
      const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
      const acc = unmaskShort(view, key, start, start + len);
      expect(toHex(buf), `len ${len} at ${start}, key ${key.toString(16)}`).toBe(toHex(expected));
      const ascii = expected.subarray(start, start + len).every((b) => b < 0x80);
      expect((acc & 0x80808080) === 0, `ASCII answer for len ${len}`).toBe(ascii);
    }
  });
});

/** A masked frame spec with its expected event. */
function masked(spec: FrameSpec, key: number): FrameSpec & { maskKey: number } {
  return { ...spec, maskKey: key };
}

describe('a read of many small masked frames', () => {
  it('gives the same frames fed whole as fed byte by byte or at random splits (ASCII, multi-byte text, binary)', () => {
    const rng = new Rng(23);
    const specs: Array<FrameSpec & { maskKey: number }> = [];
    const words = ['hello world!!13212312!', 'é', '€uro', '𝄞 clef', 'ascii only', 'Ωmega'];
    for (let n = 0; n < 300; n++) {
      const kind = rng.int(3);
      const len = rng.range(0, 130);
      let spec: FrameSpec;
      if (kind === 0) {
        spec = { opcode: Opcode.Text, payload: 'x'.repeat(len) };
      } else if (kind === 1) {
        let s = '';
        while (Buffer.byteLength(s) < len) s += words[rng.int(words.length)];
        spec = { opcode: Opcode.Text, payload: s };
      } else {
        spec = { opcode: Opcode.Binary, payload: rng.bytes(len) };
      }
      specs.push(masked(spec, rng.u32()));
    }
    const vector = frames(...specs);
    expect(vector.length, 'one read of many frames: the word path runs').toBeGreaterThan(4096);
    const expected = specs.map(({ maskKey: _k, ...s }) => frameEvent({ ...s, masked: true }));
    expectChunkInvariant(vector, 'server', expected);
  });

  it('fails a bad UTF-8 byte among pipelined ASCII frames with 1007, fed whole or in pieces', () => {
    const good = Array.from({ length: 40 }, (_, i) => masked({ opcode: Opcode.Text, payload: `message ${i} ok` }, 0x01020304 + i));
    const bad = masked({ opcode: Opcode.Text, payload: Buffer.from([0x61, 0x62, 0xc0, 0xaf, 0x63, 0x64, 0x65, 0x66]) }, 0x8badf00d);
    const vector = frames(...good, bad, ...good);
    const byByte = feed(makeParser('server'), byteChunks(vector));
    expect(byByte.length).toBe(41);
    expect(byByte[40]).toMatchObject({ type: 'fail', code: ErrorCode.InvalidUtf8, closeCode: 1007 });
    expect(feed(makeParser('server'), wholeChunks(vector))).toEqual(byByte);
  });

  it('checks an ASCII continuation that follows a first fragment ending inside a character', () => {
    // "ab" + the first two bytes of € (E2 82 AC), then a continuation that starts with ASCII:
    // invalid, although the continuation alone is ASCII.
    const filler = Array.from({ length: 40 }, (_, i) => masked({ opcode: Opcode.Binary, payload: Buffer.alloc(12, i) }, 0x11223344));
    const first = masked({ opcode: Opcode.Text, fin: false, payload: Buffer.from([0x61, 0x62, 0xe2, 0x82]) }, 0x55667788);
    const cont = masked({ opcode: Opcode.Continuation, payload: 'ascii continuation' }, 0x99aabbcc);
    const vector = frames(...filler, first, cont);
    const byByte = feed(makeParser('server'), byteChunks(vector));
    expect(byByte.at(-1)).toMatchObject({ type: 'fail', code: ErrorCode.InvalidUtf8, closeCode: 1007 });
    expect(feed(makeParser('server'), wholeChunks(vector))).toEqual(byByte);
  });

  it('takes an ASCII first fragment and a continuation that completes the text', () => {
    const filler = Array.from({ length: 40 }, (_, i) => masked({ opcode: Opcode.Binary, payload: Buffer.alloc(12, i) }, 0x11223344));
    const first = masked({ opcode: Opcode.Text, fin: false, payload: 'plain ascii start' }, 0x55667788);
    const cont = masked({ opcode: Opcode.Continuation, payload: ' and € after' }, 0x99aabbcc);
    const vector = frames(...filler, first, cont);
    const expected = [
      ...filler.map(({ maskKey: _k, ...s }) => frameEvent({ ...s, masked: true })),
      frameEvent({ opcode: Opcode.Text, fin: false, payload: 'plain ascii start', masked: true }),
      frameEvent({ opcode: Opcode.Continuation, payload: ' and € after', masked: true, messageOpcode: Opcode.Text }),
    ];
    expectChunkInvariant(vector, 'server', expected);
  });
});
