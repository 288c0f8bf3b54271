/**
 * RFC 6455 §5.6 Data Frames and §8.1 Handling Errors in UTF-8-Encoded Data: "The 'Payload data'
 * [of a Text frame] is text data encoded as UTF-8"; "When an endpoint is to interpret a byte
 * stream as UTF-8 but finds that the byte stream is not, in fact, a valid UTF-8 stream, that
 * endpoint MUST _Fail the WebSocket Connection_" — with 1007 (§7.4.1).
 *
 * The parser fails on the first bad piece: the frame or chunk that brings the first byte that
 * cannot be part of valid UTF-8, across fragments and within a frame split over chunks
 * (Autobahn 6.4.*). A sequence cut short by the end of the message fails at the end (6.6.*, 6.14.*).
 */
import { describe, expect, it } from 'vitest';
import { CloseCode, ErrorCode, Opcode } from '../../src/protocol/index.js';
import { isUtf8Reference } from '../../src/protocol/utf8.js';
import {
  AUTOBAHN_UTF8,
  KEY,
  Rng,
  expectChunkInvariant,
  failEvent,
  feed,
  firstInvalidByte,
  frameEvent,
  frames,
  hex,
  makeParser,
  type Event,
  type FrameSpec,
} from '../protocol/helpers.js';

const NOT_UTF8 = failEvent(ErrorCode.InvalidUtf8, CloseCode.InvalidPayloadData, 'text message is not valid UTF-8');
const ENDS_INSIDE = failEvent(ErrorCode.InvalidUtf8, CloseCode.InvalidPayloadData, 'text message ends inside a UTF-8 sequence');
const KOSME = hex('ce ba e1 bd b9 cf 83 ce bc ce b5');

/**
 * The events a text message cut into these fragments must give: each fragment is delivered
 * until the one holding the first invalid byte, which fails (1007); a message that is only
 * truncated fails on its last fragment.
 */
function expectedTextEvents(fragments: readonly Buffer[], masked: boolean): Event[] {
  const whole = Buffer.concat(fragments);
  const firstBad = firstInvalidByte(whole);
  const events: Event[] = [];
  let start = 0;
  for (let i = 0; i < fragments.length; i++) {
    const end = start + fragments[i]!.length;
    const last = i === fragments.length - 1;
    if (firstBad >= 0 && firstBad < end) return [...events, NOT_UTF8];
    if (last && !isUtf8Reference(whole)) return [...events, ENDS_INSIDE];
    events.push(
      frameEvent({ opcode: i === 0 ? Opcode.Text : Opcode.Continuation, messageOpcode: Opcode.Text, payload: fragments[i]!, fin: last, masked }),
    );
    start = end;
  }
  return events;
}

function textMessage(fragments: readonly Buffer[], maskKey?: number): Buffer {
  const specs: Array<FrameSpec & { maskKey?: number }> = fragments.map((payload, i) => ({
    opcode: i === 0 ? Opcode.Text : Opcode.Continuation,
    payload,
    fin: i === fragments.length - 1,
    ...(maskKey === undefined ? {} : { maskKey }),
  }));
  return frames(...specs);
}

describe('RFC 6455 §8.1 the Autobahn 6.x byte sequences in a text message', () => {
  for (const { name, bytes, kind } of AUTOBAHN_UTF8) {
    const outcome = kind === 'valid' ? 'is delivered' : kind === 'invalid' ? 'fails with 1007' : 'fails with 1007 at the end of the message';
    it(`${name} ${outcome}: in one frame, in one-byte fragments, at any chunking`, () => {
      // One frame (Autobahn sends each case whole and chopped into 1-byte chunks).
      const one = kind === 'valid' ? [frameEvent({ opcode: Opcode.Text, payload: bytes, masked: true })] : [kind === 'invalid' ? NOT_UTF8 : ENDS_INSIDE];
      expectChunkInvariant(textMessage([bytes], KEY), 'server', one);
      // One byte per fragment (Autobahn's "fragmented into 1-octet frames").
      const fragments = Array.from(bytes, (b) => Buffer.from([b]));
      const events = expectedTextEvents(fragments, true);
      expectChunkInvariant(textMessage(fragments, KEY), 'server', events);
    });
  }
});

describe('RFC 6455 §8.1 fail fast: on the first bad piece, before the rest of the message arrives', () => {
  it('within one frame split over chunks: the chunk holding the first bad byte fails, whatever the rest (6.4.3, 6.4.4)', () => {
    for (const { name, bytes } of AUTOBAHN_UTF8.filter((c) => c.kind === 'invalid')) {
      const payload = Buffer.concat([KOSME, bytes, Buffer.from('-edited')]);
      const frame = textMessage([payload], KEY);
      const headerLen = frame.length - payload.length;
      const firstBad = firstInvalidByte(payload);
      // Only the header, κόσμε and the bytes up to the first bad one: the rest never comes.
      const chunk = frame.subarray(0, headerLen + firstBad + 1);
      expect(feed(makeParser('server'), [chunk]), name).toEqual([NOT_UTF8]);
      expect(feed(makeParser('server'), [chunk.subarray(0, headerLen + KOSME.length), chunk.subarray(headerLen + KOSME.length)]), name).toEqual([
        NOT_UTF8,
      ]);
    }
  });

  it('Autobahn 6.4.1: κόσμε | ED A0 80 | -edited in three fragments fails on the second fragment', () => {
    const bytes = textMessage([KOSME, hex('ed a0 80'), Buffer.from('edited')]);
    const twoFragments = bytes.subarray(0, 2 + KOSME.length + 2 + 3);
    expect(feed(makeParser('client'), [twoFragments])).toEqual([
      frameEvent({ opcode: Opcode.Text, payload: KOSME, fin: false }),
      NOT_UTF8,
    ]);
  });

  it('Autobahn 6.4.2: κόσμε | F4 90 80 80 | -edited in three fragments fails on the second fragment', () => {
    const fragments = [KOSME, hex('f4 90 80 80'), Buffer.from('-edited')];
    expectChunkInvariant(textMessage(fragments), 'client', [frameEvent({ opcode: Opcode.Text, payload: KOSME, fin: false }), NOT_UTF8]);
    const twoFragments = textMessage(fragments).subarray(0, 2 + KOSME.length + 2 + 4);
    expect(feed(makeParser('client'), [twoFragments])).toEqual([frameEvent({ opcode: Opcode.Text, payload: KOSME, fin: false }), NOT_UTF8]);
  });

  it('Autobahn 6.4.3: one frame sent in three chops, κόσμε | F4 90 80 80 | -edited, fails on the second chop', () => {
    const payload = Buffer.concat([KOSME, hex('f4 90 80 80'), Buffer.from('-edited')]);
    const frame = textMessage([payload], KEY);
    const p = makeParser('server');
    expect(feed(p, [frame.subarray(0, 6 + KOSME.length)])).toEqual([]);
    expect(feed(p, [frame.subarray(6 + KOSME.length, 6 + KOSME.length + 4)])).toEqual([NOT_UTF8]);
  });

  it('Autobahn 6.4.4: the bad sequence split so that its second byte (90 after F4) is the first bad one', () => {
    const payload = Buffer.concat([KOSME, hex('f4 90 80 80'), Buffer.from('-edited')]);
    const frame = textMessage([payload], KEY);
    const p = makeParser('server');
    expect(feed(p, [frame.subarray(0, 6 + KOSME.length + 1)])).toEqual([]); // ends in F4: could still be valid
    expect(feed(p, [frame.subarray(6 + KOSME.length + 1, 6 + KOSME.length + 2)])).toEqual([NOT_UTF8]);
  });

  it('a sequence opened by one fragment and broken by the next fails on the next, not at the end', () => {
    const bytes = textMessage([Buffer.concat([KOSME, hex('ed')]), hex('a0 80 61'), Buffer.from('tail')]);
    expectChunkInvariant(bytes, 'client', [frameEvent({ opcode: Opcode.Text, payload: Buffer.concat([KOSME, hex('ed')]), fin: false }), NOT_UTF8]);
  });
});

describe('RFC 6455 §8.1 a message that ends inside a UTF-8 sequence', () => {
  it('fails with 1007 on its last frame, in one frame or fragmented (6.6.*, 6.14.6, 6.14.7)', () => {
    expectChunkInvariant(textMessage([hex('ce')]), 'client', [ENDS_INSIDE]);
    expectChunkInvariant(textMessage([Buffer.concat([KOSME, hex('ce')]), Buffer.alloc(0)]), 'client', [
      frameEvent({ opcode: Opcode.Text, payload: Buffer.concat([KOSME, hex('ce')]), fin: false }),
      ENDS_INSIDE,
    ]);
    expectChunkInvariant(textMessage([Buffer.from('a'), hex('ef bf')]), 'client', [
      frameEvent({ opcode: Opcode.Text, payload: 'a', fin: false }),
      ENDS_INSIDE,
    ]);
  });

  it('a sequence still open when a control frame arrives between fragments is not an error yet', () => {
    const bytes = Buffer.concat([frames({ opcode: Opcode.Text, payload: hex('e2 82'), fin: false }), frames({ opcode: Opcode.Ping }), frames({ opcode: Opcode.Continuation, payload: hex('ac') })]);
    expectChunkInvariant(bytes, 'client', [
      frameEvent({ opcode: Opcode.Text, payload: hex('e2 82'), fin: false }),
      frameEvent({ opcode: Opcode.Ping }),
      frameEvent({ opcode: Opcode.Continuation, payload: hex('ac'), messageOpcode: Opcode.Text }),
    ]);
  });
});

describe('RFC 6455 §5.6 data frames', () => {
  it('a Binary message is not UTF-8 and is never checked as such', () => {
    const payload = hex('ed a0 80 f4 90 80 80 ff fe c0 af ce');
    expectChunkInvariant(frames({ opcode: Opcode.Binary, payload, maskKey: KEY }), 'server', [frameEvent({ opcode: Opcode.Binary, payload, masked: true })]);
  });

  it('empty Text and Binary messages are legal and delivered', () => {
    expectChunkInvariant(hex('81 00 82 00'), 'client', [frameEvent({ opcode: Opcode.Text }), frameEvent({ opcode: Opcode.Binary })]);
  });

  it('a message after a Binary message is checked from a fresh state', () => {
    expectChunkInvariant(hex('02 01 e2 80 00 81 01 61'), 'client', [
      frameEvent({ opcode: Opcode.Binary, payload: hex('e2'), fin: false }),
      frameEvent({ opcode: Opcode.Continuation, messageOpcode: Opcode.Binary }),
      frameEvent({ opcode: Opcode.Text, payload: 'a' }),
    ]);
  });

  it('RFC 7692: a compressed Text message is checked after inflation, not by the frame parser', () => {
    expectChunkInvariant(hex('c1 02 ff fe'), 'client', [frameEvent({ opcode: Opcode.Text, payload: hex('ff fe'), rsv1: true, compressed: true })], {
      allowRsv1: true,
    });
  });

  it('random text messages cut into random fragments: delivered up to the fragment with the first bad byte (model check)', () => {
    const rng = new Rng(0x7e47);
    let failures = 0;
    for (let trial = 0; trial < 300; trial++) {
      // Half UTF-8-ish noise, half real text with now and then one byte overwritten.
      let whole: Buffer;
      if (rng.bool()) {
        whole = rng.utf8ish(rng.range(0, 16));
      } else {
        whole = Buffer.from(String.fromCodePoint(...Array.from({ length: rng.range(0, 10) }, () => rng.pick([0x61, 0xe9, 0x20ac, 0x1f600, 0x10ffff]))));
        if (whole.length > 0 && rng.int(3) === 0) whole[rng.int(whole.length)] = rng.int(256);
      }
      const cuts = Array.from({ length: rng.int(4) }, () => rng.int(whole.length + 1)).sort((a, b) => a - b);
      const points = [0, ...cuts, whole.length];
      const fragments = points.slice(1).map((end, i) => whole.subarray(points[i], end));
      const expected = expectedTextEvents(fragments, false);
      if (expected[expected.length - 1]?.type === 'fail') failures++;
      expectChunkInvariant(textMessage(fragments), 'client', expected);
    }
    expect(failures, 'the generator must give both outcomes').toBeGreaterThan(50);
    expect(failures).toBeLessThan(250);
  });
});

