import zlib from 'node:zlib';
import { StreamZlib, type StreamResult } from './zlib-stream.js';

// ---------------------------------------------------------------------------------------------
// A synchronous adapter over a zlib stream's native handle.
//
// Node's zlib streams are asynchronous, and the one-shot *Sync functions cannot keep a window
// between messages. The native handle has a synchronous `writeSync(flush, in, inOff, inLen,
// out, outOff, outLen)` that leaves [availOutAfter, availInAfter] in the stream's `_writeState`:
// it is what `zlibBufferSync` / `ZlibBase.prototype._processChunk(chunk, flag)` drive (Node
// 10 through 26). `_processChunk` itself is not usable here: in Node 20 it closes the handle
// after every call, adds an 'error' listener per call, and returns slices of a buffer that the
// next call overwrites. So we drive `writeSync` ourselves, which also lets us stop inflating as
// soon as the output passes a limit, and stop after a bounded amount of work (a slice) to give
// the event loop back between slices of a large message.
//
// These are Node internals: `syncZlibAvailable()` checks their shape (and that they work) once;
// where they are missing the codec uses the public stream API instead (zlib-stream.ts), and
// test/protocol/zlib-sync.test.ts fails on every Node version where the shape changed.

interface NativeZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  reset(): void;
  onerror: (message: string, errno: number) => void;
}

/** The output chunk: the most a call holds beyond its limit. */
const CHUNK = 64 * 1024;

// One scratch output buffer for the whole thread: every call is synchronous, so no two calls
// can use it at once. A call that fills it keeps it and allocates a new one.
let scratch = Buffer.allocUnsafe(CHUNK);

/**
 * The stream's own output buffer and its size, which its asynchronous path (`write` + `flush`,
 * on the thread pool) fills: `processChunk` hands zlib `_outBuffer` at `_outOffset` with room
 * for `_chunkSize - _outOffset` bytes. Our streams are made with the smallest chunk (64 bytes,
 * so an idle connection holds no output buffer); `runAsync` gives the stream a large one for the
 * run (a 64-byte chunk would cost a thread-pool round trip per 64 bytes) and takes it back after.
 */
interface StreamBuffers {
  _chunkSize: number;
  _outBuffer: Buffer;
  _outOffset: number;
}

/** The internals a SyncZlib needs, or undefined when this stream does not have them. */
function internalsOf(stream: zlib.DeflateRaw | zlib.InflateRaw): { handle: NativeZlibHandle; state: Uint32Array } | undefined {
  const internals = stream as unknown as { _handle?: NativeZlibHandle; _writeState?: unknown } & Partial<StreamBuffers>;
  const handle = internals._handle;
  const state = internals._writeState;
  if (!handle || typeof handle.writeSync !== 'function' || typeof handle.reset !== 'function' || !(state instanceof Uint32Array)) return undefined;
  if (typeof handle.onerror !== 'function' || typeof internals._chunkSize !== 'number' || !Buffer.isBuffer(internals._outBuffer) || typeof internals._outOffset !== 'number') {
    return undefined;
  }
  return { handle, state };
}

/** The output chunk of a thread-pool run: few round trips, and at most this much held beyond a limit. */
const ASYNC_CHUNK = 256 * 1024;

let available: boolean | undefined;
let forced: boolean | undefined;

/**
 * Whether this Node exposes the handle API that SyncZlib drives, checked once by compressing and
 * inflating a message through it (the shape alone could hide a change of meaning).
 */
export function syncZlibAvailable(): boolean {
  if (forced !== undefined) return forced;
  if (available === undefined) available = probe();
  return available;
}

/** Tests only: force the fallback (false) or the native path (true); undefined restores the probe. */
export function forceSyncZlib(value: boolean | undefined): void {
  forced = value;
}

function probe(): boolean {
  const d = zlib.createDeflateRaw({ chunkSize: zlib.constants.Z_MIN_CHUNK });
  const i = zlib.createInflateRaw({ chunkSize: zlib.constants.Z_MIN_CHUNK });
  try {
    if ((d as unknown as StreamBuffers)._outBuffer.length !== (d as unknown as StreamBuffers)._chunkSize) return false;
    if (internalsOf(d) === undefined || internalsOf(i) === undefined) return false;
    const text = Buffer.from('permessage-deflate probe, permessage-deflate probe');
    const dz = new SyncZlib(d);
    const iz = new SyncZlib(i);
    const packed: Buffer[] = [];
    if (dz.write(text, 0, text.length, zlib.constants.Z_SYNC_FLUSH, packed, Infinity, Infinity) !== 'ok') return false;
    const plain: Buffer[] = [];
    const input = Buffer.concat(packed);
    if (iz.write(input, 0, input.length, zlib.constants.Z_SYNC_FLUSH, plain, Infinity, Infinity) !== 'ok') return false;
    return Buffer.concat(plain).equals(text);
  } catch {
    return false;
  } finally {
    d.close();
    i.close();
  }
}

export class SyncZlib {
  readonly #stream: zlib.DeflateRaw | zlib.InflateRaw;
  readonly #handle: NativeZlibHandle;
  readonly #state: Uint32Array;
  #error: string | undefined;
  #closed = false;
  /** Node's own error handler (it destroys the stream and emits 'error'): the async path needs it. */
  readonly #nodeOnError: NativeZlibHandle['onerror'];
  readonly #onError: NativeZlibHandle['onerror'];
  /** The public-API view of the same stream, made by the first `runAsync`. */
  #async: StreamZlib | undefined;
  #running = false;
  /** Offset in the last `write`'s input up to which zlib consumed it. */
  consumed = 0;

  constructor(stream: zlib.DeflateRaw | zlib.InflateRaw) {
    const internals = internalsOf(stream);
    if (internals === undefined) {
      stream.close();
      throw new Error(`zlib's synchronous handle API is missing in Node ${process.version}`);
    }
    this.#stream = stream;
    this.#handle = internals.handle;
    this.#state = internals.state;
    // The native side reports errors through `onerror`, synchronously inside writeSync. Node's
    // own handler would destroy the stream and emit 'error' later; we record the message.
    this.#nodeOnError = this.#handle.onerror;
    this.#onError = this.#handle.onerror = (message: string) => {
      this.#error = message;
    };
  }

  /** A `runAsync` is in progress: nothing else may use this stream until its `done`. */
  get running(): boolean {
    return this.#running;
  }

  /**
   * Run `input` through the same zlib stream (same window: RFC 7692 §7.1.1 context takeover)
   * on libuv's thread pool, with `flush`; `done` gets the output chunks ('limit': more than
   * `limit` bytes came out and the stream was closed there), or an Error. Never calls `done`
   * synchronously. Until `done`, `write` and `reset` must not be called; `close` may be: Node
   * defers the handle's close until the thread-pool write in progress has returned.
   */
  runAsync(input: Uint8Array, flush: number, limit: number, done: (result: StreamResult) => void): void {
    const stream = this.#stream as unknown as StreamBuffers;
    if (!this.#closed) {
      // zlib errors must reach the stream now (its 'error', then our callback), not #error.
      this.#handle.onerror = this.#nodeOnError;
      stream._chunkSize = ASYNC_CHUNK;
      stream._outBuffer = Buffer.allocUnsafe(ASYNC_CHUNK);
      stream._outOffset = 0;
    }
    this.#running = true;
    (this.#async ??= new StreamZlib(this.#stream)).run(input, flush, limit, (result) => {
      this.#running = false;
      if (!this.#closed) {
        this.#handle.onerror = this.#onError;
        stream._chunkSize = zlib.constants.Z_MIN_CHUNK;
        stream._outBuffer = Buffer.allocUnsafe(zlib.constants.Z_MIN_CHUNK);
        stream._outOffset = 0;
      }
      done(result);
    });
  }

  /** Output bytes of the `runAsync` in progress so far (0 when none runs). */
  get asyncPending(): number {
    return this.#running ? this.#async!.pending : 0;
  }

  /** Tests: the output chunks of the `runAsync` in progress. */
  get asyncPendingChunks(): readonly Buffer[] {
    return this.#running ? this.#async!.pendingChunks : [];
  }

  /** The stream ended with a final block during a `runAsync` (RFC 7692 §7.2.3.4). */
  get asyncEnded(): boolean {
    return this.#async?.ended === true;
  }

  /**
   * Run `input[inOff, inOff + inLen)` through zlib with `flush`, collecting output in `out`.
   * Returns 'limit' once more than `limit` bytes came out (stopping there: a bomb stops at the
   * limit); 'more' once at least `budget` bytes came out and zlib has more to give (call again
   * from `this.consumed`, with the same flush); 'ended' when the deflate stream ended (BFINAL)
   * before all input was used, with `this.consumed` saying how much was; otherwise 'ok'.
   * A zlib error is thrown as an Error with zlib's message.
   */
  write(input: Uint8Array, inOff: number, inLen: number, flush: number, out: Buffer[], limit: number, budget: number): 'ok' | 'limit' | 'more' | 'ended' {
    const handle = this.#handle;
    const state = this.#state;
    let produced = 0;
    let buf = scratch;
    let off = 0;
    for (;;) {
      handle.writeSync(flush, input, inOff, inLen, buf, off, buf.length - off);
      if (this.#error !== undefined) throw new Error(this.#error);
      const availOut = state[0]!;
      const availIn = state[1]!;
      const have = buf.length - off - availOut;
      inOff += inLen - availIn;
      inLen = availIn;
      produced += have;
      off += have;
      // Checked after every chunk, so a bomb stops here, not after inflating everything.
      if (produced > limit) return 'limit';
      if (availOut === 0) {
        // The chunk is full: keep it (it becomes part of the result) and continue in a new one.
        out.push(buf.subarray(0, off));
        buf = scratch = Buffer.allocUnsafe(CHUNK);
        off = 0;
        if (produced >= budget) {
          this.consumed = inOff;
          return 'more';
        }
        continue;
      }
      // Output space left over: zlib took all the input it could. Input left means the
      // stream ended (a final block) before it.
      if (off > 0) out.push(Buffer.from(buf.subarray(0, off))); // copy out of the scratch
      this.consumed = inOff;
      return inLen > 0 ? 'ended' : 'ok';
    }
  }

  reset(): void {
    this.#error = undefined;
    this.#handle.reset();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // During a runAsync, Node closes the handle once the thread-pool write has returned, and
    // the run ends with an error ('zlib stream closed'), never with freed memory.
    if (this.#async !== undefined) this.#async.close();
    else this.#stream.close();
  }
}
