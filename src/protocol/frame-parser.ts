import { Buffer } from 'node:buffer';
import { CloseCode, MAX_CONTROL_PAYLOAD, Opcode, type Role } from './constants.js';
import { ErrorCode, ProtocolError } from './errors.js';
import { applyMask, readMaskKey, unmaskShort } from './mask.js';
import { Utf8Validator, isValidUtf8 } from './utf8.js';
import { ByteAccumulator, allocateUnsafe } from './byte-accumulator.js';

export interface FrameParserOptions {
  /** Which end WE are. A server requires masked frames, a client refuses them (RFC 6455 §5.1). */
  role: Role;
  /** Largest payload of one frame, checked at the header. */
  maxFrameSize: number;
  /** Largest message (sum of its frames on the wire), checked at each header. */
  maxMessageSize: number;
  /** RSV1 may mark the first frame of a compressed message (RFC 7692 §6). */
  allowRsv1: boolean;
  /** Most frames in one message, the first one included (default DEFAULT_MAX_FRAGMENTS); more fails with 1009. */
  maxFragments?: number | undefined;
  /**
   * Where the blocks and joined buffers of payloads that span reads come from (default `Buffer.allocUnsafe`). If it
   * throws (an allocation failure), the frame fails with 1009 and WS_ERR_OUT_OF_MEMORY: one
   * connection ends, never the process.
   */
  allocate?: ((size: number) => Buffer) | undefined;
}

/**
 * Default `maxFragments`: 262,144. Autobahn 9.3.1 and 9.4.1 send a 4 MiB message in 64-byte
 * fragments, 65,536 frames (ws's default of 16,384 fails them); a 64-byte-fragment message as
 * large as the default maxMessageSize (16 MiB) is 262,144 frames. A fragment costs the parser and
 * the assembler no object of its own (small payloads are copied into shared blocks), so the limit
 * bounds the CPU spent on one message (zero-length fragments add no bytes), not its memory.
 */
export const DEFAULT_MAX_FRAGMENTS = 262_144;


/** What `advance()` found. */
export const ParseStatus = { NeedMore: 0, Frame: 1, Fail: 2 } as const;
export type ParseStatus = (typeof ParseStatus)[keyof typeof ParseStatus];

/** A frame as `next()` returns it (a fresh object each time; the hot path reads the parser's fields instead). */
export interface Frame {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  masked: boolean;
  payload: Buffer;
  /** For data frames: the opcode of the message this frame belongs to (Text or Binary). */
  messageOpcode: number;
  /** For data frames: whether the message is compressed (RSV1 on its first frame). */
  compressed: boolean;
}

export type ParseEvent = { type: 'frame'; frame: Frame } | { type: 'fail'; error: ProtocolError };

const EMPTY = Buffer.alloc(0);
const STATE_HEADER = 0;
const STATE_PAYLOAD = 1;
const STATE_FAILED = 2;
/** Payloads shorter than this are unmasked by unmaskShort when the read holds many frames. */
const SHORT_PAYLOAD = 128;
/** A read this long holds many small frames: worth a DataView over it (one per read). */
const MANY_FRAMES = 512;
const TEXT_INVALID = 'text message is not valid UTF-8';
const TEXT_ENDS_INSIDE = 'text message ends inside a UTF-8 sequence';

/**
 * Sans-I/O frame parser (RFC 6455 §5.2): `push(chunk)` bytes in, `advance()` frames out.
 *
 * - It never throws. A violation becomes a `Fail` carrying a ProtocolError with the close code;
 *   after that every call returns `Fail` again and all input is discarded.
 * - Every limit and rule that the header decides is checked before a payload byte is buffered.
 * - It takes ownership of pushed chunks: payloads are unmasked in place, and a payload that lies
 *   whole inside one chunk is returned as a view of it (no copy).
 * - Text payloads are checked for UTF-8 as their bytes arrive, across frames and across chunks,
 *   so an invalid byte fails the message on the chunk that brings it (Autobahn 6.4.*).
 *   Compressed messages are checked after inflation, by the MessageAssembler.
 */
export class FrameParser {
  // The current frame, valid after advance() returned Frame. Reused: no object per frame.
  fin = false;
  rsv1 = false;
  opcode = 0;
  masked = false;
  payload: Buffer = EMPTY;
  messageOpcode = 0;
  compressed = false;
  error: ProtocolError | undefined;

  readonly #role: Role;
  readonly #maxFrame: number;
  readonly #maxMessage: number;
  readonly #allowRsv1: boolean;
  readonly #maxFragments: number;

  #buf: Buffer = EMPTY;
  /** `#buf.buffer` and `#buf.byteOffset`, read once per chunk: payload views are made from them. */
  #bufStore: ArrayBufferLike = EMPTY.buffer;
  #bufBase = 0;
  /** A DataView over the current read, made for its first short payload (see unmaskShort). */
  #view: DataView | undefined;
  #pos = 0;
  #state = STATE_HEADER;

  // Payload being filled across chunks: its pieces, joined when the last byte is here.
  #length = 0;
  #filled = 0;
  #key = 0;
  readonly #partial: ByteAccumulator;

  // Message in progress (data frames).
  #inMessage = false;
  #msgOpcode = 0;
  #msgCompressed = false;
  #msgBytes = 0;
  #msgFrames = 0;
  #validateText = false;
  /** Made for the first text message split across frames or reads; most connections never need it. */
  #utf8: Utf8Validator | undefined;

  constructor(options: FrameParserOptions) {
    this.#role = options.role;
    this.#maxFrame = options.maxFrameSize;
    this.#maxMessage = options.maxMessageSize;
    this.#allowRsv1 = options.allowRsv1;
    this.#maxFragments = options.maxFragments ?? DEFAULT_MAX_FRAGMENTS;
    this.#partial = new ByteAccumulator(options.allocate ?? allocateUnsafe);
  }

  /**
   * Let go of every buffer held (the last chunk, the last payload, a partial payload), for a
   * connection that is over. Parsing after this is undefined.
   */
  release(): void {
    this.#dropRead();
    this.#partial.reset();
    this.#filled = 0;
    this.payload = EMPTY;
  }

  /** Let go of the last read (its bytes, its store and the DataView over it). */
  #dropRead(): void {
    this.#buf = EMPTY;
    this.#bufStore = EMPTY.buffer;
    this.#view = undefined;
    this.#pos = 0;
  }

  /** Bytes received that do not yet make a frame. */
  get buffered(): number {
    return this.#buf.length - this.#pos + this.#filled;
  }

  /**
   * Memory held for bytes that do not yet make a frame (the inbound budget counts this): the
   * unparsed rest of the last read and the pieces of a payload in progress (what has arrived,
   * never the length its header announced; a piece kept as a view may also keep the rest of the
   * read it came in, at most one read).
   */
  get held(): number {
    return this.#buf.length - this.#pos + this.#partial.held;
  }

  /** Whether a frame or a fragmented message has begun and not ended (for the message deadline). */
  get inProgress(): boolean {
    return this.#inMessage || this.#state === STATE_PAYLOAD || this.#buf.length > this.#pos;
  }

  push(chunk: Buffer): void {
    if (this.#state === STATE_FAILED || chunk.length === 0) return;
    if (this.#pos >= this.#buf.length) {
      this.#buf = chunk;
    } else {
      // Only a split header is carried over (at most 13 bytes); payloads are copied as they come.
      this.#buf = Buffer.concat([this.#buf.subarray(this.#pos), chunk]);
    }
    this.#bufStore = this.#buf.buffer;
    this.#bufBase = this.#buf.byteOffset;
    this.#view = undefined;
    this.#pos = 0;
  }

  /** Parse the next frame. On `Frame`, read the fields; on `Fail`, read `error`. */
  advance(): ParseStatus {
    if (this.#state === STATE_HEADER) return this.#header();
    if (this.#state === STATE_PAYLOAD) return this.#fill();
    return ParseStatus.Fail;
  }

  /** Allocating convenience over `advance()` for tests and `handleFrame`. */
  next(): ParseEvent | undefined {
    const s = this.advance();
    if (s === ParseStatus.NeedMore) return undefined;
    if (s === ParseStatus.Fail) return { type: 'fail', error: this.error! };
    return { type: 'frame', frame: this.frame() };
  }

  /** A snapshot of the current frame's fields. */
  frame(): Frame {
    return {
      fin: this.fin,
      rsv1: this.rsv1,
      opcode: this.opcode,
      masked: this.masked,
      payload: this.payload,
      messageOpcode: this.messageOpcode,
      compressed: this.compressed,
    };
  }

  #fail(code: ErrorCode, message: string, closeCode: number): ParseStatus {
    this.error = new ProtocolError(code, message, closeCode);
    this.#state = STATE_FAILED;
    this.#dropRead();
    this.#partial.reset();
    this.#filled = 0;
    this.payload = EMPTY;
    return ParseStatus.Fail;
  }

  #header(): ParseStatus {
    const buf = this.#buf;
    const pos = this.#pos;
    const avail = buf.length - pos;
    if (avail < 2) {
      // Everything read so far is parsed: let go of the last chunk (an idle connection should
      // not keep its last read alive; payload views handed out keep what they need).
      if (avail === 0 && buf !== EMPTY) {
        this.#dropRead();
        // The caller is done with the last frame when it asks for the next one: its payload view
        // would keep the chunk alive as well.
        this.payload = EMPTY;
      }
      return ParseStatus.NeedMore;
    }
    const b0 = buf[pos]!;
    const b1 = buf[pos + 1]!;
    const fin = (b0 & 0x80) !== 0;
    const rsv1 = (b0 & 0x40) !== 0;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    let len = b1 & 0x7f;
    const control = opcode >= 0x8;

    // RFC 6455 §5.2: RSV bits MUST be 0 unless an extension defines them. RFC 7692 §6: RSV1 is the
    // "Per-Message Compressed" bit, set on the first frame of a message only (§6.1) and never on
    // a control frame.
    if ((b0 & 0x30) !== 0) return this.#fail(ErrorCode.UnexpectedRsv, 'RSV2 and RSV3 must be clear', CloseCode.ProtocolError);
    if (rsv1 && (!this.#allowRsv1 || control || opcode === Opcode.Continuation)) {
      return this.#fail(ErrorCode.UnexpectedRsv, 'RSV1 must be clear', CloseCode.ProtocolError);
    }
    if (control) {
      // §5.5: control frames are 8, 9, 10; not fragmented; at most 125 bytes.
      if (opcode > Opcode.Pong) return this.#fail(ErrorCode.InvalidOpcode, `invalid opcode ${opcode}`, CloseCode.ProtocolError);
      if (!fin) return this.#fail(ErrorCode.InvalidControlFrame, 'control frames must not be fragmented', CloseCode.ProtocolError);
      if (len > MAX_CONTROL_PAYLOAD) {
        return this.#fail(ErrorCode.InvalidControlFrame, 'control frame payload over 125 bytes', CloseCode.ProtocolError);
      }
    } else if (opcode === Opcode.Continuation) {
      // §5.4: a continuation frame continues a message that was started.
      if (!this.#inMessage) {
        return this.#fail(ErrorCode.UnexpectedContinuation, 'continuation frame without a message to continue', CloseCode.ProtocolError);
      }
    } else if (opcode === Opcode.Text || opcode === Opcode.Binary) {
      // §5.4: the fragments of one message are not interleaved with another message.
      if (this.#inMessage) {
        return this.#fail(ErrorCode.ExpectedContinuation, 'new data frame inside a fragmented message', CloseCode.ProtocolError);
      }
    } else {
      return this.#fail(ErrorCode.InvalidOpcode, `invalid opcode ${opcode}`, CloseCode.ProtocolError);
    }
    // §5.1: a client MUST mask every frame it sends, a server MUST NOT mask.
    if (masked !== (this.#role === 'server')) {
      return this.#role === 'server'
        ? this.#fail(ErrorCode.ExpectedMask, 'client frames must be masked', CloseCode.ProtocolError)
        : this.#fail(ErrorCode.UnexpectedMask, 'server frames must not be masked', CloseCode.ProtocolError);
    }

    let headerLen = 2 + (masked ? 4 : 0);
    if (len === 126) headerLen += 2;
    else if (len === 127) headerLen += 8;
    if (avail < headerLen) return ParseStatus.NeedMore;

    let p = pos + 2;
    // §5.2: "the minimal number of bytes MUST be used to encode the length". Refused with 1002, as
    // Chromium's parser does (ws accepts them): a peer that pads lengths is broken or probing.
    if (len === 126) {
      len = (buf[p]! << 8) | buf[p + 1]!;
      p += 2;
      if (len < 126) return this.#fail(ErrorCode.InvalidLength, `length ${len} in a 16-bit field (must use the 7-bit one)`, CloseCode.ProtocolError);
    } else if (len === 127) {
      const hi = buf.readUInt32BE(p);
      const lo = buf.readUInt32BE(p + 4);
      p += 8;
      // §5.2: the most significant bit of a 64-bit length MUST be 0.
      if (hi > 0x7fffffff) return this.#fail(ErrorCode.InvalidLength, '64-bit payload length with the high bit set', CloseCode.ProtocolError);
      if (hi === 0 && lo < 0x10000) return this.#fail(ErrorCode.InvalidLength, `length ${lo} in a 64-bit field (must use a shorter one)`, CloseCode.ProtocolError);
      // Beyond 2^53 no limit could allow it; a number can still hold it exactly below that.
      len = hi > 0x1fffff ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + lo;
    }
    if (len > this.#maxFrame) {
      return this.#fail(ErrorCode.PayloadTooBig, `frame of ${len} bytes exceeds the limit of ${this.#maxFrame}`, CloseCode.MessageTooBig);
    }
    if (!control) {
      const total = (opcode === Opcode.Continuation ? this.#msgBytes : 0) + len;
      if (total > this.#maxMessage) {
        return this.#fail(ErrorCode.PayloadTooBig, `message exceeds the limit of ${this.#maxMessage} bytes`, CloseCode.MessageTooBig);
      }
      if (opcode === Opcode.Continuation) {
        // Counted at the header, so a flood of empty fragments stops at the limit too.
        if (++this.#msgFrames > this.#maxFragments) {
          return this.#fail(ErrorCode.TooManyFragments, `message of more than ${this.#maxFragments} fragments`, CloseCode.MessageTooBig);
        }
      } else {
        this.#msgFrames = 1;
        this.#msgOpcode = opcode;
        this.#msgCompressed = rsv1;
        this.#validateText = opcode === Opcode.Text && !rsv1;
        this.#utf8?.reset();
      }
      this.#msgBytes = total;
      this.#inMessage = !fin;
    }
    this.#key = masked ? readMaskKey(buf, p) : 0;
    if (masked) p += 4;

    this.fin = fin;
    this.rsv1 = rsv1;
    this.opcode = opcode;
    this.masked = masked;
    this.messageOpcode = control ? opcode : this.#msgOpcode;
    this.compressed = control ? false : this.#msgCompressed;
    this.#length = len;
    this.#pos = p;

    if (buf.length - p >= len) {
      // Whole payload in this chunk: unmask in place and hand out a view.
      const end = p + len;
      let ascii = false;
      if (masked) {
        if (len < SHORT_PAYLOAD && len >= 4 && buf.length >= MANY_FRAMES) {
          // Pipelined small frames: unmask by words and learn on the way whether it is all ASCII.
          const view = (this.#view ??= new DataView(this.#bufStore, this.#bufBase, buf.length));
          ascii = (unmaskShort(view, this.#key, p, end) & 0x80808080) === 0;
        } else {
          applyMask(buf, this.#key, p, end, 0);
        }
      }
      // A view made from the chunk's store read at push(): `subarray` reads `buf.buffer` per call,
      // a C++ builtin (GetBuffer and TypedArrayPrototypeBuffer: 3.6% of the small-echo profile).
      const payload = len === 0 ? EMPTY : Buffer.from(this.#bufStore, this.#bufBase + p, len);
      this.#pos = end;
      // ASCII is valid UTF-8 and ends no character early: a message's first frame (the validator
      // was reset at its header) needs no other check. A continuation might finish a character
      // the frame before began, so it is always checked.
      const textError = !control && this.#validateText && !(ascii && opcode === Opcode.Text) ? this.#checkText(payload, 0, len, fin) : undefined;
      if (textError !== undefined) return this.#fail(ErrorCode.InvalidUtf8, textError, CloseCode.InvalidPayloadData);
      this.payload = payload;
      return ParseStatus.Frame;
    }
    // Payload continues in later reads. Its length is a claim, not a budget: its pieces are held as
    // they come (#fill) and joined at the end, so a header announcing 60 MiB followed by a trickle
    // holds what trickled in, not 60 MiB.
    this.#filled = 0;
    this.#state = STATE_PAYLOAD;
    return this.#fill();
  }

  #fill(): ParseStatus {
    const buf = this.#buf;
    const n = Math.min(this.#length - this.#filled, buf.length - this.#pos);
    if (n > 0) {
      const start = this.#pos;
      const end = start + n;
      // We own the chunk: unmask in place, at the payload offset of its first byte.
      if (this.masked) applyMask(buf, this.#key, start, end, this.#filled);
      // Check text as it arrives, so that a bad byte fails before the rest of the frame comes.
      if (this.opcode < 0x8 && this.#validateText && !(this.#utf8 ??= new Utf8Validator()).push(buf, start, end)) {
        return this.#fail(ErrorCode.InvalidUtf8, TEXT_INVALID, CloseCode.InvalidPayloadData);
      }
      if (!this.#partial.push(buf, start, end)) return this.#outOfMemory();
      this.#pos = end;
      this.#filled += n;
    }
    if (this.#filled < this.#length) return ParseStatus.NeedMore;
    const payload = this.#partial.join();
    if (payload === undefined) return this.#outOfMemory();
    this.payload = payload;
    this.#filled = 0;
    this.#state = STATE_HEADER;
    if (this.opcode < 0x8 && this.#validateText && this.fin && this.#utf8?.incomplete === true) {
      return this.#fail(ErrorCode.InvalidUtf8, TEXT_ENDS_INSIDE, CloseCode.InvalidPayloadData);
    }
    return ParseStatus.Frame;
  }

  #outOfMemory(): ParseStatus {
    return this.#fail(ErrorCode.OutOfMemory, `no memory for a frame payload of ${this.#length} bytes`, CloseCode.MessageTooBig);
  }

  /**
   * UTF-8 check of a whole frame payload that arrived in one piece: undefined, or why it fails.
   * The reasons are the ones the chunk-by-chunk path gives, so that the same bytes give the same
   * error however they are chunked.
   */
  #checkText(payload: Buffer, start: number, end: number, fin: boolean): string | undefined {
    if (fin && this.opcode === Opcode.Text) {
      if (isValidUtf8(payload)) return undefined; // one-frame message: whole-payload check
      // Failure only: tell bytes that are wrong from text cut short (the validator was reset at the header).
      return (this.#utf8 ??= new Utf8Validator()).push(payload, start, end) ? TEXT_ENDS_INSIDE : TEXT_INVALID;
    }
    const utf8 = (this.#utf8 ??= new Utf8Validator());
    if (!utf8.push(payload, start, end)) return TEXT_INVALID;
    return fin && utf8.incomplete ? TEXT_ENDS_INSIDE : undefined;
  }
}
