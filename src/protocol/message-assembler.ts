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
}

const EMPTY = Buffer.alloc(0);

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
  #parts: Buffer[] = [];
  #size = 0;
  readonly #utf8 = new Utf8Validator();

  constructor(options: MessageAssemblerOptions) {
    this.#max = options.maxMessageSize;
    this.#inflater = options.inflater;
  }

  /** Bytes held for the message in progress. */
  get buffered(): number {
    return this.#size;
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
      if (this.#size === 0 && this.#parts.length === 0) this.#utf8.reset();
      if (!this.#utf8.push(out) || (fin && this.#utf8.incomplete)) {
        return this.#fail(new ProtocolError(ErrorCode.InvalidUtf8, 'text message is not valid UTF-8', CloseCode.InvalidPayloadData));
      }
    }
    return this.#append(out, fin);
  }

  #append(payload: Buffer, fin: boolean): Buffer | undefined {
    if (fin && this.#parts.length === 0) return payload;
    if (payload.length > 0) {
      this.#parts.push(payload);
      this.#size += payload.length;
    } else if (this.#parts.length === 0) {
      // Mark the message as started, so a compressed text message resets its validator once.
      this.#parts.push(EMPTY);
    }
    if (!fin) return undefined;
    const parts = this.#parts;
    const message = parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.#size);
    this.#parts = [];
    this.#size = 0;
    return message;
  }

  /** Drop a message in progress (the connection is closing). */
  reset(): void {
    this.#parts = [];
    this.#size = 0;
  }

  #fail(error: ProtocolError): null {
    this.error = error;
    this.reset();
    return null;
  }
}
