/**
 * RFC 6455 §5.1 Overview / §5.3 Client-to-Server Masking, by role:
 * "a client MUST mask all frames that it sends to the server" and "the server MUST close the
 * connection upon receiving a frame that is not masked"; "A server MUST NOT mask any frames that
 * it sends to the client. A client MUST close a connection if it detects a masked frame."
 */
import { describe, it } from 'vitest';
import { CloseCode, ErrorCode, Opcode } from '../../src/protocol/index.js';
import { KEY, Rng, expectChunkInvariant, failEvent, frameEvent, frames } from '../protocol/helpers.js';

const EXPECTED_MASK = failEvent(ErrorCode.ExpectedMask, CloseCode.ProtocolError, 'client frames must be masked');
const UNEXPECTED_MASK = failEvent(ErrorCode.UnexpectedMask, CloseCode.ProtocolError, 'server frames must not be masked');

/** One frame of each opcode, with a payload that suits it. */
const EACH_OPCODE = [
  { opcode: Opcode.Text, payload: 'text' },
  { opcode: Opcode.Binary, payload: Buffer.from([0, 1, 2]) },
  { opcode: Opcode.Ping, payload: 'ping' },
  { opcode: Opcode.Pong, payload: 'pong' },
  { opcode: Opcode.Close, payload: Buffer.from([0x03, 0xe8]) },
] as const;

describe('RFC 6455 §5.1 masking by role', () => {
  it('server: accepts a masked frame of every opcode and unmasks its payload', () => {
    for (const f of EACH_OPCODE) {
      expectChunkInvariant(frames({ ...f, maskKey: KEY }), 'server', [frameEvent({ ...f, masked: true })]);
    }
  });

  it('server: fails an unmasked frame of any opcode with 1002', () => {
    for (const f of EACH_OPCODE) expectChunkInvariant(frames(f), 'server', [EXPECTED_MASK]);
  });

  it('client: accepts an unmasked frame of every opcode', () => {
    for (const f of EACH_OPCODE) expectChunkInvariant(frames(f), 'client', [frameEvent(f)]);
  });

  it('client: fails a masked frame of any opcode with 1002', () => {
    for (const f of EACH_OPCODE) expectChunkInvariant(frames({ ...f, maskKey: KEY }), 'client', [UNEXPECTED_MASK]);
  });

  it('the MASK bit is decided at the header: two bytes are enough to fail, before the length or key arrive', () => {
    expectChunkInvariant(Buffer.from([0x82, 0x7f]), 'server', [EXPECTED_MASK]);
    expectChunkInvariant(Buffer.from([0x82, 0xff]), 'client', [UNEXPECTED_MASK]);
  });

  it('server: an unmasked frame in the middle of a masked conversation fails there, after the frames before it', () => {
    const bytes = Buffer.concat([
      frames({ opcode: Opcode.Text, payload: 'one', maskKey: KEY }),
      frames({ opcode: Opcode.Text, payload: 'two' }),
      frames({ opcode: Opcode.Text, payload: 'three', maskKey: KEY }),
    ]);
    expectChunkInvariant(bytes, 'server', [frameEvent({ opcode: Opcode.Text, payload: 'one', masked: true }), EXPECTED_MASK]);
  });

  it('server: a mask key of 0 is still a masked frame (the MASK bit is what counts)', () => {
    expectChunkInvariant(frames({ opcode: Opcode.Text, payload: 'zero key', maskKey: 0 }), 'server', [
      frameEvent({ opcode: Opcode.Text, payload: 'zero key', masked: true }),
    ]);
  });

  it('server: payloads masked with random keys are unmasked exactly, whatever the chunk boundaries (§5.3 key octet i mod 4)', () => {
    const rng = new Rng(51);
    for (let trial = 0; trial < 20; trial++) {
      const payload = rng.bytes(rng.range(0, 600));
      expectChunkInvariant(frames({ opcode: Opcode.Binary, payload, maskKey: rng.u32() }), 'server', [
        frameEvent({ opcode: Opcode.Binary, payload, masked: true }),
      ]);
    }
  });
});
