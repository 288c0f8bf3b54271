import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/constants.js';
import { ErrorCode, HandshakeError, ProtocolError } from '../../src/protocol/errors.js';
import { formatExtensions, parseExtensions } from '../../src/protocol/extensions.js';
import {
  PerMessageDeflate,
  acceptDeflateResponse,
  buildDeflateOffer,
  compressShared,
  defaultDeflateOptions,
  deflateParamsKey,
  negotiateDeflateServer,
} from '../../src/protocol/permessage-deflate.js';
import type { DeflateOptions, DeflateParams } from '../../src/protocol/permessage-deflate.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
// The negotiation tests below are written for 'dedicated' mode (context takeover unless asked);
// the default, 'shared', always adds server_no_context_takeover (its own test below).
const opts = (over: Partial<DeflateOptions> = {}): DeflateOptions => ({ ...defaultDeflateOptions, mode: 'dedicated', ...over });
const params = (s: boolean, c: boolean, sb: number, cb: number): DeflateParams => ({
  serverNoContextTakeover: s,
  clientNoContextTakeover: c,
  serverMaxWindowBits: sb,
  clientMaxWindowBits: cb,
});
const DEFAULT = params(false, false, 15, 15);

/** A tiny seeded PRNG, so that "random" tests are reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Compressible but varied text: words from a small vocabulary. */
function text(random: () => number, length: number): Buffer {
  const words = ['websocket', 'frame', 'deflate', 'window', 'message', '{"id":', '"type":"tick"', ',', ' ', '\n', '12345', 'zlib'];
  let s = '';
  while (s.length < length) s += words[Math.floor(random() * words.length)];
  return Buffer.from(s.slice(0, length));
}

function ok(result: Buffer | ProtocolError): Buffer {
  if (result instanceof ProtocolError) throw result;
  return result;
}

/** Feed `payload` as fragments split at `cuts`, and join what comes out. */
function inflateFragments(codec: PerMessageDeflate, payload: Uint8Array, cuts: number[], maxBytes = Infinity): Buffer {
  const out: Buffer[] = [];
  let start = 0;
  for (const cut of [...cuts, payload.length]) {
    out.push(ok(codec.decompress(payload.subarray(start, cut), cut === payload.length, maxBytes)));
    start = cut;
  }
  return Buffer.concat(out);
}

function randomCuts(random: () => number, length: number, count: number): number[] {
  const cuts = new Set<number>();
  for (let i = 0; i < count; i++) cuts.add(Math.floor(random() * length));
  return [...cuts].sort((a, b) => a - b);
}

describe('RFC 7692 §7.1 server: negotiating an offer', () => {
  // [offer header, options, expected response header (undefined: declined), expected params]
  const table: Array<[string, string, Partial<DeflateOptions>, string | undefined, DeflateParams | undefined]> = [
    ['accepts the browser offer with the default parameters', 'permessage-deflate; client_max_window_bits', {}, 'permessage-deflate', DEFAULT],
    ['accepts a bare offer', 'permessage-deflate', {}, 'permessage-deflate', DEFAULT],
    [
      'honours server_no_context_takeover',
      'permessage-deflate; server_no_context_takeover',
      {},
      'permessage-deflate; server_no_context_takeover',
      params(true, false, 15, 15),
    ],
    [
      'echoes client_no_context_takeover',
      'permessage-deflate; client_no_context_takeover',
      {},
      'permessage-deflate; client_no_context_takeover',
      params(false, true, 15, 15),
    ],
    [
      'answers an offered server_max_window_bits with the same value',
      'permessage-deflate; server_max_window_bits=10',
      {},
      'permessage-deflate; server_max_window_bits=10',
      params(false, false, 10, 15),
    ],
    [
      'answers server_max_window_bits=15 when it was offered',
      'permessage-deflate; server_max_window_bits=15',
      {},
      'permessage-deflate; server_max_window_bits=15',
      DEFAULT,
    ],
    [
      'accepts server_max_window_bits=8 (compressing with zlib at 9, see the windowBits tests)',
      'permessage-deflate; server_max_window_bits=8',
      {},
      'permessage-deflate; server_max_window_bits=8',
      params(false, false, 8, 15),
    ],
    [
      'uses an offered client_max_window_bits value',
      'permessage-deflate; client_max_window_bits=10',
      {},
      'permessage-deflate; client_max_window_bits=10',
      params(false, false, 15, 10),
    ],
    [
      'accepts a quoted value (RFC 6455 §9.1)',
      'permessage-deflate; client_max_window_bits="9"',
      {},
      'permessage-deflate; client_max_window_bits=9',
      params(false, false, 15, 9),
    ],
    [
      'accepts all four parameters together',
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=8',
      {},
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=8',
      params(true, true, 9, 8),
    ],
    ['declines an offer with a duplicate parameter', 'permessage-deflate; server_no_context_takeover; server_no_context_takeover', {}, undefined, undefined],
    ['declines an offer with a duplicate window parameter', 'permessage-deflate; client_max_window_bits=10; client_max_window_bits=10', {}, undefined, undefined],
    ['declines an offer with an unknown parameter', 'permessage-deflate; foo', {}, undefined, undefined],
    ['declines server_max_window_bits below 8', 'permessage-deflate; server_max_window_bits=7', {}, undefined, undefined],
    ['declines server_max_window_bits above 15', 'permessage-deflate; server_max_window_bits=16', {}, undefined, undefined],
    ['declines server_max_window_bits with a leading zero', 'permessage-deflate; server_max_window_bits=09', {}, undefined, undefined],
    ['declines server_max_window_bits that is not a number', 'permessage-deflate; server_max_window_bits=ten', {}, undefined, undefined],
    ['declines server_max_window_bits without a value', 'permessage-deflate; server_max_window_bits', {}, undefined, undefined],
    ['declines client_max_window_bits out of range', 'permessage-deflate; client_max_window_bits=7', {}, undefined, undefined],
    ['declines server_no_context_takeover with a value', 'permessage-deflate; server_no_context_takeover=1', {}, undefined, undefined],
    ['declines client_no_context_takeover with a value', 'permessage-deflate; client_no_context_takeover=true', {}, undefined, undefined],
    ['declines when nothing is offered', '', {}, undefined, undefined],
    ['declines other extensions', 'x-webkit-deflate-frame, deflate-frame', {}, undefined, undefined],
    [
      'skips an unusable first offer and accepts the next',
      'permessage-deflate; server_max_window_bits=7, permessage-deflate; foo, permessage-deflate; client_max_window_bits',
      {},
      'permessage-deflate',
      DEFAULT,
    ],
    [
      'skips other extensions before the offer',
      'x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=12',
      {},
      'permessage-deflate; server_max_window_bits=12',
      params(false, false, 12, 15),
    ],
    [
      'mode shared always answers server_no_context_takeover',
      'permessage-deflate; client_max_window_bits',
      { mode: 'shared' },
      'permessage-deflate; server_no_context_takeover',
      params(true, false, 15, 15),
    ],
    [
      'serverNoContextTakeover imposes server_no_context_takeover',
      'permessage-deflate',
      { serverNoContextTakeover: true },
      'permessage-deflate; server_no_context_takeover',
      params(true, false, 15, 15),
    ],
    [
      'clientNoContextTakeover imposes client_no_context_takeover (§7.1.1.2)',
      'permessage-deflate',
      { clientNoContextTakeover: true },
      'permessage-deflate; client_no_context_takeover',
      params(false, true, 15, 15),
    ],
    [
      'a smaller serverMaxWindowBits is announced unasked (§7.1.2.1)',
      'permessage-deflate',
      { serverMaxWindowBits: 10 },
      'permessage-deflate; server_max_window_bits=10',
      params(false, false, 10, 15),
    ],
    [
      'the smaller of the offered and configured server windows wins (configured)',
      'permessage-deflate; server_max_window_bits=12',
      { serverMaxWindowBits: 10 },
      'permessage-deflate; server_max_window_bits=10',
      params(false, false, 10, 15),
    ],
    [
      'the smaller of the offered and configured server windows wins (offered)',
      'permessage-deflate; server_max_window_bits=9',
      { serverMaxWindowBits: 10 },
      'permessage-deflate; server_max_window_bits=9',
      params(false, false, 9, 15),
    ],
    [
      'a smaller clientMaxWindowBits is answered when the client supports it',
      'permessage-deflate; client_max_window_bits',
      { clientMaxWindowBits: 10 },
      'permessage-deflate; client_max_window_bits=10',
      params(false, false, 15, 10),
    ],
    [
      'the smaller of the offered and configured client windows wins',
      'permessage-deflate; client_max_window_bits=12',
      { clientMaxWindowBits: 10 },
      'permessage-deflate; client_max_window_bits=10',
      params(false, false, 15, 10),
    ],
    [
      'an offer without client_max_window_bits is declined when the client window must be limited (§7.1.2.2)',
      'permessage-deflate',
      { clientMaxWindowBits: 10 },
      undefined,
      undefined,
    ],
    [
      'falls back to a later offer that allows the client window limit',
      'permessage-deflate; server_no_context_takeover, permessage-deflate; client_max_window_bits',
      { clientMaxWindowBits: 11 },
      'permessage-deflate; client_max_window_bits=11',
      params(false, false, 15, 11),
    ],
  ];

  for (const [rule, offer, over, response, expected] of table) {
    it(rule, () => {
      const result = negotiateDeflateServer(parseExtensions(offer), opts(over));
      if (response === undefined) {
        expect(result).toBeUndefined();
      } else {
        expect(result).toBeDefined();
        expect(formatExtensions([result!.response])).toBe(response);
        expect(result!.params).toEqual(expected);
      }
    });
  }
});

describe('the default mode', () => {
  it("is 'shared': the server always answers server_no_context_takeover (§7.1.1.1)", () => {
    expect(defaultDeflateOptions.mode).toBe('shared');
    const result = negotiateDeflateServer(parseExtensions('permessage-deflate; client_max_window_bits'), defaultDeflateOptions);
    expect(formatExtensions([result!.response])).toBe('permessage-deflate; server_no_context_takeover');
    expect(result!.params).toEqual({ serverNoContextTakeover: true, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 });
  });
});

describe('RFC 7692 §7.1 client: the offer', () => {
  it('offers client_max_window_bits without a value by default', () => {
    expect(formatExtensions([buildDeflateOffer(defaultDeflateOptions)])).toBe('permessage-deflate; client_max_window_bits');
  });

  it('offers every configured parameter', () => {
    const offer = buildDeflateOffer(
      opts({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 12 }),
    );
    expect(formatExtensions([offer])).toBe(
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12',
    );
  });
});

describe('RFC 7692 §7.1 client: checking the response', () => {
  const accepted: Array<[string, string, Partial<DeflateOptions>, DeflateParams | undefined]> = [
    ['a response without the extension means it was declined', '', {}, undefined],
    ['a bare response means the default parameters', 'permessage-deflate', {}, DEFAULT],
    ['server_no_context_takeover in the response applies', 'permessage-deflate; server_no_context_takeover', {}, params(true, false, 15, 15)],
    ['the server may impose client_no_context_takeover (§7.1.1.2)', 'permessage-deflate; client_no_context_takeover', {}, params(false, true, 15, 15)],
    ['the server may announce server_max_window_bits unasked', 'permessage-deflate; server_max_window_bits=10', {}, params(false, false, 10, 15)],
    ['the server may set client_max_window_bits when we offered it', 'permessage-deflate; client_max_window_bits=8', {}, params(false, false, 15, 8)],
    ['a smaller server_max_window_bits than requested is accepted', 'permessage-deflate; server_max_window_bits=9', { serverMaxWindowBits: 10 }, params(false, false, 9, 15)],
    ['our client_max_window_bits limit holds when the server does not answer it', 'permessage-deflate', { clientMaxWindowBits: 10 }, params(false, false, 15, 10)],
    ['a smaller client_max_window_bits than offered is used', 'permessage-deflate; client_max_window_bits=9', { clientMaxWindowBits: 10 }, params(false, false, 15, 9)],
    ['our client_no_context_takeover promise holds', 'permessage-deflate', { clientNoContextTakeover: true }, params(false, true, 15, 15)],
    [
      'an accepted server_no_context_takeover request applies',
      'permessage-deflate; server_no_context_takeover',
      { serverNoContextTakeover: true },
      params(true, false, 15, 15),
    ],
  ];
  for (const [rule, response, over, expected] of accepted) {
    it(rule, () => {
      expect(acceptDeflateResponse(parseExtensions(response), opts(over))).toEqual(expected);
    });
  }

  const failures: Array<[string, string, Partial<DeflateOptions>, string]> = [
    ['an unknown parameter fails', 'permessage-deflate; foo=1', {}, 'unknown parameter foo'],
    ['a duplicate parameter fails', 'permessage-deflate; server_no_context_takeover; server_no_context_takeover', {}, 'duplicate parameter server_no_context_takeover'],
    ['client_max_window_bits without a value fails (§7.1.2.2)', 'permessage-deflate; client_max_window_bits', {}, 'invalid value for client_max_window_bits: (none)'],
    ['client_max_window_bits out of range fails', 'permessage-deflate; client_max_window_bits=16', {}, 'invalid value for client_max_window_bits: 16'],
    ['server_max_window_bits below 8 fails', 'permessage-deflate; server_max_window_bits=7', {}, 'invalid value for server_max_window_bits: 7'],
    ['server_max_window_bits without a value fails', 'permessage-deflate; server_max_window_bits', {}, 'invalid value for server_max_window_bits: (none)'],
    ['server_no_context_takeover with a value fails', 'permessage-deflate; server_no_context_takeover=x', {}, 'parameter server_no_context_takeover must have no value'],
    ['client_no_context_takeover with a value fails', 'permessage-deflate; client_no_context_takeover=x', {}, 'parameter client_no_context_takeover must have no value'],
    ['the extension twice fails', 'permessage-deflate, permessage-deflate', {}, 'permessage-deflate appears more than once'],
    ['an extension we did not offer fails', 'x-foo', {}, 'the server accepted x-foo, which was not offered'],
    [
      'a requested server_no_context_takeover must be accepted (§7.1.1.1)',
      'permessage-deflate',
      { serverNoContextTakeover: true },
      'server_no_context_takeover was requested but not accepted',
    ],
    [
      'a requested server_max_window_bits must be answered (§7.1.2.1)',
      'permessage-deflate',
      { serverMaxWindowBits: 10 },
      'server_max_window_bits was requested but not accepted',
    ],
    [
      'server_max_window_bits above the requested value fails (§7.1.2.1)',
      'permessage-deflate; server_max_window_bits=12',
      { serverMaxWindowBits: 10 },
      'server_max_window_bits=12 exceeds the requested 10',
    ],
    [
      'client_max_window_bits above the offered value fails (§7.1.2.2)',
      'permessage-deflate; client_max_window_bits=12',
      { clientMaxWindowBits: 10 },
      'client_max_window_bits=12 exceeds the offered 10',
    ],
  ];
  for (const [rule, response, over, message] of failures) {
    it(rule, () => {
      let caught: unknown;
      try {
        acceptDeflateResponse(parseExtensions(response), opts(over));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(HandshakeError);
      expect((caught as HandshakeError).code).toBe(ErrorCode.HandshakeFailed);
      expect((caught as HandshakeError).message).toBe(`Invalid permessage-deflate response: ${message}`);
    });
  }

  it('client_max_window_bits in a response fails when the offer did not have it (§7.1.2.2)', () => {
    const offer = { name: 'permessage-deflate', params: [] };
    expect(() => acceptDeflateResponse(parseExtensions('permessage-deflate; client_max_window_bits=10'), defaultDeflateOptions, offer)).toThrow(
      'Invalid permessage-deflate response: client_max_window_bits was not offered',
    );
    expect(acceptDeflateResponse(parseExtensions('permessage-deflate'), defaultDeflateOptions, offer)).toEqual(DEFAULT);
  });

  it('both ends agree on the parameters for every combination of options', () => {
    const bits = [8, 10, 15];
    for (const sNct of [false, true])
      for (const cNct of [false, true])
        for (const sb of bits)
          for (const cb of bits)
            for (const mode of ['dedicated', 'shared'] as const) {
              const client = opts({ serverNoContextTakeover: sNct, clientNoContextTakeover: cNct, serverMaxWindowBits: sb, clientMaxWindowBits: cb });
              const server = opts({ serverMaxWindowBits: bits[(sb + cb) % 3]!, clientMaxWindowBits: bits[(sb * 2 + cb) % 3]!, mode });
              const offer = parseExtensions(formatExtensions([buildDeflateOffer(client)]));
              const negotiated = negotiateDeflateServer(offer, server)!;
              expect(negotiated).toBeDefined();
              const response = parseExtensions(formatExtensions([negotiated.response]));
              expect(acceptDeflateResponse(response, client)).toEqual(negotiated.params);
            }
  });
});

describe('RFC 7692 §7.2.3 golden vectors', () => {
  const HELLO = Buffer.from('Hello');

  it('§7.2.3.1 "Hello" compresses to f2 48 cd c9 c9 07 00 in both roles', () => {
    for (const role of ['server', 'client'] as const) {
      const codec = new PerMessageDeflate(role, DEFAULT, defaultDeflateOptions);
      expect(codec.compress(HELLO).toString('hex')).toBe('f248cdc9c90700');
      codec.close();
    }
  });

  it('§7.2.3.1 f2 48 cd c9 c9 07 00 inflates to "Hello", whole and in two fragments', () => {
    const codec = new PerMessageDeflate('client', DEFAULT, defaultDeflateOptions);
    expect(ok(codec.decompress(hex('f2 48 cd c9 c9 07 00'), true, 100)).toString()).toBe('Hello');
    const codec2 = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
    const a = ok(codec2.decompress(hex('f2 48 cd'), false, 100));
    const b = ok(codec2.decompress(hex('c9 c9 07 00'), true, 100));
    expect(Buffer.concat([a, b]).toString()).toBe('Hello');
  });

  it('§7.2.3.2 with context takeover the second "Hello" compresses to f2 00 11 00 00', () => {
    const codec = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
    expect(codec.compress(HELLO).toString('hex')).toBe('f248cdc9c90700');
    expect(codec.compress(HELLO).toString('hex')).toBe('f200110000');
    const peer = new PerMessageDeflate('client', DEFAULT, defaultDeflateOptions);
    expect(ok(peer.decompress(hex('f248cdc9c90700'), true, 100)).toString()).toBe('Hello');
    expect(ok(peer.decompress(hex('f200110000'), true, 100)).toString()).toBe('Hello');
  });

  it('§7.2.3.2 without context takeover every "Hello" compresses to the same bytes', () => {
    const codec = new PerMessageDeflate('server', params(true, false, 15, 15), defaultDeflateOptions);
    for (let i = 0; i < 3; i++) expect(codec.compress(HELLO).toString('hex')).toBe('f248cdc9c90700');
    const client = new PerMessageDeflate('client', params(false, true, 15, 15), defaultDeflateOptions);
    for (let i = 0; i < 3; i++) expect(client.compress(HELLO).toString('hex')).toBe('f248cdc9c90700');
  });

  it('§7.2.3.3 a stored (uncompressed) block inflates to "Hello"', () => {
    const codec = new PerMessageDeflate('client', DEFAULT, defaultDeflateOptions);
    expect(ok(codec.decompress(hex('00 05 00 fa ff 48 65 6c 6c 6f 00'), true, 100)).toString()).toBe('Hello');
  });

  it('§7.2.3.4 a message ending with a BFINAL block inflates, and the next message still works', () => {
    const codec = new PerMessageDeflate('client', DEFAULT, defaultDeflateOptions);
    expect(ok(codec.decompress(hex('f3 48 cd c9 c9 07 00'), true, 100)).toString()).toBe('Hello');
    expect(ok(codec.decompress(hex('f3 48 cd c9 c9 07 00 00'), true, 100)).toString()).toBe('Hello');
    expect(ok(codec.decompress(hex('f2 48 cd c9 c9 07 00'), true, 100)).toString()).toBe('Hello');
    expect(ok(codec.decompress(zlib.deflateRawSync(HELLO), true, 100)).toString()).toBe('Hello');
    expect(ok(codec.decompress(hex('f2 48 cd c9 c9 07 00'), true, 100)).toString()).toBe('Hello');
  });

  it('§7.2.3.5 two DEFLATE blocks in one message inflate to "Hello"', () => {
    const codec = new PerMessageDeflate('client', DEFAULT, defaultDeflateOptions);
    expect(ok(codec.decompress(hex('f2 48 05 00 00 00 ff ff ca c9 c9 07 00'), true, 100)).toString()).toBe('Hello');
  });

  it('§7.2.3.6 an empty final fragment (00) ends a message', () => {
    const codec = new PerMessageDeflate('client', DEFAULT, defaultDeflateOptions);
    const a = ok(codec.decompress(hex('f2 48 cd c9 c9 07 00 00 00 ff ff'), false, 100));
    const b = ok(codec.decompress(hex('00'), true, 100));
    expect(Buffer.concat([a, b]).toString()).toBe('Hello');
  });

  it('§7.2.3.6 an empty message compresses to 00 and inflates back to nothing', () => {
    const codec = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
    expect(codec.compress(Buffer.alloc(0)).toString('hex')).toBe('00');
    const peer = new PerMessageDeflate('client', DEFAULT, defaultDeflateOptions);
    expect(ok(peer.decompress(hex('00'), true, 0))).toHaveLength(0);
    expect(ok(peer.decompress(Buffer.alloc(0), true, 0))).toHaveLength(0);
  });

  it('every vector inflates the same when fed one byte at a time', () => {
    for (const v of ['f248cdc9c90700', '0005 00faff 48656c6c6f 00', 'f2480500 0000ffff cac9c90700', 'f348cdc9c90700']) {
      const bytes = hex(v);
      const codec = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
      const cuts = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
      expect(inflateFragments(codec, bytes, cuts, 100).toString()).toBe('Hello');
    }
  });
});

describe('RFC 7692 §7.2.2 decompression failures', () => {
  it('corrupt data fails with 1007 InvalidPayloadData', () => {
    const codec = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
    const err = codec.decompress(hex('ff ff ff ff'), true, 1000);
    expect(err).toBeInstanceOf(ProtocolError);
    const e = err as ProtocolError;
    expect(e.code).toBe(ErrorCode.InflateFailed);
    expect(e.closeCode).toBe(CloseCode.InvalidPayloadData);
    expect(e.message).toMatch(/^Invalid compressed data: /);
    // The codec stays failed: the connection is being closed.
    expect(codec.decompress(hex('f248cdc9c90700'), true, 1000)).toBe(err);
  });

  it('a back-reference past the start of the stream fails with 1007', () => {
    const codec = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
    // The second "Hello" of §7.2.3.2 refers to the first, which this inflater never saw.
    const err = codec.decompress(hex('f2 00 11 00 00'), true, 1000) as ProtocolError;
    expect(err.closeCode).toBe(CloseCode.InvalidPayloadData);
    expect(err.message).toBe('Invalid compressed data: invalid distance too far back');
  });

  it('a peer without context takeover may not refer to an earlier message (§7.1.1)', () => {
    const codec = new PerMessageDeflate('client', params(true, false, 15, 15), defaultDeflateOptions);
    expect(ok(codec.decompress(hex('f248cdc9c90700'), true, 100)).toString()).toBe('Hello');
    expect((codec.decompress(hex('f200110000'), true, 100) as ProtocolError).closeCode).toBe(CloseCode.InvalidPayloadData);
  });

  it('a message of exactly maxBytes passes and one more byte fails with 1009', () => {
    const data = Buffer.alloc(5000, 'a');
    const sender = new PerMessageDeflate('client', DEFAULT, defaultDeflateOptions);
    const payload = sender.compress(data);
    expect(ok(new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions).decompress(payload, true, 5000))).toHaveLength(5000);
    const err = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions).decompress(payload, true, 4999) as ProtocolError;
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.code).toBe(ErrorCode.PayloadTooBig);
    expect(err.closeCode).toBe(CloseCode.MessageTooBig);
    expect(err.message).toBe('Inflated message exceeds the limit of 4999 bytes');
  });

  it('the limit counts the whole message across fragments and restarts with the next message', () => {
    const sender = new PerMessageDeflate('client', DEFAULT, defaultDeflateOptions);
    const payload = sender.compress(randomBytes(3000));
    const receiver = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
    expect(inflateFragments(receiver, payload, [1000, 2000], 3000)).toHaveLength(3000);
    const again = sender.compress(randomBytes(3000));
    expect(inflateFragments(receiver, again, [1500], 3000)).toHaveLength(3000);
    const tooBig = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
    expect(ok(tooBig.decompress(payload.subarray(0, 1500), false, 2000)).length).toBeLessThanOrEqual(2000);
    expect((tooBig.decompress(payload.subarray(1500), true, 2000) as ProtocolError).closeCode).toBe(CloseCode.MessageTooBig);
  });

  it('a compression bomb stops at the limit: 100 KB inflating to 100 MB fails with 1009 early', () => {
    // 1 MiB of zeros sync-flushed, repeated 100 times: a valid stream of ~100 KB (no final block).
    const part = zlib.deflateRawSync(Buffer.alloc(1 << 20), { level: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const bomb = Buffer.concat(Array.from({ length: 100 }, () => part)).subarray(0, part.length * 100 - 4);
    expect(bomb.length).toBeLessThan(110_000);
    const codec = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
    const before = process.memoryUsage().arrayBuffers;
    const t0 = process.hrtime.bigint();
    const err = codec.decompress(bomb, true, 1 << 20);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).closeCode).toBe(CloseCode.MessageTooBig);
    // Inflating all 100 MB would take ~100 ms and 100 MB; stopping at 1 MiB takes ~1 ms.
    expect(grown).toBeLessThan(8 << 20);
    expect(ms).toBeLessThan(50);
    // The same bomb fed in 1 KB frames stops at the same place.
    const framed = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
    let result: Buffer | ProtocolError = Buffer.alloc(0);
    let inflated = 0;
    for (let off = 0; off < bomb.length && !(result instanceof ProtocolError); off += 1024) {
      const end = Math.min(off + 1024, bomb.length);
      result = framed.decompress(bomb.subarray(off, end), end === bomb.length, 1 << 20);
      if (!(result instanceof ProtocolError)) inflated += result.length;
    }
    expect(result).toBeInstanceOf(ProtocolError);
    expect(inflated).toBeLessThanOrEqual(1 << 20);
  });
});

describe('RFC 7692 §7.2 round trips', () => {
  it('random messages round-trip with context takeover, server to client and client to server', () => {
    const random = rng(1);
    const server = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
    const client = new PerMessageDeflate('client', DEFAULT, defaultDeflateOptions);
    for (let i = 0; i < 200; i++) {
      const size = Math.floor(random() * (i % 10 === 0 ? 200_000 : 3000));
      const data = i % 3 === 0 ? randomBytes(size) : text(random, size);
      const [from, to] = i % 2 === 0 ? [server, client] : [client, server];
      const payload = from.compress(data);
      const out = inflateFragments(to, payload, randomCuts(random, payload.length, i % 4), 1 << 20);
      expect(out.equals(data)).toBe(true);
    }
    server.close();
    client.close();
  });

  it('context takeover makes a repeated message smaller', () => {
    const random = rng(2);
    const data = text(random, 2000);
    const codec = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
    const first = codec.compress(data);
    const second = codec.compress(data);
    expect(second.length).toBeLessThan(first.length / 3);
  });

  it('no context takeover round-trips, and the output of a shared compressor inflates from an empty window', () => {
    const random = rng(3);
    const p = params(true, true, 12, 11);
    const o = opts({ mode: 'shared' });
    const server = new PerMessageDeflate('server', p, o);
    const client = new PerMessageDeflate('client', p, o);
    for (let i = 0; i < 100; i++) {
      const data = text(random, Math.floor(random() * 5000));
      const payload = server.compress(data);
      expect(ok(client.decompress(payload, true, 1 << 20)).equals(data)).toBe(true);
      // A brand-new inflater (what any other subscriber of a broadcast has in effect).
      const fresh = new PerMessageDeflate('client', p, opts());
      expect(ok(fresh.decompress(compressShared(data, p, o), true, 1 << 20)).equals(data)).toBe(true);
      fresh.close();
      const back = client.compress(data);
      expect(ok(server.decompress(back, true, 1 << 20)).equals(data)).toBe(true);
    }
  });

  it('a message larger than one zlib chunk (64 KiB) round-trips in both directions', () => {
    const data = text(rng(4), 1_000_000);
    const a = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
    const b = new PerMessageDeflate('client', DEFAULT, defaultDeflateOptions);
    expect(ok(b.decompress(a.compress(data), true, 1_000_000)).equals(data)).toBe(true);
    const incompressible = randomBytes(300_000);
    expect(ok(a.decompress(b.compress(incompressible), true, 300_000)).equals(incompressible)).toBe(true);
  });

  it('accepts plain Uint8Array views with a byte offset in both directions', () => {
    const codec = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
    const backing = new Uint8Array(16);
    backing.set(new TextEncoder().encode('Hello'), 7);
    const payload = codec.compress(backing.subarray(7, 12));
    expect(payload.toString('hex')).toBe('f248cdc9c90700');
    const wire = new Uint8Array(payload.length + 5);
    wire.set(payload, 5);
    const peer = new PerMessageDeflate('client', DEFAULT, defaultDeflateOptions);
    expect(ok(peer.decompress(wire.subarray(5), true, 100)).toString()).toBe('Hello');
  });

  it('the returned payloads are not overwritten by later calls', () => {
    const codec = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
    const peer = new PerMessageDeflate('client', DEFAULT, defaultDeflateOptions);
    const p1 = codec.compress(Buffer.from('first message'));
    const copy = Buffer.from(p1);
    const d1 = ok(peer.decompress(p1, true, 100));
    codec.compress(Buffer.from('a different second message'));
    ok(peer.decompress(codec.compress(Buffer.from('third')), true, 100));
    expect(p1.equals(copy)).toBe(true);
    expect(d1.toString()).toBe('first message');
  });
});

describe('RFC 7692 §7.1.2 window sizes', () => {
  /** Messages that repeat a 300..2000-byte-old random block, so only a large window finds it. */
  function distantRepeats(random: () => number): Buffer[] {
    const block = randomBytes(64);
    return Array.from({ length: 30 }, (_, i) => Buffer.concat([block, randomBytes(250 + Math.floor(random() * (i * 60))), block]));
  }

  for (let bits = 8; bits <= 15; bits++) {
    it(`windowBits ${bits}: our output inflates with a window of exactly 2^${bits} bytes, in both roles`, () => {
      const random = rng(bits);
      const p = params(false, false, bits, bits);
      for (const [fromRole, toRole] of [['server', 'client'], ['client', 'server']] as const) {
        const from = new PerMessageDeflate(fromRole, p, defaultDeflateOptions);
        const to = new PerMessageDeflate(toRole, p, defaultDeflateOptions);
        for (const data of distantRepeats(random)) {
          expect(ok(to.decompress(from.compress(data), true, 1 << 20)).equals(data)).toBe(true);
        }
      }
    });
  }

  it('windowBits 8: zlib cannot deflate with 8, and its 9-bit output never reaches back more than 256 bytes', () => {
    // Independent of our codec: a raw zlib deflater at 9 bits, an inflater at 8, context kept.
    const random = rng(99);
    const deflater = new PerMessageDeflate('server', params(false, false, 9, 15), defaultDeflateOptions);
    const inflater = new PerMessageDeflate('client', params(false, false, 8, 15), defaultDeflateOptions);
    for (let i = 0; i < 300; i++) {
      const block = randomBytes(20 + Math.floor(random() * 300));
      const data = Buffer.concat([block, randomBytes(Math.floor(random() * 400)), block, text(random, 200), block]);
      expect(ok(inflater.decompress(deflater.compress(data), true, 1 << 20)).equals(data)).toBe(true);
    }
  });

  it('the inflater enforces the negotiated window: a 15-bit stream fails a 2^8 window with 1007', () => {
    const block = randomBytes(300);
    const wide = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
    const narrow = new PerMessageDeflate('client', params(false, false, 8, 15), defaultDeflateOptions);
    ok(narrow.decompress(wide.compress(block), true, 1000));
    const err = narrow.decompress(wide.compress(block), true, 1000) as ProtocolError;
    expect(err.closeCode).toBe(CloseCode.InvalidPayloadData);
    expect(err.message).toBe('Invalid compressed data: invalid distance too far back');
  });
});

describe('broadcast and life cycle', () => {
  it('deflateParamsKey depends only on what shapes the server compressor output', () => {
    expect(deflateParamsKey(params(true, false, 15, 15))).toBe(deflateParamsKey(params(true, true, 15, 9)));
    expect(deflateParamsKey(params(true, false, 15, 15))).not.toBe(deflateParamsKey(params(true, false, 12, 15)));
    expect(deflateParamsKey(params(true, false, 15, 15))).not.toBe(deflateParamsKey(params(false, false, 15, 15)));
    // 8 is compressed with a 9-bit window, so the two share their bytes.
    expect(deflateParamsKey(params(true, false, 8, 15))).toBe(deflateParamsKey(params(true, false, 9, 15)));
  });

  it('the shared compressor is reset before each message, whoever used it last', () => {
    // Codecs without context takeover and broadcasts (compressShared) take turns on the thread's
    // one compressor. Every payload must inflate from an empty window: without the reset, the
    // repeated text would come out as a short back-reference into the other user's message.
    const p = params(true, false, 15, 15);
    const o = opts({ mode: 'shared', level: 1, memLevel: 8 });
    const a = new PerMessageDeflate('server', p, o);
    const b = new PerMessageDeflate('server', p, o);
    const data = text(rng(7), 1000);
    const first = a.compress(data);
    const payloads = [first, b.compress(data), compressShared(data, p, o), a.compress(data), b.compress(data), a.compress(data)];
    for (const payload of payloads) {
      const fresh = new PerMessageDeflate('client', p, opts());
      expect(ok(fresh.decompress(payload, true, 1 << 20)).equals(data)).toBe(true);
      expect(payload.length).toBeGreaterThan(first.length / 2);
      fresh.close();
    }
    a.close();
    b.close();
  });

  it('compressShared produces the RFC 7692 §7.2.3.1 bytes and needs no earlier context', () => {
    const p = params(true, false, 10, 15);
    compressShared(text(rng(6), 3000), p, defaultDeflateOptions);
    expect(compressShared(Buffer.from('Hello'), p, defaultDeflateOptions).toString('hex')).toBe('f248cdc9c90700');
    const data = text(rng(5), 4000);
    for (let i = 0; i < 3; i++) {
      const peer = new PerMessageDeflate('client', p, defaultDeflateOptions);
      expect(ok(peer.decompress(compressShared(data, p, defaultDeflateOptions), true, 1 << 20)).equals(data)).toBe(true);
    }
  });

  it('close() is idempotent and later calls fail cleanly', () => {
    const codec = new PerMessageDeflate('server', DEFAULT, defaultDeflateOptions);
    codec.compress(Buffer.from('x'));
    ok(codec.decompress(hex('f248cdc9c90700'), true, 100));
    codec.close();
    codec.close();
    expect(() => codec.compress(Buffer.from('x'))).toThrow('permessage-deflate codec is closed');
    expect((codec.decompress(hex('f248cdc9c90700'), true, 100) as ProtocolError).code).toBe(ErrorCode.InflateFailed);
  });

  it('close() before any use holds nothing and does not throw', () => {
    new PerMessageDeflate('client', DEFAULT, defaultDeflateOptions).close();
  });
});

describe('interoperability with ws', () => {
  // ws's PerMessageDeflate is asynchronous; these check our bytes against another implementation.
  const require = createRequire(import.meta.url);
  // ws does not export this module; load it by path next to its package entry.
  const wsDir = require.resolve('ws').replace(/index\.js$/, '');
  const WsDeflate = require(`${wsDir}lib/permessage-deflate.js`) as new (o: object) => {
    accept(c: object[]): object;
    compress(data: Buffer, fin: boolean, cb: (err: Error | null, out?: Buffer) => void): void;
    decompress(data: Buffer, fin: boolean, cb: (err: Error | null, out?: Buffer) => void): void;
    cleanup(): void;
  };
  const call = (fn: (cb: (err: Error | null, out?: Buffer) => void) => void): Promise<Buffer> =>
    new Promise((resolve, reject) => fn((err, out) => (err ? reject(err) : resolve(out!))));

  for (const [label, wsOffer, ours] of [
    ['context takeover', {}, DEFAULT],
    ['no context takeover, 10-bit windows', { server_no_context_takeover: [true], client_no_context_takeover: [true], server_max_window_bits: ['10'], client_max_window_bits: ['10'] }, params(true, true, 10, 10)],
  ] as const) {
    it(`our client and a ws server exchange 50 messages (${label})`, async () => {
      const ws = new WsDeflate({ isServer: true, threshold: 0 });
      ws.accept([{ ...wsOffer }]);
      const client = new PerMessageDeflate('client', ours, defaultDeflateOptions);
      const random = rng(7);
      for (let i = 0; i < 50; i++) {
        const data = text(random, Math.floor(random() * 4000));
        const fromWs = await call((cb) => ws.compress(data, true, cb));
        expect(ok(client.decompress(fromWs, true, 1 << 20)).equals(data)).toBe(true);
        const toWs = await call((cb) => ws.decompress(client.compress(data), true, cb));
        expect(toWs.equals(data)).toBe(true);
      }
      ws.cleanup();
      client.close();
    });
  }
});
