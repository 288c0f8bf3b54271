/**
 * Thread-pool zlib work in bounded jobs (src/protocol/zlib-stream.ts, POOL_INPUT_PIECE): a large
 * input reaches zlib in pieces, so that no pool job holds a core for the whole message (on the
 * event loop's core that delayed the loop by a scheduler slice: bench/RESULTS.md, issue 15,
 * 2026-12-03 evening). Checked on real zlib streams by recording what is written to them.
 */
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { runCodecJob } from '../../src/conn/codec-scheduler.js';
import { type CodecJob, PerMessageDeflate, defaultDeflateOptions, type DeflateOptions } from '../../src/protocol/permessage-deflate.js';
import { POOL_INPUT_PIECE, StreamZlib, type StreamResult } from '../../src/protocol/zlib-stream.js';
import { compressibleText } from '../helpers/text.js';

const Z_SYNC_FLUSH = zlib.constants.Z_SYNC_FLUSH;
const params = { serverNoContextTakeover: true, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };

/** Record the length of every non-empty chunk written to any DeflateRaw stream until `restore()` (a flush writes an empty one of its own). */
function recordDeflateWrites(): { sizes: number[]; restore: () => void } {
  const proto = zlib.DeflateRaw.prototype as unknown as { write: (chunk: Uint8Array, ...rest: unknown[]) => boolean };
  const had = Object.prototype.hasOwnProperty.call(proto, 'write');
  const original = proto.write;
  const sizes: number[] = [];
  proto.write = function (this: unknown, chunk: Uint8Array, ...rest: unknown[]) {
    if (chunk.length > 0) sizes.push(chunk.length);
    return original.call(this, chunk, ...rest);
  };
  return {
    sizes,
    restore: () => {
      if (had) proto.write = original;
      else delete (proto as { write?: unknown }).write;
    },
  };
}

let restore: (() => void) | undefined;
afterEach(() => {
  restore?.();
  restore = undefined;
});

function runStream(z: StreamZlib, input: Uint8Array): Promise<StreamResult> {
  return new Promise((resolve) => z.run(input, Z_SYNC_FLUSH, Infinity, resolve));
}

function run<T>(x: T | CodecJob<T>): Promise<T> {
  if (x instanceof Buffer || x instanceof Error) return Promise.resolve(x as T);
  return new Promise((resolve) => runCodecJob(x as CodecJob<T>, resolve));
}

describe('StreamZlib on the thread pool', () => {
  it(`writes a large input to zlib in pieces of at most ${POOL_INPUT_PIECE} bytes, and the output is the whole input's`, async () => {
    const rec = recordDeflateWrites();
    restore = rec.restore;
    const input = compressibleText(3 * POOL_INPUT_PIECE + 5, 1);
    const z = new StreamZlib(zlib.createDeflateRaw({ level: 1 }));
    const r = await runStream(z, input);
    z.close();
    if (r instanceof Error) throw r;
    expect(rec.sizes).toEqual([POOL_INPUT_PIECE, POOL_INPUT_PIECE, POOL_INPUT_PIECE, 5]);
    expect(zlib.inflateRawSync(Buffer.concat(r.chunks), { finishFlush: Z_SYNC_FLUSH }).equals(input)).toBe(true);
  });

  it('writes an input up to one piece in one write, and nothing for an empty one', async () => {
    const rec = recordDeflateWrites();
    restore = rec.restore;
    const z = new StreamZlib(zlib.createDeflateRaw({ level: 1 }));
    const small = compressibleText(POOL_INPUT_PIECE, 2);
    const r1 = await runStream(z, small);
    const r2 = await runStream(z, new Uint8Array(0));
    z.close();
    expect(rec.sizes).toEqual([POOL_INPUT_PIECE]);
    if (r1 instanceof Error || r2 instanceof Error) throw r1;
    // The empty run only flushed: the stream (context takeover) still inflates to the first input.
    expect(zlib.inflateRawSync(Buffer.concat([...r1.chunks, ...r2.chunks]), { finishFlush: Z_SYNC_FLUSH }).equals(small)).toBe(true);
  });

  it('inflates a large message written in pieces to the same bytes, within the limit, and stops at the limit', async () => {
    const msg = compressibleText(4 * POOL_INPUT_PIECE + 17, 3);
    // Stored blocks (level 0): the compressed input is larger than one piece, so the inflate is fed in pieces too.
    const packed = zlib.deflateRawSync(msg, { level: 0 });
    expect(packed.length).toBeGreaterThan(POOL_INPUT_PIECE);
    const ok = new StreamZlib(zlib.createInflateRaw());
    const r = await new Promise<StreamResult>((resolve) => ok.run(packed, Z_SYNC_FLUSH, msg.length, resolve));
    ok.close();
    if (r instanceof Error) throw r;
    expect(r.status).toBe('ok');
    expect(Buffer.concat(r.chunks).equals(msg)).toBe(true);
    const bomb = new StreamZlib(zlib.createInflateRaw());
    const over = await new Promise<StreamResult>((resolve) => bomb.run(packed, Z_SYNC_FLUSH, POOL_INPUT_PIECE, resolve));
    bomb.close();
    if (over instanceof Error) throw over;
    expect(over.status).toBe('limit');
  });
});

describe('a large message compressed without context on the thread pool', () => {
  it('goes to zlib in pieces, and a peer inflates it to the message', async () => {
    const opts: DeflateOptions = { ...defaultDeflateOptions, mode: 'shared', level: 1 };
    const server = new PerMessageDeflate('server', params, opts);
    const msg = compressibleText(8 * POOL_INPUT_PIECE + 3, 4);
    const rec = recordDeflateWrites();
    restore = rec.restore;
    const packed = await run(server.startCompress(msg));
    rec.restore();
    restore = undefined;
    server.close();
    if (!(packed instanceof Buffer)) throw packed;
    expect(Math.max(...rec.sizes)).toBeLessThanOrEqual(POOL_INPUT_PIECE);
    expect(rec.sizes.reduce((a, b) => a + b, 0)).toBe(msg.length);
    const peer = new PerMessageDeflate('client', params, opts);
    const out = await run(peer.startInflate(packed, true, 1 << 30));
    peer.close();
    expect(out instanceof Buffer && out.equals(msg)).toBe(true);
  });
});
