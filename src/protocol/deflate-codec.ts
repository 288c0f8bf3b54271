import zlib from 'node:zlib';
import { CloseCode, DEFLATE_TRAILER } from './constants.js';
import { ErrorCode, ProtocolError, WebSocketError } from './errors.js';
import type { DeflateOptions, DeflateParams } from './permessage-deflate.js';
import { SyncZlib, syncZlibAvailable } from './zlib-sync.js';
import { StreamZlib, type StreamResult } from './zlib-stream.js';
import { ZlibPool, defaultZlibPoolOptions } from './zlib-pool.js';
import { JoinInTurns } from './join-in-turns.js';

/**
 * One connection's permessage-deflate codec (RFC 7692 §6), and the thread's shared compressor.
 *
 * Small messages are compressed and inflated synchronously, in one call, on zlib's native handle
 * (zlib-sync.ts): that is the fast path (no Promise, no thread hop). A large message would block
 * the event loop for as long as zlib takes (a 16 MiB compressible message: ~144 ms), so
 * `startCompress` / `startInflate` return a CodecJob for it instead. The job runs the message on
 * libuv's thread pool (another core), through Node's public stream API on the SAME zlib stream
 * (SyncZlib.runAsync: the window is kept, RFC 7692 §7.1.1), bounded by the server's ZlibPool
 * (zlib-pool.ts). When the pool's waiting room is full, the job does the work on the event loop
 * in bounded slices per `step()` instead (DEFLATE_SLICE bytes of input, INFLATE_SLICE bytes of
 * output). Either way the order is the caller's (one job per direction at a time) and the
 * inflated size is checked against the limit as it grows. The conn layer runs the jobs
 * (src/conn/codec-scheduler.ts). This layer has no timers (a large inflated output is joined
 * over a few turns with setImmediate: join-in-turns.ts).
 *
 * Where Node lacks the handle internals, the same jobs run on the public async stream API
 * (zlib-stream.ts, on libuv's thread pool) and every message takes that path.
 */

/**
 * Input bytes compressed per slice. Level 1 deflates compressible text at ~100-120 MiB/s on
 * this machine (bench/deflate-stall.mjs), so 128 KiB is ~1-1.5 ms of work per turn; a message
 * up to this size is compressed in one synchronous call, as before.
 */
export const DEFLATE_SLICE = 128 * 1024;
/** Output bytes inflated per slice (inflating is ~3-5x faster than deflating level 1). */
export const INFLATE_SLICE = 256 * 1024;

/** A compress or inflate that continues over later turns of the event loop. */
export interface CodecJob<T> {
  /**
   * Do one bounded slice of the work: 'done' (read `result`), 'more' (call again later), or
   * 'wait' (work runs elsewhere; `wake` is called when `step` should be called again).
   */
  step(): 'done' | 'more' | 'wait';
  wake: (() => void) | undefined;
  readonly result: T | undefined;
  /** The job runs on the thread pool (bounded by a ZlibPool), not in slices on the loop. */
  readonly pooled?: boolean;
  /** Give up: the next `step` ends with an error result and the job's resources are freed. */
  cancel(): void;
}

/**
 * zlib refuses an 8-bit window for raw deflate (since zlib 1.2.9; "until 256-byte window bug
 * fixed" in deflate.c). A 9-bit compressor is safe where 8 was negotiated: zlib never emits a
 * match farther back than the window size minus MIN_LOOKAHEAD (512 - 262 = 250 bytes), so every
 * distance fits the peer's 256-byte window. The test "windowBits 8 ..." checks this on the zlib
 * we run on, across messages with context takeover. Inflating with 8 needs no such care.
 */
export function compressorWindowBits(bits: number): number {
  return bits < 9 ? 9 : bits;
}

const EMPTY = Buffer.alloc(0);
/** Tests: a codec's walk of the buffers it holds for the frame being inflated (see PerMessageDeflate). */
export const kHeldBuffers = Symbol('wschan.inflateHeldBuffers');
const Z_SYNC_FLUSH = zlib.constants.Z_SYNC_FLUSH;
const Z_NO_FLUSH = zlib.constants.Z_NO_FLUSH;

function deflateStream(windowBits: number, opts: DeflateOptions): zlib.DeflateRaw {
  // chunkSize: the stream's own output buffer is never used by SyncZlib (it writes into its
  // scratch buffer); at Node's default it cost 16 KiB per stream (64 MiB for 2,000 dedicated peers).
  return zlib.createDeflateRaw({ windowBits: compressorWindowBits(windowBits), level: opts.level, memLevel: opts.memLevel, chunkSize: zlib.constants.Z_MIN_CHUNK });
}

function inflateStream(windowBits: number, chunkSize: number): zlib.InflateRaw {
  return zlib.createInflateRaw({ windowBits, chunkSize });
}

function concat(chunks: Buffer[]): Buffer {
  if (chunks.length === 0) return EMPTY;
  if (chunks.length === 1) return chunks[0]!;
  return Buffer.concat(chunks);
}

function deflateError(err: unknown): WebSocketError {
  return new WebSocketError(ErrorCode.DeflateFailed, `deflate failed: ${(err as Error).message}`, { cause: err });
}

/** §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail end." A sync flush always ends with them; the check keeps a surprise from corrupting the stream. */
function stripTail(chunks: Buffer[]): Buffer {
  const out = concat(chunks);
  const n = out.length;
  if (n >= 4 && out[n - 4] === 0x00 && out[n - 3] === 0x00 && out[n - 2] === 0xff && out[n - 1] === 0xff) return out.subarray(0, n - 4);
  return out;
}

/** Compress one whole message in one call (RFC 7692 §7.2.1). */
function deflateMessage(z: SyncZlib, data: Uint8Array): Buffer {
  const chunks: Buffer[] = [];
  try {
    z.write(data, 0, data.length, Z_SYNC_FLUSH, chunks, Infinity, Infinity);
  } catch (err) {
    throw deflateError(err);
  }
  return stripTail(chunks);
}

/** A job whose slices run synchronously: `run` returns undefined while work remains. */
class SliceJob<T> implements CodecJob<T> {
  wake: (() => void) | undefined = undefined;
  result: T | undefined = undefined;
  readonly #run: () => T | undefined;
  readonly #cancelled: () => T;
  #stop = false;
  constructor(run: () => T | undefined, cancelled: () => T) {
    this.#run = run;
    this.#cancelled = cancelled;
  }
  step(): 'done' | 'more' | 'wait' {
    const r = this.#stop ? this.#cancelled() : this.#run();
    if (r === undefined) return 'more';
    this.result = r;
    return 'done';
  }
  cancel(): void {
    this.#stop = true;
  }
}

/**
 * A job that runs on the thread pool: submitted to the pool when made (so the pool's count of
 * waiting jobs is right for the next `admit`), started when a slot is free; `step` says 'wait'
 * until it has finished. The pool slot is released when the zlib work has really ended (not at
 * `cancel`), so the bound counts what runs.
 */
class WaitJob<T> implements CodecJob<T> {
  wake: (() => void) | undefined = undefined;
  result: T | undefined = undefined;
  /** Runs elsewhere: the scheduler does not run it in slices. */
  readonly pooled = true;
  readonly #cancelled: () => T;
  constructor(pool: ZlibPool, bytes: number, start: (finish: (r: T) => void) => void, cancelled: () => T) {
    this.#cancelled = cancelled;
    pool.submit(bytes, (release) => {
      start((r) => {
        release();
        this.result ??= r;
        this.wake?.();
      });
    });
  }
  step(): 'done' | 'more' | 'wait' {
    return this.result !== undefined ? 'done' : 'wait';
  }
  cancel(): void {
    this.result ??= this.#cancelled();
  }
}

/**
 * The thread-pool bound of a server: one ZlibPool per settings object (a Server resolves its
 * deflate settings once, so every connection of one server shares its pool; a client's
 * connection has its own settings, so its own pool).
 */
const pools = new WeakMap<DeflateOptions, ZlibPool>();

export function zlibPoolFor(opts: DeflateOptions): ZlibPool {
  let pool = pools.get(opts);
  if (pool === undefined) {
    const d = defaultZlibPoolOptions;
    pool = new ZlibPool({
      concurrency: opts.threadPoolConcurrency ?? d.concurrency,
      maxQueued: opts.threadPoolMaxQueued ?? d.maxQueued,
      maxQueuedBytes: opts.threadPoolMaxQueuedBytes ?? d.maxQueuedBytes,
    });
    pools.set(opts, pool);
  }
  return pool;
}

/** Messages larger than this (bytes in, for a compress; bytes out, for an inflate) leave the event loop. */
function offloadThreshold(opts: DeflateOptions): number {
  return opts.threadPoolThreshold ?? DEFLATE_SLICE;
}

/**
 * Compress without context on the thread pool, through a zlib stream of its own (closed after):
 * what a large message of a no-context-takeover codec and a large broadcast take. A stream
 * rather than Node's one-shot `zlib.deflateRaw`, so that the input goes to the pool in pieces
 * (StreamZlib.run, POOL_INPUT_PIECE): the one-shot call hands zlib the whole message, and each
 * pool job then runs until 256 KiB of output (megabytes of input for compressible text).
 * `done` is never called synchronously.
 */
function compressWithoutContextAsync(data: Uint8Array, windowBits: number, opts: DeflateOptions, done: (r: Buffer | WebSocketError) => void): void {
  const bits = compressorWindowBits(windowBits);
  const z = new StreamZlib(zlib.createDeflateRaw({ windowBits: bits, level: opts.level, memLevel: opts.memLevel, chunkSize: ASYNC_CHUNK }));
  z.run(data, Z_SYNC_FLUSH, Infinity, (r) => {
    z.close();
    done(r instanceof Error ? deflateError(r) : stripTail(r.chunks));
  });
}

/** Output chunk of a thread-pool compress without context: few round trips for a large message. */
const ASYNC_CHUNK = 256 * 1024;

/**
 * A large broadcast's compression (issue 15), done once on the thread pool and shared by every
 * subscriber whose compressor has no context takeover and the same window: the subscribers queue
 * the plain message (so its place in each connection's order is kept), and when a connection's
 * writer reaches it, its codec takes this result (`startCompress` below) instead of compressing
 * again. Keyed by the payload object, then by compressor window bits; the WeakMap lets it go
 * with the payload.
 */
interface SharedCompression {
  result: Buffer | WebSocketError | undefined;
  waiters: (() => void)[];
}
const sharedCompressions = new WeakMap<Uint8Array, Map<number, SharedCompression>>();

/**
 * Start compressing `data` for a broadcast to no-context-takeover subscribers with `params`, on
 * the thread pool. False when the message is small enough for the event loop or the pool's
 * waiting room is full: then each subscriber's codec compresses it as any message of its own
 * (in slices on the loop when the pool stays full).
 */
export function shareLargeCompression(data: Uint8Array, params: DeflateParams, opts: DeflateOptions): boolean {
  const pool = zlibPoolFor(opts);
  if (data.length <= offloadThreshold(opts) || !pool.admit(data.length)) return false;
  const bits = compressorWindowBits(params.serverMaxWindowBits);
  let byBits = sharedCompressions.get(data);
  if (byBits === undefined) sharedCompressions.set(data, (byBits = new Map()));
  const entry: SharedCompression = { result: undefined, waiters: [] };
  // A newer publish of the same payload object replaces the entry; queued messages take the newer result (same bytes).
  byBits.set(bits, entry);
  pool.submit(data.length, (release) => {
    compressWithoutContextAsync(data, bits, opts, (r) => {
      release();
      entry.result = r;
      const waiters = entry.waiters;
      entry.waiters = [];
      for (const w of waiters) w();
    });
  });
  return true;
}

/** A subscriber's wait for a SharedCompression: no pool slot of its own, done when the shared one is. */
class FollowJob implements CodecJob<Buffer | WebSocketError> {
  wake: (() => void) | undefined = undefined;
  result: Buffer | WebSocketError | undefined = undefined;
  readonly pooled = true;
  constructor(entry: SharedCompression) {
    const settle = (): void => {
      this.result ??= entry.result;
      this.wake?.();
    };
    // Already failed: still never done synchronously (the scheduler's contract).
    if (entry.result !== undefined) process.nextTick(settle);
    else entry.waiters.push(settle);
  }
  step(): 'done' | 'more' | 'wait' {
    return this.result !== undefined ? 'done' : 'wait';
  }
  cancel(): void {
    this.result ??= new WebSocketError(ErrorCode.DeflateFailed, 'permessage-deflate codec is closed');
  }
}

// One compressor per (window, level, memLevel) for every no-context-takeover codec of this
// thread. Reset before each use, so each message starts from an empty window.
const sharedDeflaters = new Map<string, SyncZlib>();

/**
 * Compress once for many peers whose server compressor has no context takeover (a broadcast):
 * the result refers to nothing outside itself, so every such peer with these parameters can
 * inflate it. (It is not always byte-identical to a fresh compressor's output: Node's bundled
 * zlib may choose slightly different matches after `deflateReset`, as the tests observed in
 * ~0.5% of messages, but every payload inflates from an empty window.)
 */
export function compressShared(data: Uint8Array, params: DeflateParams, opts: DeflateOptions): Buffer {
  return compressWithoutContext(data, params.serverMaxWindowBits, opts);
}

function compressWithoutContext(data: Uint8Array, windowBits: number, opts: DeflateOptions): Buffer {
  const bits = compressorWindowBits(windowBits);
  if (!syncZlibAvailable()) {
    // The public one-shot API is enough without context: every message starts from an empty window.
    try {
      return stripTail([zlib.deflateRawSync(data, { windowBits: bits, level: opts.level, memLevel: opts.memLevel, finishFlush: Z_SYNC_FLUSH })]);
    } catch (err) {
      throw deflateError(err);
    }
  }
  const key = `${bits}:${opts.level}:${opts.memLevel}`;
  let z = sharedDeflaters.get(key);
  if (z === undefined) {
    z = new SyncZlib(deflateStream(bits, opts));
    sharedDeflaters.set(key, z);
  } else {
    z.reset();
  }
  return deflateMessage(z, data);
}

type Engine = SyncZlib | StreamZlib;

/** Run `input` on the thread pool through either engine, with a sync flush (RFC 7692 §7.2.1). */
function runOn(z: Engine, input: Uint8Array, limit: number, done: (r: StreamResult) => void): void {
  if (z instanceof SyncZlib) z.runAsync(input, Z_SYNC_FLUSH, limit, done);
  else z.run(input, Z_SYNC_FLUSH, limit, done);
}

/**
 * One connection's codec. The zlib streams are created on first use, so a connection that never
 * compresses holds no zlib memory. Calls in one direction must not overlap: the connection runs
 * one job per direction at a time, in message order.
 */
export class PerMessageDeflate {
  readonly role: 'server' | 'client';
  readonly params: DeflateParams;
  readonly #opts: DeflateOptions;
  /** The window of our compressor (the negotiated value; zlib runs 8 as 9). */
  readonly #deflateBits: number;
  /** Our side has no context takeover: the thread's shared compressor serves every small message. */
  readonly #shared: boolean;
  /** The peer's compressor, which our inflater mirrors. */
  readonly #inflateBits: number;
  readonly #inflateReset: boolean;
  /** False: Node lacks the handle internals; every message goes through the stream API. */
  readonly #sync: boolean;
  /** The server's (or this client connection's) thread-pool bound, and the size that goes there. */
  readonly #pool: ZlibPool;
  readonly #offload: number;
  #deflater: Engine | undefined;
  #inflater: Engine | undefined;
  /** Inflated bytes of the message in progress, counted against `maxBytes`. */
  #messageBytes = 0;
  /** The message in progress ended with a final block; the rest of it is ignored. */
  #streamEnded = false;
  // The frame being inflated by slices: its payload, how far zlib has read it, whether zlib
  // still holds output for it, and whether the trailer (phase 1) is next.
  #inData: Uint8Array = EMPTY;
  #inOff = 0;
  #inMore = false;
  #inPhase: 0 | 1 | 2 = 0;
  #inFin = false;
  #inMax = 0;
  #inChunks: Buffer[] = [];
  /** Bytes of #inChunks (and of the fallback's chunks): inflated output held for the frame in progress. */
  #heldOut = 0;
  /** The fallback's output chunks of the frame in progress (for the walk in tests). */
  #streamOut: Buffer[] = [];
  /** A large frame's output being joined into one Buffer over a few turns. */
  #join: JoinInTurns | undefined;
  /** Set once inflating failed or the codec was closed; every later call returns it. */
  #failure: ProtocolError | undefined;
  #closed = false;

  constructor(role: 'server' | 'client', params: DeflateParams, opts: DeflateOptions) {
    this.role = role;
    this.params = params;
    this.#opts = opts;
    const server = role === 'server';
    this.#deflateBits = server ? params.serverMaxWindowBits : params.clientMaxWindowBits;
    // Without context takeover (§7.1.1) a compressor carries nothing from one message to the
    // next, so a private one would only cost memory: use the shared one, in either role and
    // whatever the mode ('shared' only makes the server ask for no context takeover).
    this.#shared = server ? params.serverNoContextTakeover : params.clientNoContextTakeover;
    this.#inflateBits = server ? params.clientMaxWindowBits : params.serverMaxWindowBits;
    this.#inflateReset = server ? params.clientNoContextTakeover : params.serverNoContextTakeover;
    this.#sync = syncZlibAvailable();
    this.#pool = zlibPoolFor(opts);
    this.#offload = offloadThreshold(opts);
  }

  /** Compress one whole message in one call; returns the payload for its frame(s), without the 00 00 ff ff tail (RFC 7692 §7.2.1). */
  compress(data: Uint8Array): Buffer {
    if (this.#closed) throw new WebSocketError(ErrorCode.DeflateFailed, 'permessage-deflate codec is closed');
    // §7.1.1: without context takeover, each message starts from an empty window; the shared
    // compressor is reset (not re-created) before each message.
    if (this.#shared) return compressWithoutContext(data, this.#deflateBits, this.#opts);
    if (!this.#sync) throw new WebSocketError(ErrorCode.DeflateFailed, 'compressing with context takeover in one call needs zlib handle internals; use startCompress');
    const z = (this.#deflater ??= new SyncZlib(deflateStream(this.#deflateBits, this.#opts))) as SyncZlib;
    return deflateMessage(z, data);
  }

  /**
   * Compress one message: the payload at once when the message is small (the fast path), or a
   * job that compresses it slice by slice. Throws WebSocketError(DeflateFailed) when closed.
   */
  startCompress(data: Uint8Array): Buffer | CodecJob<Buffer | WebSocketError> {
    if (this.#sync && data.length <= this.#offload) return this.compress(data);
    if (this.#closed) throw new WebSocketError(ErrorCode.DeflateFailed, 'permessage-deflate codec is closed');
    if (this.#shared) {
      // A large broadcast, compressed once for every subscriber (shareLargeCompression).
      const entry = sharedCompressions.get(data)?.get(compressorWindowBits(this.#deflateBits));
      if (entry !== undefined) return entry.result instanceof Buffer ? entry.result : new FollowJob(entry);
    }
    const closedError = (): WebSocketError => new WebSocketError(ErrorCode.DeflateFailed, 'permessage-deflate codec is closed');
    // Without context takeover the thread's shared compressor cannot be held across turns (other
    // connections use it in between): a large message gets a compressor of its own, closed after.
    const own = !this.#shared;
    // Without the handle internals every message goes to the pool (there is no other way); with
    // them, a large one does unless the pool's waiting room is full (then: slices on the loop).
    if (!this.#sync || this.#pool.admit(data.length)) {
      return new WaitJob<Buffer | WebSocketError>(
        this.#pool,
        data.length,
        (finish) => {
          if (this.#closed) return process.nextTick(finish, closedError());
          if (!own) return compressWithoutContextAsync(data, this.#deflateBits, this.#opts, finish);
          // §7.1.1 context takeover: the connection's own stream, whose window the peer mirrors.
          const z = (this.#deflater ??= this.#sync ? new SyncZlib(deflateStream(this.#deflateBits, this.#opts)) : new StreamZlib(deflateStream(this.#deflateBits, this.#opts)));
          runOn(z, data, Infinity, (r) => {
            if (this.#closed) finish(closedError());
            else finish(r instanceof Error ? deflateError(r) : stripTail(r.chunks));
          });
        },
        closedError,
      );
    }
    const z = own ? ((this.#deflater ??= new SyncZlib(deflateStream(this.#deflateBits, this.#opts))) as SyncZlib) : new SyncZlib(deflateStream(this.#deflateBits, this.#opts));
    const chunks: Buffer[] = [];
    let off = 0;
    const release = (): void => {
      if (!own) z.close();
    };
    return new SliceJob<Buffer | WebSocketError>(
      () => {
        if (this.#closed) {
          release();
          return closedError();
        }
        const n = Math.min(DEFLATE_SLICE, data.length - off);
        const last = off + n === data.length;
        try {
          // Z_NO_FLUSH until the last slice: zlib keeps what it has not emitted yet, and the one
          // sync flush at the end gives the same stream as a single call would.
          z.write(data, off, n, last ? Z_SYNC_FLUSH : Z_NO_FLUSH, chunks, Infinity, Infinity);
        } catch (err) {
          release();
          return deflateError(err);
        }
        off += n;
        if (!last) return undefined;
        release();
        return stripTail(chunks);
      },
      () => {
        release();
        return closedError();
      },
    );
  }

  /**
   * Inflate one frame's payload of a compressed message in one call; `fin` ends the message
   * (then 00 00 ff ff is appended, §7.2.2). `maxBytes` limits the whole message's inflated size
   * and is checked while inflating: at most `maxBytes` plus one 64 KiB chunk is ever held.
   * Returns the bytes of this fragment, or a ProtocolError: 1009 when the message is too big,
   * 1007 when the data is not valid DEFLATE. After an error the codec is unusable.
   */
  decompress(data: Uint8Array, fin: boolean, maxBytes: number): Buffer | ProtocolError {
    if (!this.#sync) return this.#fail(new ProtocolError(ErrorCode.InflateFailed, 'inflating in one call needs zlib handle internals; use startInflate', CloseCode.InternalError));
    return this.#startFrame(data, fin, maxBytes) ?? this.#inflateSome(Infinity)!;
  }

  /**
   * Bytes this codec holds for the frame being inflated (the connection counts them in its
   * inbound budget, issue 15): the compressed payload while it is referenced, the inflated
   * chunks as they come out (those of a thread-pool run included, as they arrive), and, while a
   * large output is joined, the joined buffer with the chunks not yet copied. 0 between frames.
   */
  get held(): number {
    let n = this.#inData.length + this.#heldOut;
    const z = this.#inflater;
    if (z !== undefined) n += z instanceof SyncZlib ? z.asyncPending : z.pending;
    if (this.#join !== undefined) n += this.#join.held;
    return n;
  }

  /**
   * Like `decompress`, but a frame whose output passes the thread-pool threshold continues in a
   * job (on the thread pool, or one slice per step). Nothing else may be inflated until the job
   * is done. `room` is how many more bytes the connection's inbound budget allows now (Infinity
   * when nothing waits downstream): a frame that goes on past the first part needs room for
   * what it holds plus twice what it may still inflate (the chunks, then the joined copy); without
   * it, null: nothing runs until `continueInflate` is called with more room.
   */
  startInflate(data: Uint8Array, fin: boolean, maxBytes: number): Buffer | ProtocolError | CodecJob<Buffer | ProtocolError>;
  startInflate(data: Uint8Array, fin: boolean, maxBytes: number, room?: number): Buffer | ProtocolError | CodecJob<Buffer | ProtocolError> | null;
  startInflate(data: Uint8Array, fin: boolean, maxBytes: number, room = Infinity): Buffer | ProtocolError | CodecJob<Buffer | ProtocolError> | null {
    if (!this.#sync) {
      if (this.#failure !== undefined) return this.#failure;
      this.#inData = data;
      this.#inFin = fin;
      this.#inMax = maxBytes;
      return this.#restJob(room);
    }
    const early = this.#startFrame(data, fin, maxBytes);
    if (early !== undefined) return early;
    // The first part on the loop: most frames end within it (a small message, no thread hop).
    const first = this.#inflateSome(this.#offload);
    if (first !== undefined) return first;
    return this.#restJob(room);
  }

  /** After `startInflate` returned null: the job for the rest of the frame, or null again while `room` is too small. */
  continueInflate(room: number): Buffer | ProtocolError | CodecJob<Buffer | ProtocolError> | null {
    return this.#restJob(room);
  }

  #restJob(room: number): ProtocolError | CodecJob<Buffer | ProtocolError> | null {
    if (this.#failure !== undefined) return this.#failure;
    if (room !== Infinity && this.held + 2 * (this.#inMax - this.#messageBytes) > room) return null;
    const cancelled = (): ProtocolError => this.#failure ?? this.#fail(new ProtocolError(ErrorCode.InflateFailed, 'inflate cancelled', CloseCode.InternalError));
    if (!this.#sync) return this.#streamInflateJob(cancelled);
    const rest = (this.#inPhase === 0 ? this.#inData.length : DEFLATE_TRAILER.length) - this.#inOff;
    if (this.#pool.admit(rest)) return new WaitJob<Buffer | ProtocolError>(this.#pool, rest, (finish) => this.#inflateRest(finish), cancelled);
    return new SliceJob<Buffer | ProtocolError>(() => this.#inflateSome(INFLATE_SLICE), cancelled);
  }

  /**
   * Tests (issue 15, memory): what the codec really references for the frame in progress,
   * found by walking its buffers rather than by the counters `held` keeps: the compressed input
   * (returned, so the caller can tell whether it holds the same one), and the output chunks,
   * each distinct ArrayBuffer once at its full size, plus a join's buffer.
   */
  [kHeldBuffers](): { input: Uint8Array; output: number } {
    const seen = new Set<ArrayBufferLike>();
    let output = 0;
    const z = this.#inflater;
    const pending = z === undefined ? [] : z instanceof SyncZlib ? z.asyncPendingChunks : z.pendingChunks;
    for (const list of [this.#inChunks, pending, this.#streamOut]) {
      for (const c of list) {
        if (seen.has(c.buffer)) continue;
        seen.add(c.buffer);
        output += c.buffer.byteLength;
      }
    }
    if (this.#join !== undefined) output += this.#join.walk();
    return { input: this.#inData, output };
  }

  /**
   * The rest of the frame #inflateSome began, on the thread pool through the same stream (its
   * window is the peer's context, §7.1.1): the rest of this phase's input, then the trailer
   * (§7.2.2) when the frame ends the message. Nothing else uses the inflater meanwhile.
   */
  #inflateRest(finish: (r: Buffer | ProtocolError) => void): void {
    if (this.#failure !== undefined) return process.nextTick(finish, this.#failure);
    const z = this.#inflater as SyncZlib;
    const inputs: Uint8Array[] = [(this.#inPhase === 0 ? this.#inData : DEFLATE_TRAILER).subarray(this.#inOff)];
    if (this.#inPhase === 0 && this.#inFin) inputs.push(DEFLATE_TRAILER);
    const max = this.#inMax;
    let k = 0;
    const next = (): void => {
      if (k < inputs.length && !z.asyncEnded) {
        runOn(z, inputs[k++]!, max - this.#messageBytes, onRun);
        return;
      }
      if (this.#inFin) {
        this.#messageBytes = 0;
        if (z.asyncEnded) {
          // §7.2.3.4: a final block ended the sender's stream; the next message starts a new one
          // (the Node stream has ended too, so it is replaced rather than reset).
          z.close();
          this.#inflater = undefined;
        } else if (this.#inflateReset) {
          z.reset();
        }
      }
      const chunks = this.#inChunks;
      this.#inChunks = [];
      this.#heldOut = 0;
      // The compressed input is done with: let it go before the join doubles the output.
      this.#inData = EMPTY;
      inputs.length = 0;
      this.#join = new JoinInTurns(chunks, () => this.#failure, (r) => {
        this.#join = undefined;
        finish(r);
      });
    };
    const onRun = (r: StreamResult): void => {
      // Closed (or failed) meanwhile: the stream is gone, the result is the failure.
      if (this.#failure !== undefined) return finish(this.#failure);
      if (r instanceof Error) {
        return finish(this.#fail(new ProtocolError(ErrorCode.InflateFailed, `Invalid compressed data: ${r.message}`, CloseCode.InvalidPayloadData)));
      }
      for (const c of r.chunks) this.#messageBytes += c.length;
      if (r.status === 'limit') return finish(this.#tooBig(max));
      for (const c of r.chunks) {
        this.#inChunks.push(c);
        this.#heldOut += c.length;
      }
      next();
    };
    next();
  }

  /** Set up the frame for #inflateSome; returns the failure if the codec already failed. */
  #startFrame(data: Uint8Array, fin: boolean, maxBytes: number): ProtocolError | undefined {
    if (this.#failure !== undefined) return this.#failure;
    this.#inflater ??= new SyncZlib(inflateStream(this.#inflateBits, zlib.constants.Z_MIN_CHUNK));
    this.#inData = data;
    this.#inOff = 0;
    this.#inMore = false;
    this.#inPhase = 0;
    this.#inFin = fin;
    this.#inMax = maxBytes;
    this.#inChunks = [];
    this.#heldOut = 0;
    return undefined;
  }

  /** Inflate until the frame is done (its bytes or an error), or `budget` bytes came out (undefined). */
  #inflateSome(budget: number): Buffer | ProtocolError | undefined {
    if (this.#failure !== undefined) return this.#failure;
    const z = this.#inflater as SyncZlib;
    try {
      for (;;) {
        if (this.#inPhase === 2) break;
        const input = this.#inPhase === 0 ? this.#inData : DEFLATE_TRAILER;
        if (!this.#streamEnded && (this.#inOff < input.length || this.#inMore)) {
          const r = this.#feed(z, input, budget);
          if (r === 'limit') return this.#tooBig(this.#inMax);
          if (r === 'more') return undefined;
        }
        // §7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of the payload".
        this.#inPhase = this.#inPhase === 0 && this.#inFin ? 1 : 2;
        this.#inOff = 0;
      }
      if (this.#inFin) {
        this.#messageBytes = 0;
        // §7.1.1: a peer without context takeover starts every message from an empty window;
        // resetting also turns a reference into an older message into an error.
        if (this.#inflateReset && !this.#streamEnded) z.reset();
        this.#streamEnded = false;
      }
    } catch (err) {
      return this.#fail(
        new ProtocolError(ErrorCode.InflateFailed, `Invalid compressed data: ${(err as Error).message}`, CloseCode.InvalidPayloadData),
      );
    }
    const chunks = this.#inChunks;
    this.#inChunks = [];
    this.#heldOut = 0;
    this.#inData = EMPTY;
    return concat(chunks);
  }

  /** Feed the rest of `input`; 'limit' when the message went over the limit, 'more' when the budget is spent. */
  #feed(z: SyncZlib, input: Uint8Array, budget: number): 'ok' | 'limit' | 'more' {
    const chunks = this.#inChunks;
    const before = chunks.length;
    const result = z.write(input, this.#inOff, input.length - this.#inOff, Z_SYNC_FLUSH, chunks, this.#inMax - this.#messageBytes, budget);
    let n = 0;
    for (let i = before; i < chunks.length; i++) n += chunks[i]!.length;
    this.#messageBytes += n;
    this.#heldOut += n;
    this.#inOff = z.consumed;
    this.#inMore = result === 'more';
    if (result === 'limit' || result === 'more') return result;
    if (result === 'ended') {
      // RFC 7692 §7.2.3.4: a sender may end a message with a final (BFINAL = 1) block, after
      // which zlib takes no more input. The rest of this message (at least the 00 00 ff ff we
      // append, which means nothing after a final block) is discarded, and the next message
      // starts a new stream: the sender cannot have kept its window past a final block.
      z.reset();
      this.#streamEnded = true;
    }
    return 'ok';
  }

  /** The fallback: the frame (and, with `fin`, the trailer) through the stream API, as a job. */
  #streamInflateJob(cancelled: () => ProtocolError): CodecJob<Buffer | ProtocolError> {
    const data = this.#inData;
    const fin = this.#inFin;
    const maxBytes = this.#inMax;
    return new WaitJob<Buffer | ProtocolError>(this.#pool, data.length, (finish) => {
      const out: Buffer[] = (this.#streamOut = []);
      const end = (r: Buffer | ProtocolError): void => {
        this.#streamOut = [];
        this.#heldOut = 0;
        this.#inData = EMPTY;
        finish(r);
      };
      const feed = (input: Uint8Array, next: () => void): void => {
        let z = this.#inflater as StreamZlib | undefined;
        // §7.2.3.4: after a final block the stream takes nothing more of this message.
        if (z?.ended === true) {
          next();
          return;
        }
        z ??= this.#inflater = new StreamZlib(inflateStream(this.#inflateBits, 16 * 1024));
        z.run(input, Z_SYNC_FLUSH, maxBytes - this.#messageBytes, (r) => {
          if (this.#failure !== undefined) return end(this.#failure);
          if (r instanceof Error) {
            return end(this.#fail(new ProtocolError(ErrorCode.InflateFailed, `Invalid compressed data: ${r.message}`, CloseCode.InvalidPayloadData)));
          }
          for (const c of r.chunks) this.#messageBytes += c.length;
          if (r.status === 'limit') return end(this.#tooBig(maxBytes));
          for (const c of r.chunks) {
            out.push(c);
            this.#heldOut += c.length;
          }
          next();
        });
      };
      const done = (): void => {
        if (fin) {
          this.#messageBytes = 0;
          const z = this.#inflater as StreamZlib;
          if (z.ended) {
            // A new stream for the next message: the sender's window ended with the final block.
            z.close();
            this.#inflater = undefined;
          } else if (this.#inflateReset) {
            z.reset();
          }
        }
        end(concat(out));
      };
      feed(data, fin ? () => feed(DEFLATE_TRAILER, done) : done);
    }, cancelled);
  }

  #tooBig(maxBytes: number): ProtocolError {
    return this.#fail(
      new ProtocolError(ErrorCode.PayloadTooBig, `Inflated message exceeds the limit of ${maxBytes} bytes`, CloseCode.MessageTooBig),
    );
  }

  #fail(err: ProtocolError): ProtocolError {
    this.#failure = err;
    this.#inflater?.close();
    this.#inChunks = [];
    this.#streamOut = [];
    this.#heldOut = 0;
    this.#inData = EMPTY;
    return err;
  }

  /** Release the zlib memory and end any job in progress. Idempotent; a shared compressor is not ours to close. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#deflater?.close();
    this.#deflater = undefined;
    this.#inflater?.close();
    this.#inflater = undefined;
    this.#inChunks = [];
    this.#streamOut = [];
    this.#heldOut = 0;
    this.#inData = EMPTY;
    this.#failure ??= new ProtocolError(ErrorCode.InflateFailed, 'permessage-deflate codec is closed', CloseCode.InternalError);
  }
}
