/**
 * FrameParser as an object: the advance()/next() API, ownership of pushed chunks, `buffered`,
 * sticky failure, and randomised conversations fed at random splits. The RFC rules themselves
 * are in test/conformance/rfc6455-*.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode, Opcode, ParseStatus, ProtocolError, encodeFrame } from '../../src/protocol/index.js';
import {
  KEY,
  Rng,
  byteChunks,
  expectChunkInvariant,
  feed,
  frameEvent,
  hex,
  makeParser,
  randomChunks,
  toHex,
  type Event,
  type FrameSpec,
} from './helpers.js';

describe('advance() and next()', () => {
  it('advance() returns NeedMore until a whole frame is held, then Frame with the fields set', () => {
    const p = makeParser('client');
    expect(p.advance()).toBe(ParseStatus.NeedMore);
    p.push(hex('81'));
    expect(p.advance()).toBe(ParseStatus.NeedMore);
    p.push(hex('05 48 65'));
    expect(p.advance()).toBe(ParseStatus.NeedMore);
    p.push(hex('6c 6c 6f'));
    expect(p.advance()).toBe(ParseStatus.Frame);
    expect([p.fin, p.rsv1, p.opcode, p.masked, p.messageOpcode, p.compressed]).toEqual([true, false, Opcode.Text, false, Opcode.Text, false]);
    expect(p.payload.toString()).toBe('Hello');
    expect(p.advance()).toBe(ParseStatus.NeedMore);
  });

  it('advance() reuses the parser fields for each frame; next() returns a fresh object each time', () => {
    const p = makeParser('client');
    p.push(hex('81 01 61 82 01 62'));
    const a = p.next();
    const b = p.next();
    expect(a).not.toBe(b);
    expect(a?.type === 'frame' && a.frame.payload.toString()).toBe('a');
    expect(b?.type === 'frame' && b.frame.opcode).toBe(Opcode.Binary);
    expect(p.next()).toBeUndefined();
  });

  it('gives every frame of a chunk in order, and holds back a frame cut by the chunk end', () => {
    const p = makeParser('client');
    const events = feed(p, [hex('89 00 81 02 68 69 8a 01 78 82 03 01')]);
    expect(events).toEqual([
      frameEvent({ opcode: Opcode.Ping }),
      frameEvent({ opcode: Opcode.Text, payload: 'hi' }),
      frameEvent({ opcode: Opcode.Pong, payload: 'x' }),
    ]);
    expect(p.buffered).toBe(1); // the Binary header is consumed; its first payload byte is held
    p.push(hex('02 03'));
    expect(p.next()).toEqual({ type: 'frame', frame: expect.objectContaining({ opcode: Opcode.Binary, payload: hex('01 02 03') }) });
  });

  it('ignores an empty chunk', () => {
    const p = makeParser('client');
    p.push(Buffer.alloc(0));
    expect(p.buffered).toBe(0);
    expect(p.advance()).toBe(ParseStatus.NeedMore);
  });
});

describe('ownership of pushed chunks', () => {
  it('a payload that lies whole inside one chunk is handed out as a view of that chunk (no copy)', () => {
    const p = makeParser('client');
    const chunk = hex('82 03 01 02 03');
    p.push(chunk);
    const e = p.next();
    expect(e?.type).toBe('frame');
    if (e?.type !== 'frame') return;
    expect(e.frame.payload.buffer).toBe(chunk.buffer);
    expect(e.frame.payload.byteOffset).toBe(chunk.byteOffset + 2);
  });

  it('a masked payload is unmasked in place, inside the chunk that was pushed', () => {
    const p = makeParser('server');
    const chunk = hex('81 85 37 fa 21 3d 7f 9f 4d 51 58');
    p.push(chunk);
    expect(p.next()?.type).toBe('frame');
    expect(chunk.subarray(6).toString()).toBe('Hello');
  });

  it('a payload that spans chunks is gathered into one buffer, counted by `buffered` while it fills', () => {
    const p = makeParser('server');
    const bytes = encodeFrame(Opcode.Binary, Buffer.alloc(300, 7), { maskKey: KEY });
    p.push(Buffer.from(bytes.subarray(0, 100)));
    expect(p.advance()).toBe(ParseStatus.NeedMore);
    expect(p.buffered).toBe(100 - 8); // the header is consumed, its payload bytes are held
    p.push(Buffer.from(bytes.subarray(100, 250)));
    expect(p.advance()).toBe(ParseStatus.NeedMore);
    expect(p.buffered).toBe(250 - 8);
    p.push(Buffer.from(bytes.subarray(250)));
    expect(p.advance()).toBe(ParseStatus.Frame);
    expect(toHex(p.payload)).toBe(toHex(Buffer.alloc(300, 7)));
    expect(p.buffered).toBe(0);
  });

  it('lets go of the last payload when asked for the next frame, and of everything on release()', () => {
    const p = makeParser('client');
    p.push(hex('82 02 01 02'));
    expect(p.advance()).toBe(ParseStatus.Frame);
    expect(p.payload.length).toBe(2);
    expect(p.advance()).toBe(ParseStatus.NeedMore); // the caller is done with that frame
    expect(p.payload.length).toBe(0);
    const bytes = encodeFrame(Opcode.Binary, Buffer.alloc(300, 7));
    p.push(Buffer.from(bytes.subarray(0, 100))); // a partial payload held
    expect(p.advance()).toBe(ParseStatus.NeedMore);
    expect(p.buffered).toBe(100 - 4);
    p.release();
    expect(p.buffered).toBe(0); // nothing is held
    expect(p.payload.length).toBe(0);
  });

  it('a header split over chunks is carried over and counted by `buffered`', () => {
    const p = makeParser('server');
    p.push(hex('81 fe 01'));
    expect(p.advance()).toBe(ParseStatus.NeedMore);
    expect(p.buffered).toBe(3);
  });
});

describe('failure is final', () => {
  it('after a failure every call returns Fail with the same error, input is discarded and nothing is held', () => {
    const p = makeParser('server');
    p.push(hex('81 85 37 fa')); // held: an incomplete header
    p.push(hex('21 3d 7f 9f 4d 51 58 c1 80')); // the rest of it, then a frame with RSV1 and no extension
    expect(p.next()?.type).toBe('frame');
    expect(p.advance()).toBe(ParseStatus.Fail);
    const error = p.error;
    expect(error).toBeInstanceOf(ProtocolError);
    expect([error?.code, error?.closeCode, error?.message]).toEqual([ErrorCode.UnexpectedRsv, CloseCode.ProtocolError, 'RSV1 must be clear']);
    p.push(hex('81 80 00 00 00 00'));
    expect(p.advance()).toBe(ParseStatus.Fail);
    expect(p.next()).toEqual({ type: 'fail', error });
    expect(p.error).toBe(error);
    expect(p.buffered).toBe(0);
  });

  it('a failure in the middle of a payload also leaves nothing held', () => {
    const p = makeParser('client');
    p.push(hex('81 0a 61 62'));
    expect(p.advance()).toBe(ParseStatus.NeedMore);
    p.push(hex('ff'));
    expect(p.advance()).toBe(ParseStatus.Fail);
    expect(p.buffered).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Randomised conversations: random legal frame sequences, encoded, then parsed at random splits.

function randomText(rng: Rng, codePoints: number): string {
  const pools = [
    [0x20, 0x7e],
    [0x80, 0x7ff],
    [0x800, 0xd7ff],
    [0xe000, 0xfffd],
    [0x10000, 0x10ffff],
  ] as const;
  let s = '';
  for (let i = 0; i < codePoints; i++) {
    const [lo, hi] = rng.pick(pools);
    s += String.fromCodePoint(rng.range(lo, hi));
  }
  return s;
}

function randomLength(rng: Rng): number {
  return rng.pick([0, 1, 2, 3, 4, 5, 17, 124, 125, 126, 127, 200, 1000, 65535, 65536, 65537]);
}

function randomConversation(rng: Rng, masked: boolean): { bytes: Buffer; events: Event[] } {
  const specs: Array<FrameSpec & { key: number | undefined }> = [];
  const control = (): void => {
    const opcode = rng.pick([Opcode.Ping, Opcode.Pong, Opcode.Close]);
    const payload = opcode === Opcode.Close ? hex('03 e8') : rng.bytes(rng.int(126));
    specs.push({ opcode, payload, masked, key: masked ? rng.u32() : undefined });
  };
  const messages = rng.range(1, 5);
  for (let m = 0; m < messages; m++) {
    if (rng.int(3) === 0) control();
    const isText = rng.bool();
    const whole = isText ? Buffer.from(randomText(rng, randomLength(rng) >> 1)) : rng.bytes(randomLength(rng));
    const fragments = rng.range(1, 4);
    // Cut anywhere, even inside a UTF-8 sequence: fragments need not be valid on their own.
    const cuts = [0, ...Array.from({ length: fragments - 1 }, () => rng.int(whole.length + 1)).sort((a, b) => a - b), whole.length];
    const messageOpcode = isText ? Opcode.Text : Opcode.Binary;
    for (let f = 0; f < fragments; f++) {
      if (f > 0 && rng.int(4) === 0) control();
      specs.push({
        opcode: f === 0 ? messageOpcode : Opcode.Continuation,
        messageOpcode,
        payload: whole.subarray(cuts[f], cuts[f + 1]),
        fin: f === fragments - 1,
        masked,
        key: masked ? rng.u32() : undefined,
      });
    }
  }
  const bytes = Buffer.concat(
    specs.map((s) =>
      encodeFrame(s.opcode, s.payload as Uint8Array, { fin: s.fin ?? true, ...(s.key !== undefined ? { maskKey: s.key } : {}) }),
    ),
  );
  return { bytes, events: specs.map(({ key: _key, ...s }) => frameEvent(s)) };
}

describe('random conversations', () => {
  it('random legal frame sequences (fragments, control frames between them, all length forms) parse to their frames at any split', () => {
    const rng = new Rng(2024);
    for (let trial = 0; trial < 40; trial++) {
      const masked = rng.bool();
      const { bytes, events } = randomConversation(rng, masked);
      const role = masked ? 'server' : 'client';
      expect(feed(makeParser(role), [bytes]), `trial ${trial} whole`).toEqual(events);
      for (let s = 0; s < 3; s++) {
        expect(feed(makeParser(role), randomChunks(bytes, rng, 40)), `trial ${trial} split ${s}`).toEqual(events);
      }
      if (bytes.length < 2000) expect(feed(makeParser(role), byteChunks(bytes)), `trial ${trial} bytes`).toEqual(events);
    }
  });

  it('random bytes never make the parser throw, and give the same events at any split', () => {
    const rng = new Rng(404);
    for (let trial = 0; trial < 250; trial++) {
      // Mostly-plausible garbage: a valid-looking first byte now and then, random after it.
      const bytes = rng.bytes(rng.range(1, 300));
      if (rng.bool()) bytes[0] = rng.pick([0x81, 0x82, 0x01, 0x00, 0x80, 0x88, 0x89, 0x8a]);
      if (rng.bool() && bytes.length > 1) bytes[1] = (bytes[1]! & 0x80) | rng.int(126);
      for (const role of ['server', 'client'] as const) {
        const limits = { maxFrameSize: 4096, maxMessageSize: 8192 };
        const whole = feed(makeParser(role, limits), [bytes]);
        expectChunkInvariant(bytes, role, whole, limits);
      }
    }
  });
});
