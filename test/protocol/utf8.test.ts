/**
 * UTF-8 (RFC 6455 §8.1, RFC 3629): `isUtf8` (native), `Utf8Validator` (incremental) and
 * `isUtf8Reference` (the WHATWG decoder) must agree on every input.
 */
import { describe, expect, it } from 'vitest';
import { Utf8Validator } from '../../src/protocol/index.js';
import { isUtf8, isUtf8Reference } from '../../src/protocol/utf8.js';
import { AUTOBAHN_UTF8, Rng, byteChunks, firstInvalidByte, randomChunks, toHex } from './helpers.js';

/** Feed the validator piece by piece; false as soon as a piece is refused, else !incomplete. */
function validateInPieces(pieces: readonly Uint8Array[]): boolean {
  const v = new Utf8Validator();
  for (const p of pieces) if (!v.push(p)) return false;
  return !v.incomplete;
}

/** Index of the first piece the validator refuses, or -1. */
function firstRefusedPiece(pieces: readonly Uint8Array[]): number {
  const v = new Utf8Validator();
  for (let i = 0; i < pieces.length; i++) if (!v.push(pieces[i]!)) return i;
  return -1;
}

describe('RFC 6455 §8.1 the Autobahn 6.x byte sequences', () => {
  for (const { name, bytes, kind } of AUTOBAHN_UTF8) {
    const valid = kind === 'valid';
    it(`${name} (${toHex(bytes)}) is ${kind} for the reference, isUtf8 and the validator at any split`, () => {
      expect(isUtf8Reference(bytes), 'reference').toBe(valid);
      expect(isUtf8(bytes), 'isUtf8').toBe(valid);
      expect(validateInPieces([bytes]), 'validator, whole').toBe(valid);
      expect(validateInPieces(byteChunks(bytes)), 'validator, byte by byte').toBe(valid);
      for (let seed = 1; seed <= 8; seed++) {
        expect(validateInPieces(randomChunks(bytes, new Rng(seed))), `validator, seed ${seed}`).toBe(valid);
      }
    });
  }

  it('a truncated sequence is accepted piece by piece but leaves the validator incomplete', () => {
    for (const { bytes, kind } of AUTOBAHN_UTF8.filter((k) => k.kind === 'truncated')) {
      const v = new Utf8Validator();
      expect(v.push(bytes), toHex(bytes)).toBe(true);
      expect(v.incomplete, toHex(bytes)).toBe(true);
      expect(kind).toBe('truncated');
    }
  });

  it('an invalid sequence is refused on the byte that breaks it, before anything after it is seen', () => {
    for (const { bytes, kind } of AUTOBAHN_UTF8.filter((k) => k.kind === 'invalid')) {
      // The first bad byte: where the prefix stops being the start of any valid UTF-8 string.
      const firstBad = firstInvalidByte(bytes);
      expect(firstBad).toBeGreaterThanOrEqual(0);
      expect(firstRefusedPiece(byteChunks(bytes)), `${toHex(bytes)} refused at byte ${firstBad}`).toBe(firstBad);
      expect(kind).toBe('invalid');
    }
  });
});

describe('Utf8Validator', () => {
  it('accepts a code point split across pieces at every position', () => {
    const text = Buffer.from('aß€😀zκόσμε\u{10FFFF}');
    for (let cut = 0; cut <= text.length; cut++) {
      for (let cut2 = cut; cut2 <= text.length; cut2++) {
        expect(validateInPieces([text.subarray(0, cut), text.subarray(cut, cut2), text.subarray(cut2)]), `${cut}/${cut2}`).toBe(true);
      }
    }
  });

  it('is incomplete while a sequence is open, and complete when it closes', () => {
    const v = new Utf8Validator();
    expect(v.push(Buffer.from([0xf0, 0x9f]))).toBe(true);
    expect(v.incomplete).toBe(true);
    expect(v.push(Buffer.from([0x98]))).toBe(true);
    expect(v.incomplete).toBe(true);
    expect(v.push(Buffer.from([0x80]))).toBe(true);
    expect(v.incomplete).toBe(false);
  });

  it('checks only buf[start, end)', () => {
    const v = new Utf8Validator();
    const buf = Buffer.from([0xff, 0x61, 0xc3, 0xa9, 0xff]);
    expect(v.push(buf, 1, 4)).toBe(true);
    expect(v.incomplete).toBe(false);
    expect(v.push(buf, 4, 4)).toBe(true);
  });

  it('reset() forgets an open sequence', () => {
    const v = new Utf8Validator();
    expect(v.push(Buffer.from([0xe2, 0x82]))).toBe(true);
    v.reset();
    expect(v.incomplete).toBe(false);
    expect(v.push(Buffer.from('plain'))).toBe(true);
  });

  it('refuses in the second piece a continuation byte outside the range its lead allows (E0 A0..BF, ED 80..9F, F0 90..BF, F4 80..8F)', () => {
    for (const [lead, bad] of [
      [0xe0, 0x9f],
      [0xed, 0xa0],
      [0xf0, 0x8f],
      [0xf4, 0x90],
    ] as const) {
      const v = new Utf8Validator();
      expect(v.push(Buffer.from([0x61, lead]))).toBe(true);
      expect(v.push(Buffer.from([bad, 0x80, 0x80]))).toBe(false);
    }
  });
});

describe('isUtf8, Utf8Validator and isUtf8Reference agree', () => {
  it('on seeded random byte strings biased toward UTF-8, fed whole, byte by byte and at random splits', () => {
    const rng = new Rng(0xc0ffee);
    let valid = 0;
    for (let trial = 0; trial < 4000; trial++) {
      const bytes = rng.utf8ish(rng.int(trial < 2000 ? 12 : 200));
      const expected = isUtf8Reference(bytes);
      if (expected) valid++;
      const label = toHex(bytes);
      expect(isUtf8(bytes), label).toBe(expected);
      expect(validateInPieces([bytes]), label).toBe(expected);
      expect(validateInPieces(randomChunks(bytes, rng, 6)), label).toBe(expected);
      if (bytes.length <= 12) expect(validateInPieces(byteChunks(bytes)), label).toBe(expected);
    }
    // The generator must exercise both outcomes, or the comparison proves little.
    expect(valid).toBeGreaterThan(400);
    expect(4000 - valid).toBeGreaterThan(400);
  });

  it('on every 1- and 2-byte string, and 3-byte strings from every lead byte with boundary continuations', () => {
    const one = Buffer.alloc(1);
    for (let a = 0; a < 256; a++) {
      one[0] = a;
      expect(validateInPieces([one]), toHex(one)).toBe(isUtf8Reference(one));
      expect(isUtf8(one)).toBe(isUtf8Reference(one));
    }
    const two = Buffer.alloc(2);
    for (let a = 0; a < 256; a++) {
      for (let b = 0; b < 256; b++) {
        two[0] = a;
        two[1] = b;
        const ref = isUtf8Reference(two);
        if (validateInPieces([two]) !== ref || validateInPieces(byteChunks(two)) !== ref || isUtf8(two) !== ref) {
          expect.fail(`disagreement on ${toHex(two)}`);
        }
      }
    }
    const three = Buffer.alloc(3);
    // Second and third bytes at every range boundary that some lead byte uses.
    const edges = [0x00, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf4, 0xff];
    for (let a = 0xc0; a < 0x100; a++) {
      for (const b of edges) {
        for (const d of edges) {
          three[0] = a;
          three[1] = b;
          three[2] = d;
          const ref = isUtf8Reference(three);
          if (validateInPieces([three]) !== ref || validateInPieces(byteChunks(three)) !== ref || isUtf8(three) !== ref) {
            expect.fail(`disagreement on ${toHex(three)}`);
          }
        }
      }
    }
  });
});
