/**
 * RFC 6455 §5.4 Fragmentation: a message is a first frame (Text/Binary, FIN clear), any number of
 * continuation frames, and a last frame with FIN set; control frames may be injected between
 * fragments; fragments of different messages are never interleaved.
 */
import { describe, it } from 'vitest';
import { CloseCode, ErrorCode, Opcode } from '../../src/protocol/index.js';
import { KEY, expectChunkInvariant, failEvent, frameEvent, frames, hex } from '../protocol/helpers.js';

const UNEXPECTED_CONTINUATION = failEvent(
  ErrorCode.UnexpectedContinuation,
  CloseCode.ProtocolError,
  'continuation frame without a message to continue',
);
const EXPECTED_CONTINUATION = failEvent(ErrorCode.ExpectedContinuation, CloseCode.ProtocolError, 'new data frame inside a fragmented message');

describe('RFC 6455 §5.4 fragmentation', () => {
  it('a text message in three fragments: each continuation carries the message opcode Text', () => {
    const bytes = frames(
      { opcode: Opcode.Text, payload: 'frag', fin: false, maskKey: KEY },
      { opcode: Opcode.Continuation, payload: 'men', fin: false, maskKey: KEY },
      { opcode: Opcode.Continuation, payload: 'ted', maskKey: KEY },
    );
    expectChunkInvariant(bytes, 'server', [
      frameEvent({ opcode: Opcode.Text, payload: 'frag', fin: false, masked: true }),
      frameEvent({ opcode: Opcode.Continuation, payload: 'men', fin: false, masked: true, messageOpcode: Opcode.Text }),
      frameEvent({ opcode: Opcode.Continuation, payload: 'ted', masked: true, messageOpcode: Opcode.Text }),
    ]);
  });

  it('a binary message in fragments: each continuation carries the message opcode Binary', () => {
    expectChunkInvariant(hex('02 01 01 00 01 02 80 01 03'), 'client', [
      frameEvent({ opcode: Opcode.Binary, payload: hex('01'), fin: false }),
      frameEvent({ opcode: Opcode.Continuation, payload: hex('02'), fin: false, messageOpcode: Opcode.Binary }),
      frameEvent({ opcode: Opcode.Continuation, payload: hex('03'), messageOpcode: Opcode.Binary }),
    ]);
  });

  it('fragments may be empty, and a message of empty fragments is legal (Autobahn 5.18-5.20 style)', () => {
    expectChunkInvariant(hex('01 00 00 00 80 00'), 'client', [
      frameEvent({ opcode: Opcode.Text, fin: false }),
      frameEvent({ opcode: Opcode.Continuation, fin: false, messageOpcode: Opcode.Text }),
      frameEvent({ opcode: Opcode.Continuation, messageOpcode: Opcode.Text }),
    ]);
  });

  it('a fragment boundary may cut through a UTF-8 sequence: only the whole message must be valid', () => {
    const euro = Buffer.from('€'); // e2 82 ac
    expectChunkInvariant(
      frames(
        { opcode: Opcode.Text, payload: euro.subarray(0, 1), fin: false },
        { opcode: Opcode.Continuation, payload: euro.subarray(1, 2), fin: false },
        { opcode: Opcode.Continuation, payload: euro.subarray(2) },
      ),
      'client',
      [
        frameEvent({ opcode: Opcode.Text, payload: hex('e2'), fin: false }),
        frameEvent({ opcode: Opcode.Continuation, payload: hex('82'), fin: false, messageOpcode: Opcode.Text }),
        frameEvent({ opcode: Opcode.Continuation, payload: hex('ac'), messageOpcode: Opcode.Text }),
      ],
    );
  });

  it('a continuation frame with no message in progress fails with 1002 (Autobahn 5.9)', () => {
    expectChunkInvariant(hex('80 01 61'), 'client', [UNEXPECTED_CONTINUATION]);
    expectChunkInvariant(hex('00 01 61'), 'client', [UNEXPECTED_CONTINUATION]);
  });

  it('a continuation frame after a message has ended fails with 1002', () => {
    expectChunkInvariant(hex('81 01 61 80 01 62'), 'client', [frameEvent({ opcode: Opcode.Text, payload: 'a' }), UNEXPECTED_CONTINUATION]);
    expectChunkInvariant(hex('01 01 61 80 01 62 00 01 63'), 'client', [
      frameEvent({ opcode: Opcode.Text, payload: 'a', fin: false }),
      frameEvent({ opcode: Opcode.Continuation, payload: 'b', messageOpcode: Opcode.Text }),
      UNEXPECTED_CONTINUATION,
    ]);
  });

  it('a new Text or Binary frame while a message is unfinished fails with 1002 (no interleaving)', () => {
    for (const next of ['81 01 62', '01 01 62', '82 01 62', '02 01 62']) {
      expectChunkInvariant(hex(`01 01 61 ${next}`), 'client', [frameEvent({ opcode: Opcode.Text, payload: 'a', fin: false }), EXPECTED_CONTINUATION]);
    }
  });

  it('the order of fragments is decided at the header: the frame that breaks it fails before its payload arrives', () => {
    expectChunkInvariant(hex('80 7e'), 'client', [UNEXPECTED_CONTINUATION]);
    expectChunkInvariant(hex('02 00 82 7f'), 'client', [frameEvent({ opcode: Opcode.Binary, fin: false }), EXPECTED_CONTINUATION]);
  });

  it('control frames may be injected between fragments; the message continues after them', () => {
    const bytes = frames(
      { opcode: Opcode.Text, payload: 'Hel', fin: false },
      { opcode: Opcode.Ping, payload: 'p' },
      { opcode: Opcode.Continuation, payload: 'l', fin: false },
      { opcode: Opcode.Pong, payload: 'q' },
      { opcode: Opcode.Continuation, payload: 'o' },
      { opcode: Opcode.Text, payload: 'next' },
    );
    expectChunkInvariant(bytes, 'client', [
      frameEvent({ opcode: Opcode.Text, payload: 'Hel', fin: false }),
      frameEvent({ opcode: Opcode.Ping, payload: 'p' }),
      frameEvent({ opcode: Opcode.Continuation, payload: 'l', fin: false, messageOpcode: Opcode.Text }),
      frameEvent({ opcode: Opcode.Pong, payload: 'q' }),
      frameEvent({ opcode: Opcode.Continuation, payload: 'o', messageOpcode: Opcode.Text }),
      frameEvent({ opcode: Opcode.Text, payload: 'next' }),
    ]);
  });
});
