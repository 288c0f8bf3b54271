/** The envelope a message crosses Redis in (src/scale/redis-envelope.ts), byte by byte. */
import { describe, expect, it } from 'vitest';
import { decodeEnvelope, encodeEnvelope, isFromNode } from '../../src/scale/redis-envelope.js';

const NODE = Buffer.from('0102030405060708', 'hex');

describe('redis envelope', () => {
  it('lays out version, flags, origin, key and payload', () => {
    const bytes = encodeEnvelope(NODE, false, 'hé', false, 'k1');
    expect(bytes.toString('hex')).toBe('01' + '02' + '0102030405060708' + '0002' + '6b31' + '68c3a9');
    expect(encodeEnvelope(NODE, true, Buffer.from([0, 255]), true, undefined).toString('hex')).toBe('0105010203040506070800ff');
  });

  it('decodes what it encodes: binary bytes unchanged, text, keys, broadcast, empty payload', () => {
    const cases: Array<[boolean, string | Buffer, boolean, string | undefined]> = [
      [false, Buffer.from([0, 1, 2, 0xff, 0x80]), true, undefined],
      [false, 'plain text', false, 'price:ACME'],
      [true, 'to everyone', false, undefined],
      [false, '', false, ''],
      [false, Buffer.alloc(0), true, 'ключ'],
    ];
    for (const [broadcast, data, isBinary, key] of cases) {
      const env = decodeEnvelope(encodeEnvelope(NODE, broadcast, data, isBinary, key))!;
      expect(env).toBeDefined();
      expect([env.broadcast, env.isBinary, env.key, env.origin.equals(NODE)]).toEqual([broadcast, isBinary, key, true]);
      expect(env.payload.equals(Buffer.from(data))).toBe(true);
    }
  });

  it('tells our own messages from others without decoding', () => {
    const mine = encodeEnvelope(NODE, false, 'x', false, undefined);
    const theirs = encodeEnvelope(Buffer.from('0102030405060709', 'hex'), false, 'x', false, undefined);
    expect([isFromNode(mine, NODE), isFromNode(theirs, NODE), isFromNode(Buffer.from([1, 0]), NODE)]).toEqual([true, false, false]);
  });

  it('refuses what is not an envelope: other versions, unknown flags, truncated headers and keys', () => {
    const good = encodeEnvelope(NODE, false, 'abc', false, 'key');
    const badVersion = Buffer.from(good);
    badVersion[0] = 2;
    const badFlags = Buffer.from(good);
    badFlags[1] = 8;
    expect(decodeEnvelope(badVersion)).toBeUndefined();
    expect(decodeEnvelope(badFlags)).toBeUndefined();
    expect(decodeEnvelope(good.subarray(0, 9))).toBeUndefined();
    expect(decodeEnvelope(good.subarray(0, 11))).toBeUndefined(); // half a key length
    expect(decodeEnvelope(good.subarray(0, 13))).toBeUndefined(); // the key cut short
    expect(decodeEnvelope(Buffer.from('hello from someone else'))).toBeUndefined();
  });

  it('refuses a key longer than its u16 length field', () => {
    expect(() => encodeEnvelope(NODE, false, 'x', false, 'k'.repeat(0x10000))).toThrow(RangeError);
  });
});
