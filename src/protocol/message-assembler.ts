import { CloseCode } from './constants.js';
import { ErrorCode, ProtocolError } from './errors.js';
import { Utf8Validator } from './utf8.js';

/** What the assembler needs from a permessage-deflate codec. */
export interface Inflater {
  /**
   * Inflate one frame's payload of a compressed message; `fin` ends the message. The inflated size
   * of the whole message (all its fragments) is checked against `maxBytes` while inflating.
   * Returns the bytes, or a ProtocolError (1009, 1007).
   */
  decompress(data: Uint8Array, fin: boolean, maxBytes: number): Buffer | ProtocolError;
}

export interface MessageAssemblerOptions {
  maxMessageSize: number;
  inflater?: Inflater | undefined;
  /**
   * Where blocks and the joined message come from (default `Buffer.allocUnsafe`). If it throws (an
   * allocation failure), the message fails with 1009 and WS_ERR_OUT_OF_MEMORY.
   */
  allocate?: ((size: number) => Buffer) | undefined;
}

const EMPTY = Buffer.alloc(0);
/**
 * Payloads under this size are copied into shared blocks of this size instead of being kept as
 * parts: a part costs a Buffer view (~100 B) and an array slot, so 2,000,000 one-byte fragments
 * held +279 MiB as parts (146 B each) and hold 2 MB in blocks. Larger payloads stay parts (no copy
 * before the final join), at under 1% overhead.
 */
const BLOCK = 16 * 1024;

function allocateUnsafe(size: number): Buffer {
  return Buffer.allocUnsafe(size);
}

/**
 * Joins the data frames of one message (RFC 6455 §5.4) and inflates compressed ones (RFC 7692
 * §6.2). The FrameParser has already enforced the order of fragments, the wire-size limits and the
 * UTF-8 of uncompressed text; this adds the inflated-size limit and UTF-8 of inflated text.
 *
 * `push` returns the whole message when `fin` is set, `undefined` while more frames are due, and
 * `null` on failure (read `error`). A one-frame uncompressed message is returned as is: no copy.
 */
export class MessageAssembler {
  error: ProtocolError | undefined;
  readonly #max: number;
  readonly #inflater: Inflater | undefined;
  readonly #allocate: (size: number) => Buffer;
  #parts: Buffer[] = [];
  #size = 0;
  /** The block small payloads are copied into, and how much of it is used (it is not in #parts yet). */
  #block: Buffer = EMPTY;
  #blockUsed = 0;
  /** Unused bytes of blocks closed early by a large payload (they stay allocated until the message ends). */
  #slack = 0;
  /** Size of the last block of this message (the next one doubles it). */
  #lastBlock = 0;
  readonly #utf8 = new Utf8Validator();

  constructor(options: MessageAssemblerOptions) {
    this.#max = options.maxMessageSize;
    this.#inflater = options.inflater;
    this.#allocate = options.allocate ?? allocateUnsafe;
  }

  /** Bytes of the message in progress. */
  get buffered(): number {
    return this.#size;
  }

  /** Memory held for the message in progress (the unused rest of its blocks included; the inbound budget counts this). */
  get held(): number {
    return this.#size + this.#slack + this.#block.length - this.#blockUsed;
  }

  /** Whether a message has begun and not ended. */
  get inProgress(): boolean {
    return this.#parts.length > 0 || this.#blockUsed > 0;
  }

  push(payload: Buffer, fin: boolean, isText: boolean, compressed: boolean): Buffer | undefined | null {
    if (compressed) {
      if (this.#inflater === undefined) {
        return this.#fail(new ProtocolError(ErrorCode.UnexpectedRsv, 'compressed message without a negotiated extension', CloseCode.ProtocolError));
      }
      // The codec counts the whole message against the limit itself, across fragments.
      const out = this.#inflater.decompress(payload, fin, this.#max);
      if (out instanceof ProtocolError) return this.#fail(out);
      if (isText) {
        if (!this.inProgress) this.#utf8.reset();
        if (!this.#utf8.push(out) || (fin && this.#utf8.incomplete)) {
          return this.#fail(new ProtocolError(ErrorCode.InvalidUtf8, 'text message is not valid UTF-8', CloseCode.InvalidPayloadData));
        }
      }
      payload = out;
    }
    if (fin && this.#parts.length === 0 && this.#blockUsed === 0) return payload;
    const n = payload.length;
    try {
      if (n >= BLOCK) {
        this.#closeBlock();
        this.#parts.push(payload);
      } else if (n > 0) {
        // Fill the current block, then go on in a new one: closed blocks are full.
        const put = payload.copy(this.#block, this.#blockUsed);
        this.#blockUsed += put;
        if (put < n) {
          this.#closeBlock();
          // Blocks double from 256 bytes to BLOCK (a message of a few small fragments holds little), and
          // the new block takes at least the rest of this payload (under BLOCK).
          this.#block = this.#allocate(Math.min(BLOCK, Math.max(256, n - put, this.#lastBlock * 2)));
          this.#lastBlock = this.#block.length;
          this.#blockUsed = payload.copy(this.#block, 0, put);
        }
      } else if (this.#parts.length === 0 && this.#blockUsed === 0) {
        // Mark the message as started, so a compressed text message resets its validator once.
        this.#parts.push(EMPTY);
      }
      this.#size += n;
      if (!fin) return undefined;
      this.#closeBlock();
      const parts = this.#parts;
      const message = parts.length === 1 ? parts[0]! : this.#join(parts);
      this.#parts = [];
      this.#size = 0;
      this.#slack = 0;
      this.#lastBlock = 0;
      return message;
    } catch {
      // An allocation failed (a block, or the joined message): this message fails, not the process.
      return this.#fail(new ProtocolError(ErrorCode.OutOfMemory, `no memory for a message of ${this.#size + n} bytes`, CloseCode.MessageTooBig));
    }
  }

  /** Drop a message in progress (the connection is closing). */
  reset(): void {
    this.#parts = [];
    this.#size = 0;
    this.#block = EMPTY;
    this.#blockUsed = 0;
    this.#slack = 0;
    this.#lastBlock = 0;
  }

  /** Move the used part of the current block into the parts; the next small payload starts a new one. */
  #closeBlock(): void {
    if (this.#blockUsed === 0) return;
    this.#parts.push(this.#block.subarray(0, this.#blockUsed));
    this.#slack += this.#block.length - this.#blockUsed;
    this.#block = EMPTY;
    this.#blockUsed = 0;
  }

  #join(parts: Buffer[]): Buffer {
    const out = this.#allocate(this.#size);
    let at = 0;
    for (const part of parts) at += part.copy(out, at);
    return out;
  }

  #fail(error: ProtocolError): null {
    this.error = error;
    this.reset();
    return null;
  }
}
