/**
 * Shared helpers for the protocol tests: hex vectors, a seeded PRNG, feeding a parser whole / one
 * byte at a time / at random splits, and `roundTrip` (bytes parse to a frame, the frame encodes
 * back to the same bytes).
 *
 * The parser takes ownership of what it is given and unmasks payloads in place, so every helper
 * feeds fresh copies (`Buffer.from(chunk)`) and never hands the same buffer over twice.
 */
import { expect } from 'vitest';
import {
  FrameParser,
  Opcode,
  ProtocolError,
  encodeFrame,
  type ErrorCode,
  type FrameParserOptions,
  type ParseEvent,
  type Role,
} from '../../src/protocol/index.js';
import { isUtf8Reference } from '../../src/protocol/utf8.js';

// ---------------------------------------------------------------------------------------------
// Hex

/** Bytes from hex, whitespace ignored: `hex('81 05 48 65')`. */
export function hex(s: string): Buffer {
  const clean = s.replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(clean)) throw new Error(`not hex: ${s}`);
  return Buffer.from(clean, 'hex');
}

/** Lower-case hex, bytes separated by spaces (readable in a diff). */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex').replace(/(..)(?!$)/g, '$1 ');
}

// ---------------------------------------------------------------------------------------------
// Seeded PRNG (mulberry32): the same seed gives the same inputs on every run and machine.

export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** A uint32. */
  u32(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 0x100000000) * n);
  }
  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  bool(): boolean {
    return (this.u32() & 1) === 1;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
  /**
   * Bytes biased toward UTF-8: mostly well-formed code points of every length, with boundary
   * lead bytes (E0, ED, F0, F4), lone continuation bytes, truncations and invalid leads mixed in,
   * so that both valid and subtly invalid strings come out often.
   */
  utf8ish(n: number): Buffer {
    const out: number[] = [];
    const cont = (): number => 0x80 | this.int(0x40);
    while (out.length < n) {
      const r = this.int(100);
      if (r < 30) out.push(this.int(0x80));
      else if (r < 45) out.push(this.range(0xc2, 0xdf), cont());
      else if (r < 60) out.push(this.range(0xe1, 0xef), cont(), cont());
      else if (r < 65) out.push(0xe0, this.range(0x80, 0xbf), cont()); // E0 80..9F is overlong
      else if (r < 70) out.push(0xed, this.range(0x80, 0xbf), cont()); // ED A0..BF is a surrogate
      else if (r < 78) out.push(this.range(0xf1, 0xf3), cont(), cont(), cont());
      else if (r < 82) out.push(0xf0, this.range(0x80, 0xbf), cont(), cont()); // F0 80..8F overlong
      else if (r < 86) out.push(0xf4, this.range(0x80, 0xbf), cont(), cont()); // F4 90.. > U+10FFFF
      else if (r < 90) out.push(cont()); // stray continuation
      else if (r < 93) out.push(this.pick([0xc0, 0xc1, 0xf5, 0xf8, 0xfe, 0xff])); // never valid
      else if (r < 97) out.push(this.range(0xc2, 0xf4)); // a lead byte, truncated
      else out.push(this.int(0x100));
    }
    return Buffer.from(out.slice(0, n));
  }
}

// ---------------------------------------------------------------------------------------------
// Parser options

/** Limits large enough not to matter unless a test sets them. */
export const NO_LIMIT = 1 << 30;

export function parserOptions(role: Role, overrides: Partial<FrameParserOptions> = {}): FrameParserOptions {
  return { role, maxFrameSize: NO_LIMIT, maxMessageSize: NO_LIMIT, allowRsv1: false, ...overrides };
}

export function makeParser(role: Role, overrides: Partial<FrameParserOptions> = {}): FrameParser {
  return new FrameParser(parserOptions(role, overrides));
}

// ---------------------------------------------------------------------------------------------
// Events as plain data, so that whole runs compare with toEqual and diff readably.

export interface FrameEvent {
  type: 'frame';
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  masked: boolean;
  /** The payload in hex (see `toHex`). */
  payload: string;
  messageOpcode: number;
  compressed: boolean;
}

export interface FailEvent {
  type: 'fail';
  errorClass: string;
  code: string;
  closeCode: number;
  message: string;
}

export type Event = FrameEvent | FailEvent;

export function describeEvent(e: ParseEvent): Event {
  if (e.type === 'fail') {
    return {
      type: 'fail',
      errorClass: e.error instanceof ProtocolError ? 'ProtocolError' : `not a ProtocolError: ${String(e.error)}`,
      code: e.error.code,
      closeCode: e.error.closeCode,
      message: e.error.message,
    };
  }
  const f = e.frame;
  return {
    type: 'frame',
    fin: f.fin,
    rsv1: f.rsv1,
    opcode: f.opcode,
    masked: f.masked,
    payload: toHex(f.payload),
    messageOpcode: f.messageOpcode,
    compressed: f.compressed,
  };
}

export interface FrameSpec {
  opcode: number;
  payload?: Uint8Array | string;
  fin?: boolean;
  rsv1?: boolean;
  masked?: boolean;
  /** Defaults to `opcode` for Text/Binary/control frames; give it for continuation frames. */
  messageOpcode?: number;
  compressed?: boolean;
}

function payloadBytes(p: Uint8Array | string | undefined): Buffer {
  if (p === undefined) return Buffer.alloc(0);
  return typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p);
}

/** The event a frame is expected to produce. A string payload is taken as UTF-8 text. */
export function frameEvent(spec: FrameSpec): FrameEvent {
  return {
    type: 'frame',
    fin: spec.fin ?? true,
    rsv1: spec.rsv1 ?? false,
    opcode: spec.opcode,
    masked: spec.masked ?? false,
    payload: toHex(payloadBytes(spec.payload)),
    messageOpcode: spec.messageOpcode ?? spec.opcode,
    compressed: spec.compressed ?? false,
  };
}

/** The event a failure is expected to produce: always a ProtocolError. */
export function failEvent(code: ErrorCode, closeCode: number, message: string): FailEvent {
  return { type: 'fail', errorClass: 'ProtocolError', code, closeCode, message };
}

// ---------------------------------------------------------------------------------------------
// Feeding

/** Pull every event the parser has ready; stops at the first failure. Returns true if it failed. */
export function drain(parser: FrameParser, out: Event[]): boolean {
  for (;;) {
    const e = parser.next();
    if (e === undefined) return false;
    out.push(describeEvent(e));
    if (e.type === 'fail') return true;
  }
}

/**
 * Push each chunk (a fresh copy of it) and drain after each push. Stops at the first failure, and
 * then checks the failure is sticky: later calls return the same error and input is ignored.
 */
export function feed(parser: FrameParser, chunks: readonly Uint8Array[]): Event[] {
  const events: Event[] = [];
  for (const chunk of chunks) {
    parser.push(Buffer.from(chunk));
    if (drain(parser, events)) {
      const failure = events[events.length - 1];
      parser.push(Buffer.from([0x81, 0x00]));
      const again = parser.next();
      expect(again && describeEvent(again), 'a failed parser fails again').toEqual(failure);
      expect(parser.buffered, 'a failed parser holds no bytes').toBe(0);
      break;
    }
  }
  return events;
}

export function wholeChunks(v: Uint8Array): Uint8Array[] {
  return [v];
}

export function byteChunks(v: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < v.length; i++) out.push(v.subarray(i, i + 1));
  return out;
}

/** Cut `v` at up to `maxCuts` seeded random points (empty chunks included now and then). */
export function randomChunks(v: Uint8Array, rng: Rng, maxCuts = 8): Uint8Array[] {
  const cuts = new Set<number>();
  const n = rng.int(maxCuts + 1);
  for (let i = 0; i < n && v.length > 1; i++) cuts.add(rng.range(1, v.length - 1));
  const points = [0, ...[...cuts].sort((a, b) => a - b), v.length];
  const out: Uint8Array[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    out.push(v.subarray(points[i], points[i + 1]));
    if (rng.int(8) === 0) out.push(new Uint8Array(0));
  }
  return out;
}

/** Parse a vector fed whole with a new parser. */
export function parse(vector: Uint8Array, role: Role, overrides: Partial<FrameParserOptions> = {}): Event[] {
  return feed(makeParser(role, overrides), [vector]);
}

/** Seeds used for random splits: fixed, so a failure names the seed that reproduces it. */
export const SPLIT_SEEDS = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233];

/**
 * Chunk invariance: the vector fed whole, one byte at a time and at seeded random splits gives
 * exactly `expected` every time.
 */
export function expectChunkInvariant(
  vector: Uint8Array,
  role: Role,
  expected: readonly Event[],
  overrides: Partial<FrameParserOptions> = {},
): void {
  expect(feed(makeParser(role, overrides), wholeChunks(vector)), 'fed whole').toEqual(expected);
  expect(feed(makeParser(role, overrides), byteChunks(vector)), 'fed one byte at a time').toEqual(expected);
  for (const seed of SPLIT_SEEDS) {
    const chunks = randomChunks(vector, new Rng(seed));
    expect(feed(makeParser(role, overrides), chunks), `fed at random splits, seed ${seed}`).toEqual(expected);
  }
}

// ---------------------------------------------------------------------------------------------
// Golden vectors both ways

export interface RoundTripOptions {
  /** The key the frame is masked with; undefined for an unmasked frame. */
  maskKey?: number | undefined;
  /** Parser role; by default the role that accepts the vector (server for masked frames). */
  role?: Role;
}

/**
 * `bytes` parse (whole, byte by byte, at random splits) to exactly one frame equal to `frame`, and
 * `frame` encodes with `maskKey` back to exactly `bytes`.
 */
export function roundTrip(bytes: Uint8Array, frame: FrameSpec, options: RoundTripOptions = {}): void {
  const masked = options.maskKey !== undefined;
  const role: Role = options.role ?? (masked ? 'server' : 'client');
  const expected = frameEvent({ ...frame, masked });
  expectChunkInvariant(bytes, role, [expected]);
  const payload = payloadBytes(frame.payload);
  const before = Buffer.from(payload);
  const encoded = encodeFrame(frame.opcode, payload, {
    fin: frame.fin ?? true,
    rsv1: frame.rsv1 ?? false,
    ...(masked ? { maskKey: options.maskKey } : {}),
  });
  expect(toHex(encoded), 'encodes to the same bytes').toBe(toHex(bytes));
  expect(toHex(payload), 'encoding leaves the payload untouched').toBe(toHex(before));
}

/** Encode a sequence of frames into one vector (the bytes of a conversation). */
export function frames(...specs: Array<FrameSpec & { maskKey?: number }>): Buffer {
  return Buffer.concat(
    specs.map((s) =>
      encodeFrame(s.opcode, payloadBytes(s.payload), {
        fin: s.fin ?? true,
        rsv1: s.rsv1 ?? false,
        ...(s.maskKey !== undefined ? { maskKey: s.maskKey } : {}),
      }),
    ),
  );
}

/** A mask key used where any fixed key will do (RFC 6455 §5.7's example key). */
export const KEY = 0x37fa213d;

export { Opcode };

// ---------------------------------------------------------------------------------------------
// The UTF-8 byte sequences of the Autobahn TestSuite, cases 6.x (Markus Kuhn's stress test).
//
// kind: 'valid'; 'invalid' (some byte can never continue what came before: fails on that byte);
// 'truncated' (every byte so far could start valid UTF-8: fails only when the message ends).

export type Utf8Kind = 'valid' | 'invalid' | 'truncated';
export interface Utf8Case {
  name: string;
  bytes: Buffer;
  kind: Utf8Kind;
}

const KOSME = 'ce ba e1 bd b9 cf 83 ce bc ce b5'; // "κόσμε"

function kosmePrefixes(): Utf8Case[] {
  const all = hex(KOSME);
  // Code point boundaries of κόσμε: after 2, 5, 7, 9, 11 bytes.
  const ends = new Set([2, 5, 7, 9, 11]);
  const out: Utf8Case[] = [];
  for (let n = 1; n <= all.length; n++) {
    out.push({ name: `6.6.${n} κόσμε cut after ${n} bytes`, bytes: all.subarray(0, n), kind: ends.has(n) ? 'valid' : 'truncated' });
  }
  return out;
}

function c(name: string, hexBytes: string, kind: Utf8Kind): Utf8Case {
  return { name, bytes: hex(hexBytes), kind };
}

function everyContinuationByte(): string {
  let s = '';
  for (let b = 0x80; b <= 0xbf; b++) s += b.toString(16);
  return s;
}

function lonelyStarts(lo: number, hi: number): string {
  let s = '';
  for (let b = lo; b <= hi; b++) s += `${b.toString(16)} 20 `;
  return s;
}

export const AUTOBAHN_UTF8: readonly Utf8Case[] = [
  { name: '6.2.1 Hello-µ@ßöäüàá-UTF-8!!', bytes: Buffer.from('Hello-µ@ßöäüàá-UTF-8!!'), kind: 'valid' },
  c('6.3.1 κόσμε with ED A0 80 (a surrogate) and -edited', `${KOSME} ed a0 80 65 64 69 74 65 64`, 'invalid'),
  c('6.5.1 κόσμε', KOSME, 'valid'),
  ...kosmePrefixes(),
  c('6.7.1 first 1-byte sequence U+0000', '00', 'valid'),
  c('6.7.2 first 2-byte sequence U+0080', 'c2 80', 'valid'),
  c('6.7.3 first 3-byte sequence U+0800', 'e0 a0 80', 'valid'),
  c('6.7.4 first 4-byte sequence U+10000', 'f0 90 80 80', 'valid'),
  c('6.8.1 first 5-byte sequence', 'f8 88 80 80 80', 'invalid'),
  c('6.8.2 first 6-byte sequence', 'fc 84 80 80 80 80', 'invalid'),
  c('6.9.1 last 1-byte sequence U+007F', '7f', 'valid'),
  c('6.9.2 last 2-byte sequence U+07FF', 'df bf', 'valid'),
  c('6.9.3 last 3-byte sequence U+FFFF', 'ef bf bf', 'valid'),
  c('6.9.4 last 4-byte sequence U+10FFFF', 'f4 8f bf bf', 'valid'),
  c('6.10.1 last 4-byte lead F7', 'f7 bf bf bf', 'invalid'),
  c('6.10.2 last 5-byte sequence', 'fb bf bf bf bf', 'invalid'),
  c('6.10.3 last 6-byte sequence', 'fd bf bf bf bf bf', 'invalid'),
  c('6.11.1 U+D7FF', 'ed 9f bf', 'valid'),
  c('6.11.2 U+E000', 'ee 80 80', 'valid'),
  c('6.11.3 U+FFFD', 'ef bf bd', 'valid'),
  c('6.11.4 U+10FFFF', 'f4 8f bf bf', 'valid'),
  c('6.11.5 U+110000 (F4 90 80 80) is above U+10FFFF', 'f4 90 80 80', 'invalid'),
  c('6.12.1 first continuation byte 80', '80', 'invalid'),
  c('6.12.2 last continuation byte BF', 'bf', 'invalid'),
  c('6.12.3 2 continuation bytes', '80 bf', 'invalid'),
  c('6.12.4 3 continuation bytes', '80 bf 80', 'invalid'),
  c('6.12.5 4 continuation bytes', '80 bf 80 bf', 'invalid'),
  c('6.12.6 5 continuation bytes', '80 bf 80 bf 80', 'invalid'),
  c('6.12.7 6 continuation bytes', '80 bf 80 bf 80 bf', 'invalid'),
  c('6.12.8 7 continuation bytes', '80 bf 80 bf 80 bf 80', 'invalid'),
  c('6.12.9 all 64 continuation bytes', everyContinuationByte(), 'invalid'),
  c('6.13.1 lonely 2-byte leads C0..DF each followed by a space', lonelyStarts(0xc0, 0xdf), 'invalid'),
  c('6.13.2 lonely 3-byte leads E0..EF each followed by a space', lonelyStarts(0xe0, 0xef), 'invalid'),
  c('6.13.3 lonely 4-byte leads F0..F7 each followed by a space', lonelyStarts(0xf0, 0xf7), 'invalid'),
  c('6.13.4 lonely 5-byte leads F8..FB each followed by a space', lonelyStarts(0xf8, 0xfb), 'invalid'),
  c('6.13.5 lonely 6-byte leads FC..FD each followed by a space', lonelyStarts(0xfc, 0xfd), 'invalid'),
  c('6.14.1 2-byte sequence C0 with last byte missing', 'c0', 'invalid'),
  c('6.14.2 3-byte sequence E0 80 with last byte missing', 'e0 80', 'invalid'),
  c('6.14.3 4-byte sequence F0 80 80 with last byte missing', 'f0 80 80', 'invalid'),
  c('6.14.4 5-byte sequence with last byte missing', 'f8 80 80 80', 'invalid'),
  c('6.14.5 6-byte sequence with last byte missing', 'fc 80 80 80 80', 'invalid'),
  c('6.14.6 2-byte sequence DF with last byte missing', 'df', 'truncated'),
  c('6.14.7 3-byte sequence EF BF with last byte missing', 'ef bf', 'truncated'),
  c('6.14.8 4-byte sequence F7 BF BF with last byte missing', 'f7 bf bf', 'invalid'),
  c('6.14.9 5-byte sequence with last byte missing', 'fb bf bf bf', 'invalid'),
  c('6.14.10 6-byte sequence with last byte missing', 'fd bf bf bf bf', 'invalid'),
  c(
    '6.15.1 concatenation of the incomplete sequences',
    'c0 e0 80 f0 80 80 f8 80 80 80 fc 80 80 80 80 df ef bf f7 bf bf fb bf bf bf fd bf bf bf bf',
    'invalid',
  ),
  c('6.16.1 impossible byte FE', 'fe', 'invalid'),
  c('6.16.2 impossible byte FF', 'ff', 'invalid'),
  c('6.16.3 FE FE FF FF', 'fe fe ff ff', 'invalid'),
  c('6.17.1 overlong "/" in 2 bytes', 'c0 af', 'invalid'),
  c('6.17.2 overlong "/" in 3 bytes', 'e0 80 af', 'invalid'),
  c('6.17.3 overlong "/" in 4 bytes', 'f0 80 80 af', 'invalid'),
  c('6.17.4 overlong "/" in 5 bytes', 'f8 80 80 80 af', 'invalid'),
  c('6.17.5 overlong "/" in 6 bytes', 'fc 80 80 80 80 af', 'invalid'),
  c('6.18.1 maximum overlong 2-byte sequence', 'c1 bf', 'invalid'),
  c('6.18.2 maximum overlong 3-byte sequence', 'e0 9f bf', 'invalid'),
  c('6.18.3 maximum overlong 4-byte sequence', 'f0 8f bf bf', 'invalid'),
  c('6.18.4 maximum overlong 5-byte sequence', 'f8 87 bf bf bf', 'invalid'),
  c('6.18.5 maximum overlong 6-byte sequence', 'fc 83 bf bf bf bf', 'invalid'),
  c('6.19.1 overlong NUL in 2 bytes', 'c0 80', 'invalid'),
  c('6.19.2 overlong NUL in 3 bytes', 'e0 80 80', 'invalid'),
  c('6.19.3 overlong NUL in 4 bytes', 'f0 80 80 80', 'invalid'),
  c('6.19.4 overlong NUL in 5 bytes', 'f8 80 80 80 80', 'invalid'),
  c('6.19.5 overlong NUL in 6 bytes', 'fc 80 80 80 80 80', 'invalid'),
  c('6.20.1 single surrogate U+D800 (ED A0 80)', 'ed a0 80', 'invalid'),
  c('6.20.2 single surrogate U+DB7F', 'ed ad bf', 'invalid'),
  c('6.20.3 single surrogate U+DB80', 'ed ae 80', 'invalid'),
  c('6.20.4 single surrogate U+DBFF', 'ed af bf', 'invalid'),
  c('6.20.5 single surrogate U+DC00', 'ed b0 80', 'invalid'),
  c('6.20.6 single surrogate U+DF80', 'ed be 80', 'invalid'),
  c('6.20.7 single surrogate U+DFFF', 'ed bf bf', 'invalid'),
  c('6.21.1 surrogate pair U+D800 U+DC00', 'ed a0 80 ed b0 80', 'invalid'),
  c('6.21.2 surrogate pair U+D800 U+DFFF', 'ed a0 80 ed bf bf', 'invalid'),
  c('6.21.3 surrogate pair U+DB7F U+DC00', 'ed ad bf ed b0 80', 'invalid'),
  c('6.21.4 surrogate pair U+DB7F U+DFFF', 'ed ad bf ed bf bf', 'invalid'),
  c('6.21.5 surrogate pair U+DB80 U+DC00', 'ed ae 80 ed b0 80', 'invalid'),
  c('6.21.6 surrogate pair U+DB80 U+DFFF', 'ed ae 80 ed bf bf', 'invalid'),
  c('6.21.7 surrogate pair U+DBFF U+DC00', 'ed af bf ed b0 80', 'invalid'),
  c('6.21.8 surrogate pair U+DBFF U+DFFF', 'ed af bf ed bf bf', 'invalid'),
  c('6.22.1 noncharacter U+FFFE', 'ef bf be', 'valid'),
  c('6.22.2 noncharacter U+FFFF', 'ef bf bf', 'valid'),
  c('6.22.3 noncharacter U+1FFFE', 'f0 9f bf be', 'valid'),
  c('6.22.4 noncharacter U+1FFFF', 'f0 9f bf bf', 'valid'),
  c('6.22.33 noncharacter U+10FFFE', 'f4 8f bf be', 'valid'),
  c('6.22.34 noncharacter U+10FFFF', 'f4 8f bf bf', 'valid'),
  c('6.22.35 noncharacter U+FDD0', 'ef b7 90', 'valid'),
  c('6.23.1 U+FFFD replacement character', 'ef bf bd', 'valid'),
  c('6.23.2 byte order mark U+FEFF', 'ef bb bf', 'valid'),
];

/**
 * Could 0..3 more bytes make `prefix` valid UTF-8? Decided with the reference decoder alone (the
 * second byte's allowed range only changes at 80/8F/90/9F/A0/BF, so those are enough to try).
 */
export function canStartValidUtf8(prefix: Uint8Array): boolean {
  if (isUtf8Reference(prefix)) return true;
  for (const first of [0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf]) {
    for (let extra = 0; extra < 3; extra++) {
      const suffix = Buffer.alloc(1 + extra, 0x80);
      suffix[0] = first;
      if (isUtf8Reference(Buffer.concat([prefix, suffix]))) return true;
    }
  }
  return false;
}

/** Index of the first byte after which `bytes` can no longer be valid UTF-8, or -1 if none. */
export function firstInvalidByte(bytes: Uint8Array): number {
  // Binary search would do, but the inputs are short and the linear scan is obviously right.
  for (let n = 1; n <= bytes.length; n++) if (!canStartValidUtf8(bytes.subarray(0, n))) return n - 1;
  return -1;
}
