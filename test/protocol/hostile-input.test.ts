/**
 * Hostile input at the protocol layer (issue 10): a length in a header is a claim, not a budget;
 * fragments cost no object each; a message has a fragment limit; an allocation failure fails the
 * frame or message with 1009, never throws.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode, FrameParser, MessageAssembler, Opcode, ParseStatus } from '../../src/protocol/index.js';
import { DEFAULT_MAX_FRAGMENTS } from '../../src/protocol/frame-parser.js';
import { KEY, failEvent, feed, frameEvent, frames, hex, makeParser } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** One unmasked (client-side parser) continuation frame header + payload of `n` bytes of 'a'. */
function fragments(count: number, size: number, opcode: number = Opcode.Text): Buffer {
  const payload = Buffer.alloc(size, 0x61);
  const one = frames({ opcode: Opcode.Continuation, payload, fin: false });
  const parts: Buffer[] = [frames({ opcode, payload, fin: false })];
  for (let i = 1; i < count - 1; i++) parts.push(one);
  parts.push(frames({ opcode: Opcode.Continuation, payload }));
  return Buffer.concat(parts);
}

describe('fragments per message (maxFragments)', () => {
  it('the default passes the Autobahn 9.3.1/9.4.1 shape: 4 MiB in 64-byte fragments (65,536 frames)', () => {
    expect(DEFAULT_MAX_FRAGMENTS).toBeGreaterThanOrEqual(65_536);
    const p = makeParser('client', { maxMessageSize: 16 << 20 });
    const a = new MessageAssembler({ maxMessageSize: 16 << 20 });
    p.push(fragments(65_536, 64, Opcode.Binary));
    let message: Buffer | undefined | null;
    let n = 0;
    for (let s = p.advance(); s === ParseStatus.Frame; s = p.advance()) {
      n++;
      message = a.push(p.payload, p.fin, false, false);
    }
    expect(n).toBe(65_536);
    expect(message?.length).toBe(4 << 20);
  });

  it('the frame after maxFragments fails with 1009 at its header, empty fragments included', () => {
    const bytes = Buffer.concat([frames({ opcode: Opcode.Text, payload: '', fin: false }), ...Array.from({ length: 5 }, () => frames({ opcode: Opcode.Continuation, payload: '', fin: false }))]);
    const events = feed(makeParser('client', { maxFragments: 5 }), [bytes]);
    expect(events.slice(0, 5)).toEqual(Array.from({ length: 5 }, (_, i) => frameEvent({ opcode: i === 0 ? Opcode.Text : Opcode.Continuation, fin: false, messageOpcode: Opcode.Text })));
    expect(events[5]).toEqual(failEvent(ErrorCode.TooManyFragments, CloseCode.MessageTooBig, 'message of more than 5 fragments'));
  });

  it('the count starts again with each message', () => {
    const msg = fragments(3, 1);
    const events = feed(makeParser('client', { maxFragments: 3 }), [Buffer.concat([msg, msg, msg])]);
    expect(events.filter((e) => e.type === 'fail')).toEqual([]);
    expect(events).toHaveLength(9);
  });
});

describe('per-fragment memory', () => {
  it('500,000 one-byte fragments of one message hold about their bytes, not a Buffer each', () => {
    const a = new MessageAssembler({ maxMessageSize: 16 << 20 });
    const one = Buffer.from('a');
    gc();
    const before = process.memoryUsage();
    for (let i = 0; i < 500_000; i++) a.push(one, false, true, false);
    gc();
    const after = process.memoryUsage();
    const grew = after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
    // As parts (one view each) this was ~73 MB (146 B a fragment); in blocks it is ~0.5 MB.
    expect(grew).toBeLessThan(8 << 20);
    expect(a.buffered).toBe(500_000);
    expect(a.held).toBeLessThan(500_000 + 16 * 1024);
    const message = a.push(one, true, true, false);
    expect(message?.length).toBe(500_001);
    expect(message?.every((b) => b === 0x61)).toBe(true);
    expect(a.held).toBe(0);
  });

  it('mixed small and large fragments are joined in order', () => {
    const a = new MessageAssembler({ maxMessageSize: 1 << 20 });
    const pieces = [Buffer.alloc(3, 1), Buffer.alloc(20_000, 2), Buffer.alloc(300, 3), Buffer.alloc(16_383, 4), Buffer.alloc(1, 5)];
    pieces.forEach((b, i) => expect(a.push(b, false, false, false)).toBeUndefined());
    const message = a.push(Buffer.alloc(17_000, 6), true, false, false)!;
    expect(message.equals(Buffer.concat([...pieces, Buffer.alloc(17_000, 6)]))).toBe(true);
  });
});

describe('an allocation failure fails the frame or message with 1009, it never throws', () => {
  const failing = (atCall: number) => {
    let calls = 0;
    return (size: number): Buffer => {
      if (++calls >= atCall) throw new RangeError('Array buffer allocation failed');
      return Buffer.allocUnsafe(size);
    };
  };

  it('FrameParser: a block for a small piece, and joining the pieces of a payload that spans reads', () => {
    // 1 MiB announced; a small piece (copied into a block: allocation 1) then large ones (kept).
    const p = new FrameParser({ role: 'server', maxFrameSize: 1 << 30, maxMessageSize: 1 << 30, allowRsv1: false, allocate: failing(2) });
    p.push(hex('82 ff 00 00 00 00 00 10 00 00 37 fa 21 3d'));
    p.push(Buffer.alloc(1000));
    expect(p.advance()).toBe(ParseStatus.NeedMore);
    for (let i = 0; i < 16; i++) expect(() => p.push(Buffer.alloc(64 * 1024))).not.toThrow();
    // The last byte is here: joining needs 1 MiB (allocation 2), which fails.
    expect(p.advance()).toBe(ParseStatus.Fail);
    expect(p.error).toMatchObject({ code: ErrorCode.OutOfMemory, closeCode: CloseCode.MessageTooBig });
    expect(p.held).toBe(0);
    const q = new FrameParser({ role: 'server', maxFrameSize: 1 << 30, maxMessageSize: 1 << 30, allowRsv1: false, allocate: failing(1) });
    q.push(hex('82 fe 01 00 37 fa 21 3d 00'));
    expect(q.advance()).toBe(ParseStatus.Fail);
    expect(q.error).toMatchObject({ code: ErrorCode.OutOfMemory });
  });

  it('MessageAssembler: a block, and the joined message', () => {
    const a = new MessageAssembler({ maxMessageSize: 1 << 20, allocate: failing(1) });
    expect(a.push(Buffer.alloc(10), false, false, false)).toBeNull();
    expect(a.error).toMatchObject({ code: ErrorCode.OutOfMemory, closeCode: CloseCode.MessageTooBig });
    const b = new MessageAssembler({ maxMessageSize: 1 << 20, allocate: failing(1) });
    expect(b.push(Buffer.alloc(20_000), false, false, false)).toBeUndefined();
    expect(b.push(Buffer.alloc(20_000), true, false, false)).toBeNull();
    expect(b.error).toMatchObject({ code: ErrorCode.OutOfMemory });
    expect(b.held).toBe(0);
  });
});

void KEY;
