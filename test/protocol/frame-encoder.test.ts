/** Frame encoding (RFC 6455 §5.2): header sizes, minimal lengths, masking, and writes into a slab. */
import { describe, expect, it } from 'vitest';
import { Opcode, encodeFrame, frameHeaderSize, writeFrame, writeFrameHeader } from '../../src/protocol/index.js';
import { applyMaskNaive } from '../../src/protocol/mask.js';
import { copySmall } from '../../src/protocol/frame-encoder.js';
import { KEY, Rng, expectChunkInvariant, feed, frameEvent, hex, makeParser, randomChunks, toHex } from './helpers.js';

function header(opcode: number, fin: boolean, rsv1: boolean, length: number, maskKey?: number): string {
  const out = Buffer.alloc(14);
  const end = writeFrameHeader(out, 0, opcode, fin, rsv1, length, maskKey);
  expect(end, 'returns the offset past the header').toBe(frameHeaderSize(length, maskKey !== undefined));
  return toHex(out.subarray(0, end));
}

describe('RFC 6455 §5.2 the header', () => {
  it('uses the minimal number of bytes for the length: 7 bits to 125, 16 bits to 65535, 64 bits above', () => {
    expect(header(Opcode.Binary, true, false, 0)).toBe('82 00');
    expect(header(Opcode.Binary, true, false, 125)).toBe('82 7d');
    expect(header(Opcode.Binary, true, false, 126)).toBe('82 7e 00 7e');
    expect(header(Opcode.Binary, true, false, 65535)).toBe('82 7e ff ff');
    expect(header(Opcode.Binary, true, false, 65536)).toBe('82 7f 00 00 00 00 00 01 00 00');
    expect(header(Opcode.Binary, true, false, 2 ** 32 - 1)).toBe('82 7f 00 00 00 00 ff ff ff ff');
    expect(header(Opcode.Binary, true, false, 2 ** 32)).toBe('82 7f 00 00 00 01 00 00 00 00');
    expect(header(Opcode.Binary, true, false, 2 ** 32 + 1)).toBe('82 7f 00 00 00 01 00 00 00 01');
    expect(header(Opcode.Binary, true, false, Number.MAX_SAFE_INTEGER)).toBe('82 7f 00 1f ff ff ff ff ff ff');
  });

  it('frameHeaderSize counts 2, 4 or 10 bytes, plus 4 for a mask key', () => {
    expect([0, 125, 126, 65535, 65536].map((n) => frameHeaderSize(n, false))).toEqual([2, 2, 4, 4, 10]);
    expect([0, 125, 126, 65535, 65536].map((n) => frameHeaderSize(n, true))).toEqual([6, 6, 8, 8, 14]);
  });

  it('sets FIN, RSV1 and the opcode in the first byte', () => {
    expect(header(Opcode.Text, false, false, 0)).toBe('01 00');
    expect(header(Opcode.Continuation, true, false, 0)).toBe('80 00');
    expect(header(Opcode.Text, true, true, 0)).toBe('c1 00');
    expect(header(Opcode.Close, true, false, 2)).toBe('88 02');
  });

  it('sets the MASK bit and writes the key big-endian after the length, for every length form', () => {
    expect(header(Opcode.Text, true, false, 5, KEY)).toBe('81 85 37 fa 21 3d');
    expect(header(Opcode.Text, true, false, 256, KEY)).toBe('81 fe 01 00 37 fa 21 3d');
    expect(header(Opcode.Text, true, false, 65536, KEY)).toBe('81 ff 00 00 00 00 00 01 00 00 37 fa 21 3d');
  });

  it('a mask key of 0 still makes a masked frame (MASK bit set, payload as it is)', () => {
    expect(toHex(encodeFrame(Opcode.Text, Buffer.from('hi'), { maskKey: 0 }))).toBe('81 82 00 00 00 00 68 69');
  });

  it('writes at the offset it is given and touches no byte before it', () => {
    const slab = Buffer.alloc(20, 0xee);
    const end = writeFrameHeader(slab, 3, Opcode.Ping, true, false, 1, undefined);
    expect(end).toBe(5);
    expect(toHex(slab.subarray(0, 6))).toBe('ee ee ee 89 01 ee');
  });
});

describe('writeFrame and encodeFrame', () => {
  it('writeFrame into a slab at any offset gives the same bytes as encodeFrame', () => {
    const rng = new Rng(31);
    for (let trial = 0; trial < 200; trial++) {
      const payload = rng.bytes(rng.pick([0, 1, 3, 125, 126, 300, 65536]));
      const key = rng.bool() ? rng.u32() : undefined;
      const offset = rng.int(9);
      const slab = Buffer.alloc(offset + 14 + payload.length);
      const end = writeFrame(slab, offset, Opcode.Binary, true, false, payload, key);
      const alone = encodeFrame(Opcode.Binary, payload, key === undefined ? {} : { maskKey: key });
      expect(end - offset).toBe(alone.length);
      expect(slab.subarray(offset, end).equals(alone)).toBe(true);
    }
  });

  it('copySmall copies every length (the unrolled short loop, its tail, and set() from 64) at any offset, from views too', () => {
    const rng = new Rng(37);
    for (let n = 0; n <= 72; n++) {
      for (let trial = 0; trial < 4; trial++) {
        const backing = rng.bytes(n + 8);
        const start = rng.int(8);
        const source = backing.subarray(start, start + n); // a view with a byteOffset
        const offset = rng.int(9);
        const target = Buffer.alloc(offset + n + 3, 0xee);
        copySmall(source, target, offset);
        expect(toHex(target.subarray(offset, offset + n)), `length ${n}`).toBe(toHex(source));
        expect(target.subarray(0, offset).every((b) => b === 0xee), 'nothing before the offset').toBe(true);
        expect(target.subarray(offset + n).every((b) => b === 0xee), 'nothing after the copy').toBe(true);
      }
    }
  });

  it('masks the payload copy with the key and leaves the source payload untouched', () => {
    const rng = new Rng(32);
    for (let trial = 0; trial < 100; trial++) {
      const payload = rng.bytes(rng.int(300));
      const source = Buffer.from(payload);
      const key = rng.u32();
      const frame = encodeFrame(Opcode.Binary, payload, { maskKey: key });
      expect(payload.equals(source)).toBe(true);
      const body = Buffer.from(frame.subarray(frameHeaderSize(payload.length, true)));
      applyMaskNaive(body, key);
      expect(body.equals(source)).toBe(true);
    }
  });

  it('defaults to FIN set, RSV1 clear, unmasked', () => {
    expect(toHex(encodeFrame(Opcode.Text, Buffer.from('Hello')))).toBe('81 05 48 65 6c 6c 6f');
    expect(toHex(encodeFrame(Opcode.Text, Buffer.from('Hel'), { fin: false }))).toBe('01 03 48 65 6c');
    expect(toHex(encodeFrame(Opcode.Binary, hex('00'), { rsv1: true }))).toBe('c2 01 00');
  });
});

describe('encoded headers parse back (random headers round-trip through the parser)', () => {
  it('random opcode, FIN, RSV1, length and mask key: the parser reads back exactly what was encoded', () => {
    const rng = new Rng(77);
    for (let trial = 0; trial < 120; trial++) {
      const masked = rng.bool();
      const control = rng.int(3) === 0;
      const opcode = control ? rng.pick([Opcode.Ping, Opcode.Pong]) : rng.pick([Opcode.Text, Opcode.Binary]);
      const length = control ? rng.int(126) : rng.pick([0, 1, 125, 126, 127, 1000, 65535, 65536, 70000, rng.int(2000)]);
      const rsv1 = !control && rng.bool();
      const payload = opcode === Opcode.Text ? Buffer.alloc(length, 0x61) : rng.bytes(length);
      const key = masked ? rng.u32() : undefined;
      const bytes = encodeFrame(opcode, payload, { rsv1, ...(key === undefined ? {} : { maskKey: key }) });
      const expected = frameEvent({ opcode, payload, rsv1, masked, compressed: rsv1 });
      const role = masked ? 'server' : 'client';
      if (length > 2000) {
        // Long payloads: whole and at random splits only (byte-by-byte costs seconds and adds nothing).
        expect(feed(makeParser(role, { allowRsv1: true }), [bytes])).toEqual([expected]);
        expect(feed(makeParser(role, { allowRsv1: true }), randomChunks(bytes, rng, 30))).toEqual([expected]);
      } else {
        expectChunkInvariant(bytes, role, [expected], { allowRsv1: true });
      }
    }
  });
});

