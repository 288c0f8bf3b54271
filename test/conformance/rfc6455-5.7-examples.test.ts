/**
 * RFC 6455 §5.7 Examples: every example of the RFC, parsed from its bytes (whole, one byte at a
 * time, at random splits) and encoded back to the same bytes with the RFC's mask key.
 */
import { describe, expect, it } from 'vitest';
import { Opcode, encodeFrame } from '../../src/protocol/index.js';
import { KEY, expectChunkInvariant, frameEvent, hex, roundTrip, toHex } from '../protocol/helpers.js';

describe('RFC 6455 §5.7 examples, both ways', () => {
  it('a single-frame unmasked text message "Hello": 81 05 48 65 6c 6c 6f', () => {
    roundTrip(hex('81 05 48 65 6c 6c 6f'), { opcode: Opcode.Text, payload: 'Hello' });
  });

  it('a single-frame masked text message "Hello": 81 85 37 fa 21 3d 7f 9f 4d 51 58', () => {
    roundTrip(hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'), { opcode: Opcode.Text, payload: 'Hello' }, { maskKey: KEY });
  });

  it('a fragmented unmasked text message: "Hel" (01 03 48 65 6c) then "lo" (80 02 6c 6f)', () => {
    const first = hex('01 03 48 65 6c');
    const second = hex('80 02 6c 6f');
    expectChunkInvariant(Buffer.concat([first, second]), 'client', [
      frameEvent({ opcode: Opcode.Text, payload: 'Hel', fin: false }),
      frameEvent({ opcode: Opcode.Continuation, payload: 'lo', messageOpcode: Opcode.Text }),
    ]);
    expect(toHex(encodeFrame(Opcode.Text, Buffer.from('Hel'), { fin: false }))).toBe(toHex(first));
    expect(toHex(encodeFrame(Opcode.Continuation, Buffer.from('lo')))).toBe(toHex(second));
  });

  it('an unmasked Ping with body "Hello": 89 05 48 65 6c 6c 6f', () => {
    roundTrip(hex('89 05 48 65 6c 6c 6f'), { opcode: Opcode.Ping, payload: 'Hello' });
  });

  it('a masked Ping with body "Hello": 89 85 37 fa 21 3d 7f 9f 4d 51 58', () => {
    roundTrip(hex('89 85 37 fa 21 3d 7f 9f 4d 51 58'), { opcode: Opcode.Ping, payload: 'Hello' }, { maskKey: KEY });
  });

  it('the masked Pong answering it: 8a 85 37 fa 21 3d 7f 9f 4d 51 58', () => {
    roundTrip(hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58'), { opcode: Opcode.Pong, payload: 'Hello' }, { maskKey: KEY });
  });

  it('256 bytes of binary data in a single unmasked frame: 82 7e 01 00 + 256 bytes', () => {
    const payload = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    roundTrip(Buffer.concat([hex('82 7e 01 00'), payload]), { opcode: Opcode.Binary, payload });
  });

  it('64 KiB of binary data in a single unmasked frame: 82 7f 00 00 00 00 00 01 00 00 + 65536 bytes', () => {
    const payload = Buffer.alloc(65536);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    roundTrip(Buffer.concat([hex('82 7f 00 00 00 00 00 01 00 00'), payload]), { opcode: Opcode.Binary, payload });
  });

  it('the same 256-byte and 64 KiB frames masked with the §5.7 key, as a client sends them', () => {
    for (const n of [256, 65536]) {
      const payload = Buffer.alloc(n, 0x5a);
      const header = n === 256 ? hex('82 fe 01 00 37 fa 21 3d') : hex('82 ff 00 00 00 00 00 01 00 00 37 fa 21 3d');
      const masked = Buffer.from(payload);
      for (let i = 0; i < n; i++) masked[i] ^= [0x37, 0xfa, 0x21, 0x3d][i & 3]!;
      roundTrip(Buffer.concat([header, masked]), { opcode: Opcode.Binary, payload }, { maskKey: KEY });
    }
  });
});
