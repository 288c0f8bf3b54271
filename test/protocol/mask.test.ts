/** Masking (RFC 6455 §5.3): the word-at-a-time `applyMask` beside its byte-by-byte twin. */
import { describe, expect, it } from 'vitest';
import {
  FixedMaskKey,
  RandomMaskKeys,
  applyMask,
  readMaskKey,
} from '../../src/protocol/index.js';
import { applyMaskNaive, defaultMaskKeys } from '../../src/protocol/mask.js';
import { KEY, Rng, hex, toHex } from './helpers.js';

describe('RFC 6455 §5.3 client-to-server masking', () => {
  it('octet i of the payload is XORed with octet i mod 4 of the key (the §5.7 "Hello" example)', () => {
    const payload = Buffer.from('Hello');
    applyMask(payload, KEY);
    expect(toHex(payload)).toBe('7f 9f 4d 51 58');
  });

  it('masking twice with the same key restores the payload (unmasking is the same operation)', () => {
    const rng = new Rng(7);
    for (let n = 0; n < 80; n++) {
      const original = rng.bytes(n);
      const buf = Buffer.from(original);
      const key = rng.u32();
      applyMask(buf, key);
      applyMask(buf, key);
      expect(toHex(buf)).toBe(toHex(original));
    }
  });

  it('a key of 0 leaves the payload as it is', () => {
    const buf = Buffer.from('unchanged by a zero key');
    applyMask(buf, 0);
    expect(buf.toString()).toBe('unchanged by a zero key');
  });

  it('the key is read big-endian: its first header byte masks payload octet 0', () => {
    expect(readMaskKey(hex('37 fa 21 3d'), 0)).toBe(0x37fa213d);
    expect(readMaskKey(hex('00 ff ff ff ff 01'), 1)).toBe(0xffffffff);
    const buf = Buffer.alloc(4);
    applyMask(buf, 0x01020304);
    expect(toHex(buf)).toBe('01 02 03 04');
  });
});

describe('applyMask matches applyMaskNaive', () => {
  it('on seeded random lengths 0..300, unaligned byteOffsets, sub-ranges and mask offsets', () => {
    const rng = new Rng(0x5eed);
    for (let trial = 0; trial < 3000; trial++) {
      const len = rng.int(301);
      const byteOffset = rng.int(8); // odd offsets too: the word path must align itself
      const backing = rng.bytes(len + byteOffset + 8);
      const start = rng.bool() ? 0 : rng.int(len + 1);
      const end = rng.bool() ? len : rng.range(start, len);
      const maskOffset = rng.int(8);
      const key = rng.int(10) === 0 ? 0 : rng.u32();

      const fast = Buffer.from(backing).subarray(byteOffset, byteOffset + len);
      const naive = Buffer.from(backing).subarray(byteOffset, byteOffset + len);
      applyMask(fast, key, start, end, maskOffset);
      applyMaskNaive(naive, key, start, end, maskOffset);
      expect(toHex(fast), `len ${len} offset ${byteOffset} [${start},${end}) maskOffset ${maskOffset} key ${key}`).toBe(
        toHex(naive),
      );
    }
  });

  it('leaves every byte outside [start, end) untouched, including the bytes around a subarray', () => {
    const rng = new Rng(11);
    for (let trial = 0; trial < 500; trial++) {
      const backing = rng.bytes(340);
      const copy = Buffer.from(backing);
      const byteOffset = rng.range(1, 9);
      const view = backing.subarray(byteOffset, byteOffset + rng.int(301));
      const start = rng.int(view.length + 1);
      const end = rng.range(start, view.length);
      applyMask(view, rng.u32() | 1, start, end, rng.int(4));
      const from = byteOffset + start;
      const to = byteOffset + end;
      expect(toHex(backing.subarray(0, from))).toBe(toHex(copy.subarray(0, from)));
      expect(toHex(backing.subarray(to))).toBe(toHex(copy.subarray(to)));
    }
  });

  it('unmasking a payload piece by piece, with maskOffset set to each piece position, equals unmasking it whole', () => {
    const rng = new Rng(99);
    for (let trial = 0; trial < 300; trial++) {
      const payload = rng.bytes(rng.int(301));
      const key = rng.u32();
      const whole = Buffer.from(payload);
      applyMaskNaive(whole, key);
      const pieces = Buffer.from(payload);
      let pos = 0;
      while (pos < pieces.length) {
        const n = rng.range(1, 40);
        const end = Math.min(pieces.length, pos + n);
        // Each piece as its own unaligned view, as the parser sees a chunk.
        const piece = pieces.subarray(pos, end);
        applyMask(piece, key, 0, piece.length, pos);
        pos = end;
      }
      expect(toHex(pieces)).toBe(toHex(whole));
    }
  });
});

describe('mask key sources', () => {
  it('FixedMaskKey returns the key it was given, as a number or as 4 header bytes', () => {
    expect(new FixedMaskKey(0x37fa213d).next()).toBe(0x37fa213d);
    expect(new FixedMaskKey(-1).next()).toBe(0xffffffff);
    expect(new FixedMaskKey(hex('37 fa 21 3d')).next()).toBe(0x37fa213d);
  });

  it('RandomMaskKeys gives uint32 keys, never 0, and keeps going past a refill of its pool', () => {
    const keys = new RandomMaskKeys();
    const seen = new Set<number>();
    for (let i = 0; i < 3000; i++) {
      const k = keys.next();
      expect(Number.isInteger(k) && k > 0 && k <= 0xffffffff).toBe(true);
      seen.add(k);
    }
    // 3000 draws from 2^32: a repeat is possible but more than a handful means a broken source.
    expect(seen.size).toBeGreaterThan(2990);
    expect(defaultMaskKeys.next()).toBeGreaterThan(0);
  });
});
