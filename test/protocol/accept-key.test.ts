/**
 * The JavaScript SHA-1 behind Sec-WebSocket-Accept (src/protocol/accept-key.ts) must agree with
 * node:crypto for every key it takes, and hand every other key back to node:crypto.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { acceptKeyOf24, writeAcceptKey } from '../../src/protocol/accept-key.js';
import { buildAcceptResponse, buildPlainAcceptResponse, computeAcceptKey } from '../../src/protocol/handshake.js';
import { WEBSOCKET_GUID } from '../../src/protocol/constants.js';

const reference = (key: string): string => createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');

describe('acceptKeyOf24', () => {
  it('gives the RFC 6455 §1.3 example', () => {
    expect(acceptKeyOf24('dGhlIHNhbXBsZSBub25jZQ==')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  it('agrees with node:crypto for 20,000 random keys', () => {
    let mismatches = 0;
    for (let i = 0; i < 20_000; i++) {
      const key = randomBytes(16).toString('base64');
      if (acceptKeyOf24(key) !== reference(key)) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  it('agrees with node:crypto for any 24 ASCII characters (every byte value 0..127 in every position)', () => {
    for (let pos = 0; pos < 24; pos++) {
      for (let c = 0; c < 128; c++) {
        const chars = Array.from({ length: 24 }, (_, i) => String.fromCharCode(0x41 + ((i * 7) % 26)));
        chars[pos] = String.fromCharCode(c);
        const key = chars.join('');
        expect(acceptKeyOf24(key)).toBe(reference(key));
      }
    }
  });

  it('declines other lengths and non-ASCII keys, which computeAcceptKey hashes with node:crypto', () => {
    for (const key of ['', 'short', 'dGhlIHNhbXBsZSBub25jZQ==x', 'dGhlIHNhbXBsZSBub25jZQ=é', 'dGhlIHNhbXBsZSBub25jZQ=\u20ac']) {
      expect(acceptKeyOf24(key)).toBeUndefined();
      expect(computeAcceptKey(key)).toBe(reference(key));
    }
  });
});

describe('buildPlainAcceptResponse', () => {
  it('is byte for byte buildAcceptResponse({ key }) for random keys, and declines what acceptKeyOf24 declines', () => {
    for (let i = 0; i < 2000; i++) {
      const key = randomBytes(16).toString('base64');
      expect(buildPlainAcceptResponse(key)!.toString('latin1')).toBe(buildAcceptResponse({ key }));
    }
    expect(buildPlainAcceptResponse('dGhlIHNhbXBsZSBub25jZQ==')!.toString('latin1')).toBe(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
    );
    expect(buildPlainAcceptResponse('short')).toBeUndefined();
  });

  it('writeAcceptKey writes the 28 bytes of acceptKeyOf24 and nothing else', () => {
    const key = randomBytes(16).toString('base64');
    const target = Buffer.alloc(40, 0x2a);
    expect(writeAcceptKey(key, target, 6)).toBe(true);
    expect(target.toString('latin1', 6, 34)).toBe(acceptKeyOf24(key));
    expect(target.subarray(0, 6).every((b) => b === 0x2a) && target.subarray(34).every((b) => b === 0x2a)).toBe(true);
    expect(writeAcceptKey('x', target, 0)).toBe(false);
  });
});
