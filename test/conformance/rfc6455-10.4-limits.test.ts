/**
 * RFC 6455 §10.4 Implementation-Specific Limits: "Such an implementation SHOULD impose a limit on
 * frame sizes and the total message size after reassembly from multiple frames"; §7.4.1: 1009 is
 * "a message that is too big for it to process".
 *
 * Limits are decided at the header: a frame that announces too many bytes fails as soon as its
 * header is complete, and no payload buffer is reserved for it.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CloseCode, ErrorCode, Opcode } from '../../src/protocol/index.js';
import { KEY, expectChunkInvariant, failEvent, feed, frameEvent, frames, hex, makeParser } from '../protocol/helpers.js';

const frameTooBig = (len: number, max: number) => failEvent(ErrorCode.PayloadTooBig, CloseCode.MessageTooBig, `frame of ${len} bytes exceeds the limit of ${max}`);
const messageTooBig = (max: number) => failEvent(ErrorCode.PayloadTooBig, CloseCode.MessageTooBig, `message exceeds the limit of ${max} bytes`);

/** Feed only `header` and prove the failure came at once: nothing held, no big buffer reserved. */
function expectFailsAtHeader(header: Buffer, role: 'server' | 'client', expected: ReturnType<typeof failEvent>, limits: { maxFrameSize?: number; maxMessageSize?: number }, before: Buffer = Buffer.alloc(0)): void {
  const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
  const alloc = vi.spyOn(Buffer, 'alloc');
  const p = makeParser(role, limits);
  const events = feed(p, [before, header]);
  expect(events[events.length - 1]).toEqual(expected);
  expect(p.buffered).toBe(0);
  const biggest = Math.max(0, ...[...allocUnsafe.mock.calls, ...alloc.mock.calls].map((c) => Number(c[0])));
  expect(biggest, 'no payload buffer is reserved for a frame refused at its header').toBeLessThan(1024);
  expectChunkInvariant(Buffer.concat([before, header]), role, events, limits);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('RFC 6455 §10.4 maxFrameSize', () => {
  it('a frame of exactly maxFrameSize bytes is accepted', () => {
    const payload = Buffer.alloc(100, 0x62);
    expectChunkInvariant(frames({ opcode: Opcode.Binary, payload, maskKey: KEY }), 'server', [frameEvent({ opcode: Opcode.Binary, payload, masked: true })], {
      maxFrameSize: 100,
    });
  });

  it('a frame one byte over maxFrameSize fails with 1009 on its header, before any payload byte', () => {
    expectFailsAtHeader(hex('82 e5 37 fa 21 3d'), 'server', frameTooBig(101, 100), { maxFrameSize: 100 });
  });

  it('a 16-bit length over the limit fails with 1009 on its header', () => {
    expectFailsAtHeader(hex('82 7e ff ff'), 'client', frameTooBig(65535, 1000), { maxFrameSize: 1000 });
  });

  it('a 64-bit length of 2^40 fails with 1009 on its header, with no buffer reserved', () => {
    expectFailsAtHeader(hex('82 ff 00 00 01 00 00 00 00 00 37 fa 21 3d'), 'server', frameTooBig(2 ** 40, 1 << 20), { maxFrameSize: 1 << 20 });
  });

  it('the largest legal 64-bit length (high bit clear) fails with 1009, reported as 2^53-1 bytes', () => {
    expectFailsAtHeader(hex('82 7f 7f ff ff ff ff ff ff ff'), 'client', frameTooBig(Number.MAX_SAFE_INTEGER, 1 << 20), { maxFrameSize: 1 << 20 });
  });

  it('a 64-bit length with the high bit set is a protocol error (1002), not a size error', () => {
    expectFailsAtHeader(
      hex('82 7f 80 00 00 00 00 00 00 01'),
      'client',
      failEvent(ErrorCode.InvalidLength, CloseCode.ProtocolError, '64-bit payload length with the high bit set'),
      { maxFrameSize: 1 << 20 },
    );
  });

  it('the frame limit applies to control frames too', () => {
    expectFailsAtHeader(hex('89 0b'), 'client', frameTooBig(11, 10), { maxFrameSize: 10 });
  });

  it('a header announcing 60 MiB reserves only what has arrived (bounded steps), never the announced length', () => {
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
    const p = makeParser('server', { maxFrameSize: 64 << 20 });
    // 60 MiB announced in the 64-bit field, then three payload bytes.
    p.push(hex('82 ff 00 00 00 00 03 c0 00 00 37 fa 21 3d 00 01 02'));
    expect(p.next()).toBeUndefined();
    expect(p.buffered).toBe(3);
    expect(p.held).toBeLessThanOrEqual(64 * 1024);
    const biggest = () => Math.max(0, ...allocUnsafe.mock.calls.map((c) => Number(c[0])));
    expect(biggest()).toBeLessThanOrEqual(64 * 1024);
    // 1 MiB more: the buffer grows with what came, at most twice the bytes received.
    for (let i = 0; i < 16; i++) p.push(Buffer.alloc(64 * 1024));
    expect(p.next()).toBeUndefined();
    expect(p.buffered).toBe(3 + (1 << 20));
    expect(p.held).toBeLessThanOrEqual(2 * p.buffered);
    expect(biggest()).toBeLessThanOrEqual(2 * p.buffered);
  });
});

describe('RFC 6455 §10.4 maxMessageSize', () => {
  it('a message of exactly maxMessageSize bytes over several frames is accepted', () => {
    const bytes = frames(
      { opcode: Opcode.Binary, payload: Buffer.alloc(40), fin: false },
      { opcode: Opcode.Continuation, payload: Buffer.alloc(40), fin: false },
      { opcode: Opcode.Continuation, payload: Buffer.alloc(20) },
    );
    const events = feed(makeParser('client', { maxMessageSize: 100 }), [bytes]);
    expect(events.map((e) => e.type)).toEqual(['frame', 'frame', 'frame']);
  });

  it('the continuation that takes a message over the limit fails with 1009 at its header, after the fragments before it', () => {
    const before = frames(
      { opcode: Opcode.Text, payload: 'a'.repeat(60), fin: false, maskKey: KEY },
      { opcode: Opcode.Continuation, payload: 'b'.repeat(30), fin: false, maskKey: KEY },
    );
    // A continuation announcing 11 more bytes: 101 > 100. Only its header is fed.
    expectFailsAtHeader(hex('80 8b 37 fa 21 3d'), 'server', messageTooBig(100), { maxMessageSize: 100 }, before);
  });

  it('a first frame announcing more than maxMessageSize fails at its header even if it is under maxFrameSize', () => {
    expectFailsAtHeader(hex('01 7e 01 00'), 'client', messageTooBig(200), { maxFrameSize: 1000, maxMessageSize: 200 });
  });

  it('control frames between fragments do not count toward the message size', () => {
    const bytes = frames(
      { opcode: Opcode.Binary, payload: Buffer.alloc(50), fin: false },
      { opcode: Opcode.Ping, payload: Buffer.alloc(100) },
      { opcode: Opcode.Continuation, payload: Buffer.alloc(50) },
    );
    expect(feed(makeParser('client', { maxMessageSize: 100 }), [bytes]).map((e) => e.type)).toEqual(['frame', 'frame', 'frame']);
  });

  it('the count starts again with each message', () => {
    const bytes = frames({ opcode: Opcode.Text, payload: 'x'.repeat(80) }, { opcode: Opcode.Text, payload: 'y'.repeat(80), fin: false }, { opcode: Opcode.Continuation, payload: 'z'.repeat(20) });
    expect(feed(makeParser('client', { maxMessageSize: 100 }), [bytes]).map((e) => e.type)).toEqual(['frame', 'frame', 'frame']);
  });
});
