/**
 * Fuzz targets (issue 10) for the inbound pipeline: FrameParser -> MessageAssembler (+ the
 * permessage-deflate inflater), as Conn drives it. Invariants, for any input:
 * - never throws, never hangs (each frame consumes bytes; a loop bound proves it);
 * - memory bounded by the limits: the parser holds at most twice what it has received of a frame
 *   plus one 64 KiB step, never an announced length; the assembler at most its message limit
 *   (twice, counting the unused rest of its blocks) plus one block;
 * - the same events for any split of the same bytes;
 * - encoder/parser round trip for any valid frame.
 * Settings (runs, seed, time) are in ./settings.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameParser, MessageAssembler, Opcode, ParseStatus, ProtocolError, encodeFrame, type Role } from '../../src/protocol/index.js';
import { PerMessageDeflate, defaultDeflateOptions, type DeflateParams } from '../../src/protocol/permessage-deflate.js';
import { FRAME_SEEDS } from './corpus.js';
import { TARGET_TIMEOUT, fuzzParams, mutated, split, splits } from './settings.js';

const LIMITS = { maxFrameSize: 1 << 20, maxMessageSize: 1 << 20, maxFragments: 64 };
const PARAMS: DeflateParams = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };
const STEP = 64 * 1024;
const BLOCK = 16 * 1024;
const KEY = 0x37fa213d;

type Event = { m: string; binary: boolean } | { control: number; payload: string } | { fail: string; close: number; message: string };

/** Run `chunks` through a parser and an assembler as Conn does; check the memory bounds after each chunk. */
function pipeline(chunks: Buffer[], role: Role, deflate: boolean): Event[] {
  const parser = new FrameParser({ role, allowRsv1: deflate, ...LIMITS });
  const codec = deflate ? new PerMessageDeflate(role, PARAMS, defaultDeflateOptions) : undefined;
  const assembler = new MessageAssembler({ maxMessageSize: LIMITS.maxMessageSize, inflater: codec });
  const events: Event[] = [];
  let total = 0;
  try {
    for (const chunk of chunks) {
      total += chunk.length;
      parser.push(Buffer.from(chunk)); // the parser owns (and unmasks in place) what it is given
      for (let guard = 0; ; guard++) {
        expect(guard, 'a frame consumes at least two bytes: the loop ends').toBeLessThanOrEqual(total / 2 + 1);
        const s = parser.advance();
        if (s === ParseStatus.NeedMore) break;
        if (s === ParseStatus.Fail) {
          const e = parser.error!;
          expect(e).toBeInstanceOf(ProtocolError);
          events.push({ fail: e.code, close: e.closeCode, message: e.message });
          return events;
        }
        if (parser.opcode >= 0x8) {
          events.push({ control: parser.opcode, payload: parser.payload.toString('hex') });
          continue;
        }
        const m = assembler.push(parser.payload, parser.fin, parser.messageOpcode === Opcode.Text, parser.compressed);
        if (m === null) {
          const e = assembler.error!;
          expect(e).toBeInstanceOf(ProtocolError);
          events.push({ fail: e.code, close: e.closeCode, message: e.message });
          return events;
        }
        if (m !== undefined) events.push({ m: m.toString('hex'), binary: parser.messageOpcode === Opcode.Binary });
      }
      expect(parser.held, 'the parser holds at most twice what arrived of a frame, plus one step').toBeLessThanOrEqual(2 * parser.buffered + STEP);
      expect(parser.buffered).toBeLessThanOrEqual(total);
      expect(assembler.buffered).toBeLessThanOrEqual(LIMITS.maxMessageSize);
      expect(assembler.held).toBeLessThanOrEqual(2 * LIMITS.maxMessageSize + BLOCK);
    }
  } finally {
    codec?.close();
  }
  return events;
}

/** The seeds as a client sends them: every frame that parses, masked. */
function masked(seed: Buffer): Buffer {
  const p = new FrameParser({ role: 'client', maxFrameSize: 1 << 30, maxMessageSize: 1 << 30, allowRsv1: true, maxFragments: 1 << 20 });
  p.push(Buffer.from(seed));
  const out: Buffer[] = [];
  while (p.advance() === ParseStatus.Frame) out.push(encodeFrame(p.opcode, p.payload, { fin: p.fin, rsv1: p.rsv1, maskKey: KEY }));
  return Buffer.concat(out);
}
const SERVER_SEEDS = FRAME_SEEDS.map(masked).filter((b) => b.length > 0);

describe('fuzz: frame parser and message pipeline', () => {
  for (const [role, seeds] of [['client', FRAME_SEEDS], ['server', SERVER_SEEDS]] as const) {
    for (const deflate of [false, true]) {
      it(`${role} side${deflate ? ', permessage-deflate' : ''}: never throws, stays within its limits, and gives the same events for any split`, () => {
        fc.assert(
          fc.property(mutated(seeds), splits(), (bytes, cuts) => {
            const whole = pipeline([bytes], role, deflate);
            expect(pipeline(split(bytes, cuts), role, deflate)).toEqual(whole);
          }),
          fuzzParams(),
        );
      }, TARGET_TIMEOUT);
    }
  }

  it('encoder/parser round trip: any valid frame parses back to itself and re-encodes to the same bytes', () => {
    const frame = fc.record({
      opcode: fc.constantFrom(Opcode.Text, Opcode.Binary, Opcode.Continuation, Opcode.Ping, Opcode.Pong, Opcode.Close),
      fin: fc.boolean(),
      rsv1: fc.boolean(),
      payload: fc.oneof(fc.uint8Array({ maxLength: 130 }), fc.uint8Array({ minLength: 65_530, maxLength: 65_540 })),
      mask: fc.option(fc.integer({ min: 0, max: 0xffffffff }), { nil: undefined }),
    });
    fc.assert(
      fc.property(frame, splits(), (f, cuts) => {
        const control = f.opcode >= 0x8;
        let payload = Buffer.from(control ? f.payload.subarray(0, 125) : f.payload);
        // Uncompressed text is checked for UTF-8 by the parser: give it text.
        if (f.opcode === Opcode.Text && !f.rsv1) payload = Buffer.from(payload.toString('latin1'), 'utf8');
        const fin = control || f.fin;
        const rsv1 = !control && f.opcode !== Opcode.Continuation && f.rsv1;
        const options = { fin, rsv1, ...(f.mask !== undefined ? { maskKey: f.mask } : {}) };
        const bytes = encodeFrame(f.opcode, payload, options);
        // A continuation needs a message to continue: put a started message first.
        const prefix = f.opcode === Opcode.Continuation ? encodeFrame(Opcode.Binary, Buffer.alloc(0), { fin: false, ...(f.mask !== undefined ? { maskKey: f.mask } : {}) }) : Buffer.alloc(0);
        const role: Role = f.mask !== undefined ? 'server' : 'client';
        const parser = new FrameParser({ role, maxFrameSize: 1 << 20, maxMessageSize: 1 << 20, allowRsv1: true });
        for (const c of split(Buffer.concat([prefix, bytes]), cuts)) parser.push(Buffer.from(c));
        if (prefix.length > 0) expect(parser.advance()).toBe(ParseStatus.Frame);
        expect(parser.advance()).toBe(ParseStatus.Frame);
        expect({ opcode: parser.opcode, fin: parser.fin, rsv1: parser.rsv1, masked: parser.masked }).toEqual({ opcode: f.opcode, fin, rsv1, masked: f.mask !== undefined });
        expect(parser.payload.equals(payload)).toBe(true);
        expect(encodeFrame(parser.opcode, parser.payload, options).equals(bytes)).toBe(true);
      }),
      fuzzParams(),
    );
  }, TARGET_TIMEOUT);

  it('compressed messages in any fragmentation inflate back to themselves (deflate, fragment, parse, assemble)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.boolean(), splits(), splits(), (data, text, fragCuts, chunkCuts) => {
        const message = text ? Buffer.from(Buffer.from(data).toString('latin1'), 'utf8') : Buffer.from(data);
        const client = new PerMessageDeflate('client', PARAMS, defaultDeflateOptions);
        const compressed = client.compress(message);
        client.close();
        const parts = split(compressed, fragCuts);
        const wire = Buffer.concat(
          parts.map((p, i) => encodeFrame(i === 0 ? (text ? Opcode.Text : Opcode.Binary) : Opcode.Continuation, p, { fin: i === parts.length - 1, rsv1: i === 0, maskKey: KEY })),
        );
        const events = pipeline(split(wire, chunkCuts), 'server', true);
        expect(events).toEqual([{ m: message.toString('hex'), binary: !text }]);
      }),
      fuzzParams(),
    );
  }, TARGET_TIMEOUT);
});
