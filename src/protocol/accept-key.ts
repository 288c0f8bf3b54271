import { WEBSOCKET_GUID } from './constants.js';

/**
 * SHA-1 (FIPS 180-4 §6.1) of `key + GUID` for a key of 24 ASCII characters, the only length a
 * valid `Sec-WebSocket-Key` has (16 bytes in base64, RFC 6455 §4.1). Returns the digest in
 * base64: the value of `Sec-WebSocket-Accept` (§4.2.2).
 *
 * Why not node:crypto: the message is always 60 bytes, 24 of them from the key, so it is two
 * blocks of which the second never changes (padding and the length), and 9 of the 15 message
 * words of the first are the GUID. In a server that opens and closes connections at a high rate,
 * node:crypto's call (algorithm lookup, the binding, a cold OpenSSL) cost ~5 µs a handshake in the
 * profile; this is the plain arithmetic. SHA-1 serves here as a fixed transform, not for security
 * (RFC 6455 §10.3 uses it only so that a non-WebSocket server cannot answer by accident).
 *
 * `computeAcceptKey` checks this against node:crypto in the tests, for many keys.
 */

const W = new Int32Array(80);
/** Message words 6..14 of the first block: the GUID's 36 bytes. */
const GUID_WORDS = new Int32Array(9);
/** The second block's message schedule: all padding, so the same for every key. */
const W2 = new Int32Array(80);
const OUT = new Uint8Array(20);
const B64 = Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', (c) => c.charCodeAt(0));
/** The 28 characters of the answer; the last is always "=" (20 bytes are 2 short of a group). */
const CODES: number[] = new Array<number>(28).fill(0x3d);

{
  const g = Buffer.from(WEBSOCKET_GUID, 'latin1');
  for (let i = 0; i < 9; i++) GUID_WORDS[i] = g.readInt32BE(i * 4);
  // Block 2: 64 zero bytes except the message length in bits (60 * 8 = 480) in the last word.
  W2[15] = 480;
  for (let i = 16; i < 80; i++) {
    const x = W2[i - 3]! ^ W2[i - 8]! ^ W2[i - 14]! ^ W2[i - 16]!;
    W2[i] = (x << 1) | (x >>> 31);
  }
}

const H0 = 0x67452301 | 0;
const H1 = 0xefcdab89 | 0;
const H2 = 0x98badcfe | 0;
const H3 = 0x10325476 | 0;
const H4 = 0xc3d2e1f0 | 0;

/** The chaining value between and after the two blocks. */
const H = new Int32Array(5);

/** One SHA-1 compression of the schedule `w` into H (four loops of 20 rounds: no branch per round). */
function compress(w: Int32Array): void {
  let a = H[0]!;
  let b = H[1]!;
  let c = H[2]!;
  let d = H[3]!;
  let e = H[4]!;
  let t = 0;
  let i = 0;
  for (; i < 20; i++) {
    t = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + e + 0x5a827999 + w[i]!) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = t;
  }
  for (; i < 40; i++) {
    t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + 0x6ed9eba1 + w[i]!) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = t;
  }
  for (; i < 60; i++) {
    t = (((a << 5) | (a >>> 27)) + ((b & c) | (b & d) | (c & d)) + e - 0x70e44324 + w[i]!) | 0; // k = 0x8f1bbcdc
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = t;
  }
  for (; i < 80; i++) {
    t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e - 0x359d3e2a + w[i]!) | 0; // k = 0xca62c1d6
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = t;
  }
  H[0] = (H[0]! + a) | 0;
  H[1] = (H[1]! + b) | 0;
  H[2] = (H[2]! + c) | 0;
  H[3] = (H[3]! + d) | 0;
  H[4] = (H[4]! + e) | 0;
}

/**
 * base64(SHA-1(key + GUID)) into CODES, when `key` is 24 characters below U+0080; false otherwise.
 */
function digestOf24(key: string): boolean {
  if (key.length !== 24) return false;
  for (let i = 0; i < 6; i++) {
    const c0 = key.charCodeAt(i * 4);
    const c1 = key.charCodeAt(i * 4 + 1);
    const c2 = key.charCodeAt(i * 4 + 2);
    const c3 = key.charCodeAt(i * 4 + 3);
    if ((c0 | c1 | c2 | c3) > 0x7f) return false;
    W[i] = (c0 << 24) | (c1 << 16) | (c2 << 8) | c3;
  }
  for (let i = 0; i < 9; i++) W[6 + i] = GUID_WORDS[i]!;
  W[15] = 0x80000000 | 0; // the 0x80 that ends the message, then zeros
  for (let i = 16; i < 80; i++) {
    const x = W[i - 3]! ^ W[i - 8]! ^ W[i - 14]! ^ W[i - 16]!;
    W[i] = (x << 1) | (x >>> 31);
  }
  H[0] = H0;
  H[1] = H1;
  H[2] = H2;
  H[3] = H3;
  H[4] = H4;
  compress(W);
  compress(W2);
  for (let j = 0; j < 5; j++) {
    const h = H[j]!;
    OUT[j * 4] = h >>> 24;
    OUT[j * 4 + 1] = (h >>> 16) & 0xff;
    OUT[j * 4 + 2] = (h >>> 8) & 0xff;
    OUT[j * 4 + 3] = h & 0xff;
  }
  // base64 of the 20 bytes here too (RFC 4648 §4): 6 groups of 3 bytes, then 2 bytes and "=".
  // (Buffer's toString('base64') is a native call that showed on its own in the churn profile.)
  for (let g = 0; g < 6; g++) {
    const v = (OUT[g * 3]! << 16) | (OUT[g * 3 + 1]! << 8) | OUT[g * 3 + 2]!;
    CODES[g * 4] = B64[v >>> 18]!;
    CODES[g * 4 + 1] = B64[(v >>> 12) & 63]!;
    CODES[g * 4 + 2] = B64[(v >>> 6) & 63]!;
    CODES[g * 4 + 3] = B64[v & 63]!;
  }
  const v = (OUT[18]! << 16) | (OUT[19]! << 8);
  CODES[24] = B64[v >>> 18]!;
  CODES[25] = B64[(v >>> 12) & 63]!;
  CODES[26] = B64[(v >>> 6) & 63]!;
  return true;
}

/**
 * base64(SHA-1(key + GUID)) when `key` is 24 characters below U+0080; undefined otherwise (the
 * caller then uses node:crypto).
 */
export function acceptKeyOf24(key: string): string | undefined {
  if (!digestOf24(key)) return undefined;
  return String.fromCharCode.apply(null, CODES);
}

/** The length of `Sec-WebSocket-Accept`'s value: 28 ASCII characters. */
export const ACCEPT_KEY_LENGTH = 28;

/**
 * Write the 28 bytes of the accept value for `key` at `target[offset]` (no string made); false,
 * writing nothing, for a key that `acceptKeyOf24` declines.
 */
export function writeAcceptKey(key: string, target: Uint8Array, offset: number): boolean {
  if (!digestOf24(key)) return false;
  for (let i = 0; i < ACCEPT_KEY_LENGTH; i++) target[offset + i] = CODES[i]!;
  return true;
}
