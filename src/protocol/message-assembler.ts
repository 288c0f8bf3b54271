import { CloseCode } from './constants.js';
import { ErrorCode, ProtocolError } from './errors.js';
import { Utf8Validator } from './utf8.js';
import { ByteAccumulator } from './byte-accumulator.js';

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
  /** The fragments so far: small ones copied into shared blocks, large ones kept (no object per small fragment). */
  readonly #parts: ByteAccumulator;
  readonly #utf8 = new Utf8Validator();

  constructor(options: MessageAssemblerOptions) {
    this.#max = options.maxMessageSize;
    this.#inflater = options.inflater;
    this.#parts = new ByteAccumulator(options.allocate);
  }

  /** Bytes of the message in progress. */
  get buffered(): number {
    return this.#parts.size;
  }

  /** Memory held for the message in progress (the unused rest of its blocks included; the inbound budget counts this). */
  get held(): number {
    return this.#parts.held;
  }

  /** Whether a message has begun and not ended. */
  get inProgress(): boolean {
    return this.#parts.started;
  }

  push(payload: Buffer, fin: boolean, isText: boolean, compressed: boolean): Buffer | undefined | null {
    if (compressed) {
      if (this.#inflater === undefined) {
        return this.#fail(new ProtocolError(ErrorCode.UnexpectedRsv, 'compressed message without a negotiated extension', CloseCode.ProtocolError));
      }
      // The codec counts the whole message against the limit itself, across fragments.
      return this.pushInflated(this.#inflater.decompress(payload, fin, this.#max), fin, isText);
    }
    return this.#append(payload, fin);
  }

  /**
   * The rest of `push` for a compressed frame whose payload the caller inflated (a large one is
   * inflated over several turns of the event loop, src/conn/codec-scheduler.ts): checks the
   * UTF-8 of text and joins it like any other frame; a ProtocolError fails the message.
   */
  pushInflated(out: Buffer | ProtocolError, fin: boolean, isText: boolean): Buffer | undefined | null {
    if (out instanceof ProtocolError) return this.#fail(out);
    if (isText) {
      if (!this.#parts.started) this.#utf8.reset();
      if (!this.#utf8.push(out) || (fin && this.#utf8.incomplete)) {
        return this.#fail(new ProtocolError(ErrorCode.InvalidUtf8, 'text message is not valid UTF-8', CloseCode.InvalidPayloadData));
      }
    }
    return this.#append(out, fin);
  }

  /** Join a frame's (inflated) payload to the message; the whole message once `fin`. */
  #append(payload: Buffer, fin: boolean): Buffer | undefined | null {
    if (fin && !this.#parts.started) return payload;
    // An empty piece marks the message as started too (a compressed text message resets its
    // validator once, on its first frame).
    const size = this.#parts.size + payload.length;
    if (!this.#parts.push(payload, 0, payload.length)) return this.#outOfMemory(size);
    if (!fin) return undefined;
    return this.#parts.join() ?? this.#outOfMemory(size);
  }

  /** Drop a message in progress (the connection is closing). */
  reset(): void {
    this.#parts.reset();
  }

  /** An allocation failed (a block, or the joined message): this message fails, not the process. */
  #outOfMemory(size: number): null {
    return this.#fail(new ProtocolError(ErrorCode.OutOfMemory, `no memory for a message of ${size} bytes`, CloseCode.MessageTooBig));
  }

  #fail(error: ProtocolError): null {
    this.error = error;
    this.reset();
    return null;
  }
}
