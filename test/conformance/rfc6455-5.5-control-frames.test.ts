/**
 * RFC 6455 §5.5 Control Frames: "All control frames MUST have a payload length of 125 bytes or
 * less and MUST NOT be fragmented." "Control frames MAY be injected in the middle of a fragmented
 * message." Ping (§5.5.2), Pong (§5.5.3), Close (§5.5.1).
 */
import { describe, it } from 'vitest';
import { CloseCode, ErrorCode, Opcode } from '../../src/protocol/index.js';
import { KEY, expectChunkInvariant, failEvent, frameEvent, frames, hex } from '../protocol/helpers.js';

const TOO_LONG = failEvent(ErrorCode.InvalidControlFrame, CloseCode.ProtocolError, 'control frame payload over 125 bytes');
const FRAGMENTED = failEvent(ErrorCode.InvalidControlFrame, CloseCode.ProtocolError, 'control frames must not be fragmented');
const CONTROL = [Opcode.Close, Opcode.Ping, Opcode.Pong] as const;

describe('RFC 6455 §5.5 control frames', () => {
  it('a control frame of 125 bytes, the most allowed, is accepted (Autobahn 2.4)', () => {
    for (const opcode of CONTROL) {
      const payload = opcode === Opcode.Close ? Buffer.concat([hex('03 e8'), Buffer.alloc(123, 0x61)]) : Buffer.alloc(125, 0xfe);
      expectChunkInvariant(frames({ opcode, payload, maskKey: KEY }), 'server', [frameEvent({ opcode, payload, masked: true })]);
    }
  });

  it('a control frame of 126 bytes fails with 1002 (Autobahn 2.5)', () => {
    for (const opcode of CONTROL) {
      expectChunkInvariant(frames({ opcode, payload: Buffer.alloc(126), maskKey: KEY }), 'server', [TOO_LONG]);
    }
  });

  it('the control length limit is decided at the header: a 16- or 64-bit length form fails on the second byte', () => {
    expectChunkInvariant(hex('89 7e'), 'client', [TOO_LONG]);
    expectChunkInvariant(hex('8a 7f'), 'client', [TOO_LONG]);
    expectChunkInvariant(hex('88 fe'), 'server', [TOO_LONG]);
  });

  it('a control frame with FIN clear (fragmented) fails with 1002 (Autobahn 5.1, 5.2)', () => {
    for (const opcode of CONTROL) {
      expectChunkInvariant(frames({ opcode, payload: 'x', fin: false }), 'client', [FRAGMENTED]);
    }
  });

  it('a fragmented control frame fails at the header, before its payload arrives', () => {
    expectChunkInvariant(hex('09 05'), 'client', [FRAGMENTED]);
  });

  it('control frames may be empty', () => {
    for (const opcode of CONTROL) expectChunkInvariant(frames({ opcode }), 'client', [frameEvent({ opcode })]);
  });

  it('a Ping or Pong body is application data of any bytes, not checked for UTF-8 (Autobahn 2.3)', () => {
    for (const opcode of [Opcode.Ping, Opcode.Pong]) {
      const payload = hex('00 ff fe ed a0 80 c0 af');
      expectChunkInvariant(frames({ opcode, payload }), 'client', [frameEvent({ opcode, payload })]);
    }
  });

  it('a control frame between the fragments of a text message is delivered and the message goes on (Autobahn 5.6-5.8)', () => {
    for (const opcode of CONTROL) {
      const bytes = frames(
        { opcode: Opcode.Text, payload: 'frag', fin: false, maskKey: KEY },
        { opcode, payload: opcode === Opcode.Close ? hex('03 e8') : 'ctl', maskKey: KEY },
        { opcode: Opcode.Continuation, payload: 'ment', maskKey: KEY },
      );
      expectChunkInvariant(bytes, 'server', [
        frameEvent({ opcode: Opcode.Text, payload: 'frag', fin: false, masked: true }),
        frameEvent({ opcode, payload: opcode === Opcode.Close ? hex('03 e8') : 'ctl', masked: true }),
        frameEvent({ opcode: Opcode.Continuation, payload: 'ment', masked: true, messageOpcode: Opcode.Text }),
      ]);
    }
  });

  it('a control frame between fragments does not reset UTF-8 state: a code point split around it is valid', () => {
    const bytes = frames(
      { opcode: Opcode.Text, payload: hex('61 f0 9f'), fin: false },
      { opcode: Opcode.Ping, payload: hex('ff') },
      { opcode: Opcode.Continuation, payload: hex('98 80') },
    );
    expectChunkInvariant(bytes, 'client', [
      frameEvent({ opcode: Opcode.Text, payload: hex('61 f0 9f'), fin: false }),
      frameEvent({ opcode: Opcode.Ping, payload: hex('ff') }),
      frameEvent({ opcode: Opcode.Continuation, payload: hex('98 80'), messageOpcode: Opcode.Text }),
    ]);
  });

  it('many control frames in a row between two fragments are all delivered in order', () => {
    const pings = Array.from({ length: 10 }, (_, i) => ({ opcode: Opcode.Ping, payload: `p${i}` }));
    const bytes = frames({ opcode: Opcode.Binary, payload: hex('01'), fin: false }, ...pings, { opcode: Opcode.Continuation, payload: hex('02') });
    expectChunkInvariant(bytes, 'client', [
      frameEvent({ opcode: Opcode.Binary, payload: hex('01'), fin: false }),
      ...pings.map((p) => frameEvent(p)),
      frameEvent({ opcode: Opcode.Continuation, payload: hex('02'), messageOpcode: Opcode.Binary }),
    ]);
  });
});
