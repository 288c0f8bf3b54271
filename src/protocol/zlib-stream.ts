import zlib from 'node:zlib';

/**
 * Input handed to zlib per thread-pool job. Node runs each written chunk as jobs that end when the
 * chunk is used up or the output chunk (256 KiB) is full; a 16 MiB compressible message written
 * whole made jobs of ~9 MiB of input each (~17 ms of deflate at level 1 here), and a pool thread
 * on the event loop's core then held that core for a scheduler slice whenever the loop woke:
 * loop delay p99 5.0-7.7 ms, against 1.2-1.4 ms in 256 KiB pieces (bench/RESULTS.md, issue 15,
 * 2026-12-03 evening). Written in pieces, each job is bounded by this much input.
 */
export const POOL_INPUT_PIECE = 256 * 1024;

/** What a run gives: the output chunks ('limit': more than the limit came out), or zlib's error. */
export type StreamResult = Error | { chunks: Buffer[]; status: 'ok' | 'limit' };

/**
 * The fallback of SyncZlib (zlib-sync.ts) on the public API, for a Node whose zlib handle
 * internals are missing: one zlib stream, written and flushed asynchronously (the work runs on
 * libuv's thread pool). The stream keeps its window between messages, which the one-shot
 * `zlib.*Sync` functions cannot (RFC 7692 §7.1.1 context takeover). Calls must not overlap: the
 * codec runs one at a time per stream, in message order. SyncZlib.runAsync uses it too, on the
 * stream that SyncZlib drives synchronously in between (the same window).
 */
export class StreamZlib {
  readonly #stream: zlib.DeflateRaw | zlib.InflateRaw;
  #chunks: Buffer[] = [];
  #produced = 0;
  #limit = Infinity;
  #error: Error | undefined;
  #ended = false;
  #closed = false;

  constructor(stream: zlib.DeflateRaw | zlib.InflateRaw) {
    this.#stream = stream;
    stream.on('data', (chunk: Buffer) => {
      this.#produced += chunk.length;
      this.#chunks.push(chunk);
      // A bomb stops at the limit: the stream is closed, so nothing more is inflated.
      if (this.#produced > this.#limit) this.close();
    });
    stream.on('error', (err: Error) => {
      this.#error = err;
    });
    // RFC 7692 §7.2.3.4: a final block ends the deflate stream; zlib then takes no more input.
    stream.on('end', () => {
      this.#ended = true;
    });
  }

  /** The stream ended with a final block (inflate). */
  get ended(): boolean {
    return this.#ended;
  }

  /** Output bytes of the run in progress so far (an inflate counts them against the inbound budget as they arrive). */
  get pending(): number {
    return this.#produced;
  }

  /** Tests: the output chunks of the run in progress. */
  get pendingChunks(): readonly Buffer[] {
    return this.#chunks;
  }

  /**
   * Write `input` and flush with `flush`; `done` gets the output chunks and 'limit' when more
   * than `limit` bytes came out, or an Error. Never calls `done` synchronously.
   */
  run(input: Uint8Array, flush: number, limit: number, done: (result: StreamResult) => void): void {
    this.#chunks = [];
    this.#produced = 0;
    this.#limit = limit;
    const finish = (): void => {
      const chunks = this.#chunks;
      const produced = this.#produced;
      this.#chunks = [];
      this.#produced = 0;
      if (produced > limit) done({ chunks, status: 'limit' });
      else if (this.#error !== undefined) done(this.#error);
      else if (this.#closed) done(new Error('zlib stream closed'));
      else done({ chunks, status: 'ok' });
    };
    if (this.#closed || this.#ended) {
      process.nextTick(finish);
      return;
    }
    // Views, not copies: the stream holds them until zlib has taken them.
    for (let off = 0; off < input.length; off += POOL_INPUT_PIECE) this.#stream.write(input.subarray(off, off + POOL_INPUT_PIECE));
    // The flush callback runs after the flushed output was emitted as 'data' (ws relies on the
    // same order); after an error or a close it may never run, so 'close' finishes too.
    let called = false;
    const once = (): void => {
      if (called) return;
      called = true;
      this.#stream.off('close', once);
      finish();
    };
    this.#stream.once('close', once);
    this.#stream.flush(flush, once);
  }

  /** Start the next message from an empty window (public `zlib.reset()`); not during a run. */
  reset(): void {
    if (!this.#closed && !this.#ended) this.#stream.reset();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stream.close();
  }
}
