/**
 * The synchronous deflate path drives Node's zlib handle internals (src/protocol/zlib-sync.ts).
 * CI runs this file on every supported Node (20, 22, 24): a change in those internals fails here,
 * by name, instead of silently sending every message through the slower fallback.
 */
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { PerMessageDeflate, defaultDeflateOptions } from '../../src/protocol/permessage-deflate.js';
import { SyncZlib, forceSyncZlib, syncZlibAvailable } from '../../src/protocol/zlib-sync.js';

afterEach(() => forceSyncZlib(undefined));

const text = (n: number): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = 97 + ((i * 7 + (i >> 5)) % 23);
  return b;
};

describe(`zlib handle internals on Node ${process.version}`, () => {
  it('a DeflateRaw and an InflateRaw stream have _handle.writeSync, _handle.reset and a Uint32Array _writeState', () => {
    for (const stream of [zlib.createDeflateRaw(), zlib.createInflateRaw()]) {
      const s = stream as unknown as { _handle?: { writeSync?: unknown; reset?: unknown }; _writeState?: unknown };
      expect(typeof s._handle?.writeSync, 'writeSync').toBe('function');
      expect(typeof s._handle?.reset, 'reset').toBe('function');
      expect(s._writeState).toBeInstanceOf(Uint32Array);
      expect((s._writeState as Uint32Array).length).toBe(2);
      stream.close();
    }
  });

  it('the async path on the same stream: _chunkSize, _outBuffer (that size), _outOffset and _handle.onerror exist', () => {
    for (const stream of [zlib.createDeflateRaw({ chunkSize: 64 }), zlib.createInflateRaw({ chunkSize: 64 })]) {
      const s = stream as unknown as { _chunkSize?: unknown; _outBuffer?: unknown; _outOffset?: unknown; _handle?: { onerror?: unknown } };
      expect(s._chunkSize, '_chunkSize').toBe(64);
      expect(Buffer.isBuffer(s._outBuffer) && (s._outBuffer as Buffer).length, '_outBuffer').toBe(64);
      expect(s._outOffset, '_outOffset').toBe(0);
      expect(typeof s._handle?.onerror, '_handle.onerror').toBe('function');
      stream.close();
    }
  });

  it('runAsync continues the window of synchronous writes on the same stream, and the sync path after it', async () => {
    const input = text(300_000);
    const d = new SyncZlib(zlib.createDeflateRaw({ level: 1, chunkSize: 64 }));
    const packed: Buffer[] = [];
    expect(d.write(input, 0, 1000, zlib.constants.Z_SYNC_FLUSH, packed, Infinity, Infinity)).toBe('ok');
    const r = await new Promise<Error | { chunks: Buffer[] }>((resolve) => d.runAsync(input.subarray(1000, 200_000), zlib.constants.Z_SYNC_FLUSH, Infinity, resolve));
    if (r instanceof Error) throw r;
    packed.push(...r.chunks);
    expect(d.running).toBe(false);
    expect(d.write(input, 200_000, 100_000, zlib.constants.Z_SYNC_FLUSH, packed, Infinity, Infinity)).toBe('ok');
    // One inflater over the three pieces: only right if each continued the same window.
    const plain = zlib.inflateRawSync(Buffer.concat(packed), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    expect(plain.equals(input)).toBe(true);
    d.close();
  });

  it('the probe finds them usable, so the codec takes the synchronous path', () => {
    expect(syncZlibAvailable()).toBe(true);
  });

  it('writeSync leaves [availOut, availIn] in _writeState: a sync flush round-trips and matches zlib.deflateRawSync', () => {
    const input = text(200_000);
    const d = new SyncZlib(zlib.createDeflateRaw({ level: 1 }));
    const packed: Buffer[] = [];
    expect(d.write(input, 0, input.length, zlib.constants.Z_SYNC_FLUSH, packed, Infinity, Infinity)).toBe('ok');
    expect(d.consumed).toBe(input.length);
    const deflated = Buffer.concat(packed);
    expect(deflated.equals(zlib.deflateRawSync(input, { level: 1, finishFlush: zlib.constants.Z_SYNC_FLUSH }))).toBe(true);
    const i = new SyncZlib(zlib.createInflateRaw());
    const plain: Buffer[] = [];
    expect(i.write(deflated, 0, deflated.length, zlib.constants.Z_SYNC_FLUSH, plain, Infinity, Infinity)).toBe('ok');
    expect(Buffer.concat(plain).equals(input)).toBe(true);
    d.close();
    i.close();
  });

  it('slices with Z_NO_FLUSH then one Z_SYNC_FLUSH give the same stream as one call', () => {
    const input = text(300_000);
    const one = new SyncZlib(zlib.createDeflateRaw({ level: 1 }));
    const sliced = new SyncZlib(zlib.createDeflateRaw({ level: 1 }));
    const a: Buffer[] = [];
    one.write(input, 0, input.length, zlib.constants.Z_SYNC_FLUSH, a, Infinity, Infinity);
    const b: Buffer[] = [];
    for (let off = 0; off < input.length; off += 65_536) {
      const n = Math.min(65_536, input.length - off);
      const flush = off + n === input.length ? zlib.constants.Z_SYNC_FLUSH : zlib.constants.Z_NO_FLUSH;
      expect(sliced.write(input, off, n, flush, b, Infinity, Infinity)).toBe('ok');
    }
    expect(Buffer.concat(b).equals(Buffer.concat(a))).toBe(true);
    one.close();
    sliced.close();
  });

  it("an output budget stops inflating with 'more' and the next call goes on from `consumed`; a limit stops with 'limit'", () => {
    const input = Buffer.alloc(1_000_000, 0x61);
    const deflated = zlib.deflateRawSync(input, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const z = new SyncZlib(zlib.createInflateRaw());
    const out: Buffer[] = [];
    let off = 0;
    let calls = 0;
    for (;;) {
      calls++;
      const r = z.write(deflated, off, deflated.length - off, zlib.constants.Z_SYNC_FLUSH, out, Infinity, 128 * 1024);
      off = z.consumed;
      if (r === 'ok') break;
      expect(r).toBe('more');
    }
    expect(calls).toBeGreaterThanOrEqual(7);
    expect(Buffer.concat(out).equals(input)).toBe(true);
    z.close();
    const limited = new SyncZlib(zlib.createInflateRaw());
    const held: Buffer[] = [];
    expect(limited.write(deflated, 0, deflated.length, zlib.constants.Z_SYNC_FLUSH, held, 100_000, Infinity)).toBe('limit');
    expect(Buffer.concat(held).length).toBeLessThan(100_000 + 64 * 1024 + 1);
    limited.close();
  });

  it('reset() starts from an empty window, and a zlib error surfaces as a thrown Error with its message', () => {
    const z = new SyncZlib(zlib.createInflateRaw());
    z.reset();
    expect(() => z.write(Buffer.from([0xff, 0xff, 0xff]), 0, 3, zlib.constants.Z_SYNC_FLUSH, [], Infinity, Infinity)).toThrow(/invalid/i);
    z.close();
  });
});

describe('fallback to the public stream API when the internals are absent', () => {
  it('a stream without the internals is refused by SyncZlib with a clear error', () => {
    const stream = zlib.createDeflateRaw();
    (stream as unknown as { _handle: unknown })._handle = undefined;
    expect(() => new SyncZlib(stream)).toThrow(/synchronous handle API is missing/);
  });

  it('a forced fallback codec compresses and inflates with context takeover through jobs, and refuses one-call use clearly', async () => {
    forceSyncZlib(false);
    const params = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };
    const server = new PerMessageDeflate('server', params, defaultDeflateOptions);
    const client = new PerMessageDeflate('client', params, defaultDeflateOptions);
    const runJob = async <T>(x: unknown): Promise<T> => {
      const job = x as { step(): string; wake?: () => void; result: T };
      expect(typeof job.step, 'a job, not a synchronous result').toBe('function');
      for (;;) {
        const s = job.step();
        if (s === 'done') return job.result;
        if (s === 'wait') await new Promise<void>((r) => (job.wake = r));
      }
    };
    // Letters from a seeded generator: little to compress inside one message, all of it the second time.
    const msg = Buffer.alloc(5000);
    for (let i = 0, x = 7; i < msg.length; i++) msg[i] = 97 + ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) % 26;
    const sizes: number[] = [];
    for (let k = 0; k < 3; k++) {
      const packed = await runJob<Buffer>(server.startCompress(msg));
      sizes.push(packed.length);
      const plain = await runJob<Buffer>(client.startInflate(packed, true, Infinity));
      expect(plain.equals(msg)).toBe(true);
    }
    // Context takeover: the same message again costs a fraction of the first time.
    expect(sizes[1]!).toBeLessThan(sizes[0]! / 4);
    expect(() => server.compress(msg)).toThrow(/startCompress/);
    server.close();
    client.close();
  });
});
