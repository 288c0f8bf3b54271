/**
 * The thread-pool bound of a server (src/protocol/zlib-pool.ts) and the codec's use of it
 * (src/protocol/deflate-codec.ts): jobs at once, the waiting room in count and bytes, what a
 * full pool does (the message runs in slices on the loop), and a codec closed mid-job.
 */
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { runCodecJob, codecTurns } from '../../src/conn/codec-scheduler.js';
import { type CodecJob, PerMessageDeflate, defaultDeflateOptions, type DeflateOptions } from '../../src/protocol/permessage-deflate.js';
import { zlibPoolFor } from '../../src/protocol/deflate-codec.js';
import { ZlibPool } from '../../src/protocol/zlib-pool.js';
import { ProtocolError, WebSocketError } from '../../src/protocol/errors.js';
import { compressibleText } from '../helpers/text.js';

const params = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };

function run<T>(x: T | CodecJob<T>): Promise<T> {
  if (x instanceof Buffer || x instanceof Error) return Promise.resolve(x as T);
  return new Promise((resolve) => runCodecJob(x as CodecJob<T>, resolve));
}

function inflate(packed: Buffer, opts: DeflateOptions = defaultDeflateOptions): Promise<Buffer | ProtocolError> {
  const peer = new PerMessageDeflate('client', params, opts);
  return run(peer.startInflate(packed, true, 1 << 30)).finally(() => peer.close());
}

describe('ZlibPool', () => {
  it('starts at most `concurrency` jobs, the rest in submission order as slots free up', () => {
    const pool = new ZlibPool({ concurrency: 2, maxQueued: 10, maxQueuedBytes: 1000 });
    const started: number[] = [];
    const releases: (() => void)[] = [];
    for (let i = 0; i < 5; i++) {
      expect(pool.admit(10)).toBe(true);
      pool.submit(10, (release) => {
        started.push(i);
        releases.push(release);
      });
    }
    expect(started).toEqual([0, 1]);
    expect(pool.queued).toBe(3);
    expect(pool.queuedBytes).toBe(30);
    releases[1]!();
    releases[1]!(); // a second release of the same job counts once
    expect(started).toEqual([0, 1, 2]);
    expect(pool.running).toBe(2);
    releases[0]!();
    releases[2]!();
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(pool.queued).toBe(0);
    expect(pool.queuedBytes).toBe(0);
    expect(pool.peak).toBe(2);
  });

  it('refuses (and counts) a job once the waiting room is full in count or in bytes', () => {
    const pool = new ZlibPool({ concurrency: 1, maxQueued: 2, maxQueuedBytes: 100 });
    pool.submit(10, () => {}); // runs, never released
    expect(pool.admit(60)).toBe(true);
    pool.submit(60, () => {});
    expect(pool.admit(50), 'bytes: 60 + 50 > 100').toBe(false);
    expect(pool.admit(40)).toBe(true);
    pool.submit(40, () => {});
    expect(pool.admit(1), 'count: 2 waiting').toBe(false);
    expect(pool.refused).toBe(2);
  });
});

describe('the codec on a bounded pool', () => {
  it('six large messages of six connections run at most two at a time, and each inflates back', async () => {
    const opts: DeflateOptions = { ...defaultDeflateOptions, mode: 'dedicated', threadPoolConcurrency: 2 };
    const pool = zlibPoolFor(opts);
    const codecs = Array.from({ length: 6 }, () => new PerMessageDeflate('server', params, opts));
    const msgs = codecs.map((_, i) => compressibleText(1024 * 1024 + i, i));
    const jobs = codecs.map((c, i) => c.startCompress(msgs[i]!));
    for (const j of jobs) expect((j as CodecJob<Buffer>).pooled, 'a thread-pool job').toBe(true);
    const packed = await Promise.all(jobs.map((j) => run(j)));
    expect(pool.peak).toBe(2);
    expect(pool.offloaded).toBe(6);
    expect(pool.running).toBe(0);
    for (let i = 0; i < 6; i++) expect(((await inflate(packed[i] as Buffer)) as Buffer).equals(msgs[i]!), `message ${i}`).toBe(true);
    for (const c of codecs) c.close();
  });

  it('a full pool: the next large message runs in slices on the loop (not refused, not lost), and inflates back', async () => {
    const opts: DeflateOptions = { ...defaultDeflateOptions, mode: 'dedicated', threadPoolConcurrency: 1, threadPoolMaxQueued: 1 };
    const pool = zlibPoolFor(opts);
    const codecs = [0, 1, 2].map(() => new PerMessageDeflate('server', params, opts));
    const msgs = codecs.map((_, i) => compressibleText(2 * 1024 * 1024, 10 + i));
    const jobs = codecs.map((c, i) => c.startCompress(msgs[i]!)) as CodecJob<Buffer>[];
    expect(jobs.map((j) => j.pooled === true)).toEqual([true, true, false]);
    expect(pool.refused).toBe(1);
    const turns = codecTurns();
    const packed = await Promise.all(jobs.map((j) => run(j)));
    expect(codecTurns() - turns, 'the refused one ran in 16 slices of 128 KiB').toBeGreaterThanOrEqual(16);
    for (let i = 0; i < 3; i++) expect(((await inflate(packed[i]!)) as Buffer).equals(msgs[i]!), `message ${i}`).toBe(true);
    for (const c of codecs) c.close();
  });

  it('closing a codec while its compress and its inflate run on the thread pool ends both with an error and frees the slots', async () => {
    const opts: DeflateOptions = { ...defaultDeflateOptions, mode: 'dedicated' };
    const pool = zlibPoolFor(opts);
    const server = new PerMessageDeflate('server', params, opts);
    const client = new PerMessageDeflate('client', params, opts);
    const msg = compressibleText(8 * 1024 * 1024, 3);
    const packed = await run(server.startCompress(msg));
    // A second server codec compresses while the client inflates; both are closed mid-run.
    const other = new PerMessageDeflate('server', params, opts);
    const deflating = run(other.startCompress(msg));
    const inflating = run(client.startInflate(packed as Buffer, true, 1 << 30));
    await new Promise((r) => setImmediate(r));
    expect(pool.running).toBe(2);
    other.close();
    client.close();
    other.close(); // idempotent
    const [d, i] = await Promise.all([deflating, inflating]);
    expect(d).toBeInstanceOf(WebSocketError);
    expect(i).toBeInstanceOf(ProtocolError);
    expect(pool.running).toBe(0);
    expect(() => other.startCompress(msg)).toThrow(/closed/);
    // The codec that was not closed goes on, its window intact: a fresh peer inflates both messages.
    const again = await run(server.startCompress(msg));
    const peer = new PerMessageDeflate('client', params, opts);
    expect(((await run(peer.startInflate(packed as Buffer, true, 1 << 30))) as Buffer).equals(msg)).toBe(true);
    expect(((await run(peer.startInflate(again as Buffer, true, 1 << 30))) as Buffer).equals(msg)).toBe(true);
    peer.close();
    server.close();
  });

  it('invalid DEFLATE found on the thread pool (past the first synchronous part) fails the message with 1007', async () => {
    const opts: DeflateOptions = { ...defaultDeflateOptions };
    const pool = zlibPoolFor(opts);
    const msg = compressibleText(2 * 1024 * 1024, 7);
    // After a sync flush the stream is at a block boundary: 0xff starts a block of type 3, which
    // does not exist (RFC 1951 §3.2.3), after 2 MiB of good output.
    const packed = Buffer.concat([zlib.deflateRawSync(msg, { level: 1, finishFlush: zlib.constants.Z_SYNC_FLUSH }), Buffer.from([0xff, 0xff, 0xff])]);
    const server = new PerMessageDeflate('server', params, opts);
    const job = server.startInflate(packed, true, 1 << 30) as CodecJob<Buffer | ProtocolError>;
    expect(job.pooled, 'the rest of the frame went to the pool').toBe(true);
    const r = await run(job);
    expect(r).toBeInstanceOf(ProtocolError);
    expect((r as ProtocolError).closeCode).toBe(1007);
    expect((r as ProtocolError).message).toMatch(/Invalid compressed data/);
    expect(pool.running).toBe(0);
    // The codec stays failed: the next frame gets the same error, synchronously.
    expect(server.startInflate(Buffer.from([0x00]), true, 100)).toBe(r);
    server.close();
  });
});
