/**
 * Bytes that arrive in pieces and are wanted in one Buffer at the end: a frame payload spanning
 * reads (FrameParser), the fragments of a message (MessageAssembler). Issue 10 and STYLE.md §13:
 * a length in a header is a claim, not a budget, so nothing is reserved up front; memory is taken
 * as bytes arrive, and the one Buffer of the announced size is made only once all its bytes are
 * here (then it is a copy of what is held, never more than twice what arrived).
 *
 * - Pieces of at least KEEP bytes are kept as they are (views of the read they came in: no copy
 *   until the join, and no garbage from growing a buffer; doubling a buffer from 64 KiB to 2 MiB
 *   made 2 MiB of garbage a message, and the stress run's peak RSS showed it).
 * - Smaller pieces are copied into blocks that double from 256 bytes to KEEP: a view costs ~100
 *   bytes of its own, so 2,000,000 one-byte fragments held as views took +279 MiB (146 B each);
 *   in blocks they take 2 MB.
 * - An allocation that fails (address space exhausted, `ulimit -v`) makes `push` or `join` return
 *   false or undefined: the caller fails that frame or message with 1009, the process goes on.
 */

/** Pieces at least this large are kept as views; smaller ones are copied into blocks of up to this size. */
export const KEEP = 16 * 1024;
const FIRST_BLOCK = 256;
const EMPTY = Buffer.alloc(0);

export type Allocate = (size: number) => Buffer;

export function allocateUnsafe(size: number): Buffer {
  return Buffer.allocUnsafe(size);
}

export class ByteAccumulator {
  readonly #allocate: Allocate;
  #pieces: Buffer[] | undefined;
  #size = 0;
  #started = false;
  /** The block small pieces are copied into (not in #pieces until closed), and how much of it is used. */
  #block: Buffer = EMPTY;
  #blockUsed = 0;
  /** Unused bytes of blocks closed early by a large piece. */
  #slack = 0;

  constructor(allocate: Allocate = allocateUnsafe) {
    this.#allocate = allocate;
  }

  /** Bytes pushed since the last join or reset. */
  get size(): number {
    return this.#size;
  }

  /** Memory held: the bytes pushed and the unused rest of their blocks. */
  get held(): number {
    return this.#size + this.#slack + this.#block.length - this.#blockUsed;
  }

  /** Something (possibly empty) was pushed since the last join or reset. */
  get started(): boolean {
    return this.#started;
  }

  /** Take `src[start, end)`: kept as a view when large (the caller gives up that memory), else copied. False: no memory. */
  push(src: Buffer, start: number, end: number): boolean {
    this.#started = true;
    const n = end - start;
    if (n === 0) return true;
    try {
      if (n >= KEEP) {
        this.#closeBlock();
        (this.#pieces ??= []).push(start === 0 && end === src.length ? src : src.subarray(start, end));
      } else {
        // Fill the current block, then go on in a new one, which takes at least the rest (< KEEP).
        const put = src.copy(this.#block, this.#blockUsed, start, end);
        this.#blockUsed += put;
        if (put < n) {
          const last = this.#block.length;
          this.#closeBlock();
          this.#block = this.#allocate(Math.min(KEEP, Math.max(FIRST_BLOCK, n - put, last * 2)));
          this.#blockUsed = src.copy(this.#block, 0, start + put, end);
        }
      }
    } catch {
      this.reset();
      return false;
    }
    this.#size += n;
    return true;
  }

  /** Everything pushed, as one Buffer (the only piece itself when there is one); undefined: no memory. Then empty again. */
  join(): Buffer | undefined {
    this.#closeBlock();
    const pieces = this.#pieces;
    let out: Buffer;
    if (pieces === undefined) {
      out = EMPTY;
    } else if (pieces.length === 1) {
      out = pieces[0]!;
    } else {
      try {
        out = this.#allocate(this.#size);
      } catch {
        this.reset();
        return undefined;
      }
      let at = 0;
      for (const p of pieces) at += p.copy(out, at);
    }
    this.reset();
    return out;
  }

  /** Drop everything held. */
  reset(): void {
    this.#pieces = undefined;
    this.#size = 0;
    this.#started = false;
    this.#block = EMPTY;
    this.#blockUsed = 0;
    this.#slack = 0;
  }

  #closeBlock(): void {
    if (this.#blockUsed === 0) return;
    (this.#pieces ??= []).push(this.#block.subarray(0, this.#blockUsed));
    this.#slack += this.#block.length - this.#blockUsed;
    this.#block = EMPTY;
    this.#blockUsed = 0;
  }
}
