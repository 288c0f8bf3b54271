import zlib from 'node:zlib';

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
    if (input.length > 0) this.#stream.write(input);
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
