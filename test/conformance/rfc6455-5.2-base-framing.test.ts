/**
 * RFC 6455 §5.2 Base Framing Protocol: RSV bits, opcodes, and the 7-bit, 16-bit and 64-bit
 * payload length forms. Every rule is decided at the header.
 */
import { describe, it } from 'vitest';
import { CloseCode, ErrorCode, Opcode } from '../../src/protocol/index.js';
import { KEY, expectChunkInvariant, failEvent, frameEvent, frames, hex } from '../protocol/helpers.js';

const RSV1 = failEvent(ErrorCode.UnexpectedRsv, CloseCode.ProtocolError, 'RSV1 must be clear');
const RSV23 = failEvent(ErrorCode.UnexpectedRsv, CloseCode.ProtocolError, 'RSV2 and RSV3 must be clear');
const invalidOpcode = (n: number) => failEvent(ErrorCode.InvalidOpcode, CloseCode.ProtocolError, `invalid opcode ${n}`);

describe('RFC 6455 §5.2 RSV1, RSV2, RSV3: "MUST be 0 unless an extension is negotiated that defines meanings"', () => {
  it('RSV1 without a negotiated extension fails with 1002, for data and control frames alike', () => {
    for (const opcode of [Opcode.Text, Opcode.Binary, Opcode.Ping, Opcode.Pong, Opcode.Close]) {
      expectChunkInvariant(hex(`${(0xc0 | opcode).toString(16)} 00`), 'client', [RSV1]);
    }
  });

  it('RSV2 fails with 1002, even with an extension that defines RSV1', () => {
    for (const allowRsv1 of [false, true]) expectChunkInvariant(hex('a1 00'), 'client', [RSV23], { allowRsv1 });
  });

  it('RSV3 fails with 1002, even with an extension that defines RSV1', () => {
    for (const allowRsv1 of [false, true]) expectChunkInvariant(hex('91 00'), 'client', [RSV23], { allowRsv1 });
  });

  it('RSV2 and RSV3 together fail with 1002', () => {
    expectChunkInvariant(hex('b2 00'), 'client', [RSV23]);
  });

  it('RFC 7692 §6: with permessage-deflate, RSV1 on the first frame marks the message compressed', () => {
    const bytes = Buffer.concat([hex('41 01 aa'), hex('80 01 bb')]);
    expectChunkInvariant(bytes, 'client', [
      frameEvent({ opcode: Opcode.Text, payload: hex('aa'), fin: false, rsv1: true, compressed: true }),
      frameEvent({ opcode: Opcode.Continuation, payload: hex('bb'), messageOpcode: Opcode.Text, compressed: true }),
    ], { allowRsv1: true });
    expectChunkInvariant(hex('c2 01 cc'), 'client', [frameEvent({ opcode: Opcode.Binary, payload: hex('cc'), rsv1: true, compressed: true })], {
      allowRsv1: true,
    });
  });

  it('RFC 7692 §6.1: RSV1 on a continuation frame fails with 1002, even with permessage-deflate', () => {
    expectChunkInvariant(Buffer.concat([hex('41 01 aa'), hex('c0 01 bb')]), 'client', [
      frameEvent({ opcode: Opcode.Text, payload: hex('aa'), fin: false, rsv1: true, compressed: true }),
      RSV1,
    ], { allowRsv1: true });
  });

  it('RFC 7692 §6: RSV1 on a control frame fails with 1002, even with permessage-deflate', () => {
    for (const opcode of [Opcode.Ping, Opcode.Pong, Opcode.Close]) {
      expectChunkInvariant(hex(`${(0xc0 | opcode).toString(16)} 00`), 'client', [RSV1], { allowRsv1: true });
    }
  });

  it('RSV bits are checked at the header: the first two bytes are enough to fail', () => {
    expectChunkInvariant(hex('e2 7f'), 'client', [RSV23]);
    expectChunkInvariant(hex('c2 ff'), 'server', [RSV1]);
  });
});

describe('RFC 6455 §5.2 opcodes', () => {
  it('the defined opcodes 0x0, 0x1, 0x2, 0x8, 0x9, 0xA are accepted', () => {
    const bytes = Buffer.concat([hex('01 01 61'), hex('80 01 62'), hex('82 00'), hex('89 00'), hex('8a 00'), hex('88 00')]);
    expectChunkInvariant(bytes, 'client', [
      frameEvent({ opcode: Opcode.Text, payload: 'a', fin: false }),
      frameEvent({ opcode: Opcode.Continuation, payload: 'b', messageOpcode: Opcode.Text }),
      frameEvent({ opcode: Opcode.Binary }),
      frameEvent({ opcode: Opcode.Ping }),
      frameEvent({ opcode: Opcode.Pong }),
      frameEvent({ opcode: Opcode.Close }),
    ]);
  });

  it('the reserved non-control opcodes 0x3-0x7 fail with 1002', () => {
    for (let op = 0x3; op <= 0x7; op++) expectChunkInvariant(hex(`8${op.toString(16)} 00`), 'client', [invalidOpcode(op)]);
  });

  it('the reserved control opcodes 0xB-0xF fail with 1002', () => {
    for (let op = 0xb; op <= 0xf; op++) expectChunkInvariant(hex(`8${op.toString(16)} 00`), 'client', [invalidOpcode(op)]);
  });

  it('a reserved opcode fails after valid frames, and nothing after it is read (Autobahn 4.1.3)', () => {
    const bytes = Buffer.concat([hex('81 05 48 65 6c 6c 6f'), hex('85 00'), hex('89 00')]);
    expectChunkInvariant(bytes, 'client', [frameEvent({ opcode: Opcode.Text, payload: 'Hello' }), invalidOpcode(5)]);
  });

  it('a reserved opcode is refused at the header, even when the frame announces a payload that never comes', () => {
    expectChunkInvariant(hex('83 7f'), 'client', [invalidOpcode(3)]);
    expectChunkInvariant(hex('0b 7e'), 'client', [invalidOpcode(0xb)]);
  });
});

describe('RFC 6455 §5.2 payload length: 7 bits, 7+16 bits, 7+64 bits', () => {
  const cases: Array<[number, string]> = [
    [0, '82 00'],
    [1, '82 01'],
    [125, '82 7d'],
    [126, '82 7e 00 7e'],
    [127, '82 7e 00 7f'],
    [65535, '82 7e ff ff'],
    [65536, '82 7f 00 00 00 00 00 01 00 00'],
    [65537, '82 7f 00 00 00 00 00 01 00 01'],
  ];
  for (const [length, header] of cases) {
    it(`a payload of ${length} bytes has the header ${header} and parses back, masked and unmasked`, () => {
      const payload = Buffer.alloc(length);
      for (let i = 0; i < length; i++) payload[i] = i & 0xff;
      const expected = frameEvent({ opcode: Opcode.Binary, payload });
      expectChunkInvariant(Buffer.concat([hex(header), payload]), 'client', [expected]);
      expectChunkInvariant(frames({ opcode: Opcode.Binary, payload, maskKey: KEY }), 'server', [{ ...expected, masked: true }]);
    });
  }

  it('"the most significant bit MUST be 0": a 64-bit length with the high bit set fails with 1002 at the header', () => {
    const highBit = failEvent(ErrorCode.InvalidLength, CloseCode.ProtocolError, '64-bit payload length with the high bit set');
    expectChunkInvariant(hex('82 7f 80 00 00 00 00 00 00 00'), 'client', [highBit]);
    expectChunkInvariant(hex('82 7f ff ff ff ff ff ff ff ff'), 'client', [highBit]);
    // The high-bit rule wins over the size limit: it is a protocol error, not a message too big.
    expectChunkInvariant(hex('82 ff 80 00 00 00 00 00 00 05 37 fa 21 3d'), 'server', [highBit], { maxFrameSize: 10 });
  });

  it('the length bytes of 16- and 64-bit headers may arrive one at a time (a header split anywhere)', () => {
    const payload = Buffer.alloc(300, 0x41);
    expectChunkInvariant(frames({ opcode: Opcode.Text, payload, maskKey: KEY }), 'server', [
      frameEvent({ opcode: Opcode.Text, payload, masked: true }),
    ]);
  });

  it('several frames of every length form back to back in one chunk parse in order', () => {
    const a = Buffer.alloc(5, 1);
    const b = Buffer.alloc(200, 2);
    const c = Buffer.alloc(70000, 3);
    const bytes = frames({ opcode: Opcode.Binary, payload: a }, { opcode: Opcode.Binary, payload: b }, { opcode: Opcode.Binary, payload: c });
    expectChunkInvariant(bytes.subarray(0), 'client', [
      frameEvent({ opcode: Opcode.Binary, payload: a }),
      frameEvent({ opcode: Opcode.Binary, payload: b }),
      frameEvent({ opcode: Opcode.Binary, payload: c }),
    ]);
  });
});

describe('RFC 6455 §5.2 payload length: "the minimal number of bytes MUST be used to encode the length"', () => {
  it('a length under 126 in the 16-bit field fails with 1002 at the header (as Chromium does; ws accepts it)', () => {
    expectChunkInvariant(hex('82 7e 00 7d'), 'client', [failEvent(ErrorCode.InvalidLength, CloseCode.ProtocolError, 'length 125 in a 16-bit field (must use the 7-bit one)')]);
  });

  it('a length under 65536 in the 64-bit field fails with 1002 at the header', () => {
    expectChunkInvariant(hex('82 7f 00 00 00 00 00 00 ff ff'), 'client', [
      failEvent(ErrorCode.InvalidLength, CloseCode.ProtocolError, 'length 65535 in a 64-bit field (must use a shorter one)'),
    ]);
    expectChunkInvariant(hex('82 ff 00 00 00 00 00 00 00 05 37 fa 21 3d'), 'server', [
      failEvent(ErrorCode.InvalidLength, CloseCode.ProtocolError, 'length 5 in a 64-bit field (must use a shorter one)'),
    ]);
  });

  it('the smallest lengths of each form are accepted: 126 in 16 bits, 65536 in 64 bits', () => {
    const p126 = Buffer.alloc(126, 0x61);
    expectChunkInvariant(Buffer.concat([hex('82 7e 00 7e'), p126]), 'client', [frameEvent({ opcode: Opcode.Binary, payload: p126 })]);
    const p64k = Buffer.alloc(65536, 0x62);
    expectChunkInvariant(Buffer.concat([hex('82 7f 00 00 00 00 00 01 00 00'), p64k]), 'client', [frameEvent({ opcode: Opcode.Binary, payload: p64k })]);
  });
});
