import type { ProtocolError } from './errors.js';

/** Bytes copied per turn of the event loop when a large inflated message is joined (~0.3 ms; 2 MiB measured p99 1.26x ws, 512 KiB 1.10x). */
export const COPY_SLICE = 512 * 1024;

const EMPTY = Buffer.alloc(0);

/**
 * Join the output chunks of a thread-pool inflate (up to maxMessageSize) into one Buffer over a
 * few turns of the event loop: one Buffer.concat of 16 MiB measured 13-21 ms on the loop under
 * load (the longest task left once zlib ran on the pool, bench/RESULTS.md issue 15), so a large
 * output is copied COPY_SLICE bytes per turn.
 *
 * For the inbound budget (issue 15, memory): while it runs, the join holds the chunks not yet
 * copied AND the joined buffer (made at once, at its full size), so `held` counts both, and each
 * chunk is let go (and uncounted) as soon as it is copied. At the start that is twice the
 * message; the connection counts it (src/conn/conn.ts `inboundBytes`).
 *
 * `failed` ends it early (the codec was closed or failed); `done` gets the Buffer or that error.
 * A total of at most 2 * COPY_SLICE is joined at once, before the constructor returns.
 */
export class JoinInTurns {
  /** Bytes held now: the chunks not yet copied, and the joined buffer once made. */
  held = 0;
  readonly #chunks: Buffer[];
  readonly #failed: () => ProtocolError | undefined;
  readonly #done: (r: Buffer | ProtocolError) => void;
  #out: Buffer = EMPTY;
  #i = 0;
  #off = 0;

  constructor(chunks: Buffer[], failed: () => ProtocolError | undefined, done: (r: Buffer | ProtocolError) => void) {
    this.#chunks = chunks;
    this.#failed = failed;
    this.#done = done;
    let total = 0;
    for (const c of chunks) total += c.length;
    if (total <= 2 * COPY_SLICE) {
      this.#finish(chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total));
      return;
    }
    this.#out = Buffer.allocUnsafe(total);
    this.held = 2 * total;
    this.#step();
  }

  /** Tests: what the join really references, found by walking its buffers (each distinct ArrayBuffer of the chunks once). */
  walk(): number {
    const seen = new Set<ArrayBufferLike>();
    let n = this.#out.length;
    for (let i = this.#i; i < this.#chunks.length; i++) {
      const b = this.#chunks[i]!.buffer;
      if (!seen.has(b)) {
        seen.add(b);
        n += b.byteLength;
      }
    }
    return n;
  }

  readonly #step = (): void => {
    const err = this.#failed();
    if (err !== undefined) {
      this.#finish(err);
      return;
    }
    const chunks = this.#chunks;
    const until = this.#off + COPY_SLICE;
    while (this.#i < chunks.length && this.#off < until) {
      const c = chunks[this.#i]!;
      this.#off += c.copy(this.#out, this.#off);
      this.held -= c.length;
      chunks[this.#i++] = EMPTY; // let the copied chunk go
    }
    if (this.#i < chunks.length) setImmediate(this.#step);
    else this.#finish(this.#out);
  };

  #finish(r: Buffer | ProtocolError): void {
    this.held = 0;
    this.#chunks.length = 0;
    this.#i = 0;
    this.#out = EMPTY;
    this.#done(r);
  }
}
