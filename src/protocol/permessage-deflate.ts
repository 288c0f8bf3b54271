import zlib from 'node:zlib';
import { CloseCode, DEFLATE_TRAILER } from './constants.js';
import { ErrorCode, HandshakeError, ProtocolError, WebSocketError } from './errors.js';
import type { ExtensionOffer } from './extensions.js';

/**
 * The permessage-deflate extension (RFC 7692): parameter negotiation for both roles, and a
 * synchronous codec for the connection's hot path.
 */

export const EXTENSION_NAME = 'permessage-deflate';

export interface DeflateOptions {
  /** Ask for (client) or impose (server) a reset of the server's compressor after every message. */
  serverNoContextTakeover: boolean;
  /** Ask for (client) or impose (server) a reset of the client's compressor after every message. */
  clientNoContextTakeover: boolean;
  /** Largest LZ77 window of the server's compressor, as a power of two: 8..15, default 15. */
  serverMaxWindowBits: number;
  /** Largest LZ77 window of the client's compressor, as a power of two: 8..15, default 15. */
  clientMaxWindowBits: number;
  /** Messages shorter than this many bytes are sent uncompressed. */
  threshold: number;
  /** zlib compression level, 0..9. */
  level: number;
  /** zlib memLevel, 1..9: the compressor's hash table is 2^(memLevel+9) bytes. */
  memLevel: number;
  /**
   * The server's compressor. 'dedicated': one zlib stream per connection, with context takeover
   * unless the client asks otherwise (best ratio, ~2^(windowBits+2) + 2^(memLevel+9) bytes of
   * zlib state per connection). 'shared': server_no_context_takeover is always negotiated, and
   * every connection uses one compressor per thread and parameter set (no per-connection
   * deflate memory, and a broadcast is compressed once). Any codec whose own side has no
   * context takeover uses the shared compressor, whatever the mode.
   */
  mode: 'dedicated' | 'shared';
}

/**
 * Defaults, from a micro-benchmark of 1 KiB JSON messages (Node 20, zlib 1.3.1, a loaded 2-core
 * VM, so absolute times are high):
 * - threshold 1024: below 1 KiB a message already fits one TCP segment, so compressing it does
 *   not save a round of packets, yet each compress costs about as much as for 1 KiB (~9 µs,
 *   mostly per-call overhead) and the peer pays an inflate too. Measured savings without
 *   context: 64 B -> 0, 256 B -> 135, 1 KiB -> 746 bytes.
 * - level 1: with context takeover, level 1 took 33 µs and gave 187 bytes per message; level 6
 *   took 84 µs and gave 157 bytes (2.5x the CPU for 16% fewer bytes).
 * - memLevel 8 (zlib's default): a 128 KiB hash table; with a 15-bit window a dedicated
 *   connection measured ~232 KiB RSS for its compressor and inflater, a shared-mode one ~50 KiB.
 */
export const defaultDeflateOptions: DeflateOptions = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
  threshold: 1024,
  level: 1,
  memLevel: 8,
  mode: 'dedicated',
};

/** The negotiated parameters (RFC 7692 §7.1), the same in both roles. */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

const SERVER_NCT = 'server_no_context_takeover';
const CLIENT_NCT = 'client_no_context_takeover';
const SERVER_MWB = 'server_max_window_bits';
const CLIENT_MWB = 'client_max_window_bits';

// RFC 7692 §7.1.2.1/§7.1.2.2: "a decimal integer value without leading zeroes between 8 to 15,
// inclusive".
const WINDOW_BITS_RE = /^(?:8|9|1[0-5])$/;

interface ParsedParams {
  serverNct: boolean;
  clientNct: boolean;
  serverMwb: number | undefined;
  /** `true`: present without a value. */
  clientMwb: number | true | undefined;
}

/**
 * Read the parameters of one permessage-deflate element. Returns a string describing the first
 * problem instead of throwing: the server skips such an offer, the client fails on it.
 * `clientMwbNeedsValue`: in a response, client_max_window_bits must carry a value (§7.1.2.2).
 */
function readParams(params: ExtensionOffer['params'], clientMwbNeedsValue: boolean): ParsedParams | string {
  const out: ParsedParams = { serverNct: false, clientNct: false, serverMwb: undefined, clientMwb: undefined };
  const seen = new Set<string>();
  for (const [name, value] of params) {
    // §7.1: "the extension negotiation offer/response ... MUST NOT include ... more than one
    // instance of a parameter" (each parameter appears at most once).
    if (seen.has(name)) return `duplicate parameter ${name}`;
    seen.add(name);
    switch (name) {
      case SERVER_NCT:
      case CLIENT_NCT:
        // §7.1.1.1/§7.1.1.2: "This parameter has no value."
        if (value !== true) return `parameter ${name} must have no value`;
        if (name === SERVER_NCT) out.serverNct = true;
        else out.clientNct = true;
        break;
      case SERVER_MWB:
        // §7.1.2.1: server_max_window_bits always carries a value.
        if (value === true || !WINDOW_BITS_RE.test(value)) return `invalid value for ${name}: ${value === true ? '(none)' : value}`;
        out.serverMwb = Number(value);
        break;
      case CLIENT_MWB:
        // §7.1.2.2: in an offer it may have no value; in a response it must have one.
        if (value === true) {
          if (clientMwbNeedsValue) return `invalid value for ${name}: (none)`;
          out.clientMwb = true;
        } else {
          if (!WINDOW_BITS_RE.test(value)) return `invalid value for ${name}: ${value}`;
          out.clientMwb = Number(value);
        }
        break;
      default:
        // §7.1: an unknown parameter makes the element unusable.
        return `unknown parameter ${name}`;
    }
  }
  return out;
}

/**
 * Server side (RFC 7692 §5.1, §7.1): choose the first permessage-deflate offer we can honour
 * under `opts` and build the response element, which names exactly the parameters in use.
 * Offers with unknown or duplicate parameters or bad values are skipped, not fatal: the client
 * may have listed a fallback after them. Returns undefined to decline the extension.
 */
export function negotiateDeflateServer(
  offers: readonly ExtensionOffer[],
  opts: DeflateOptions,
): { params: DeflateParams; response: ExtensionOffer } | undefined {
  for (const offer of offers) {
    if (offer.name !== EXTENSION_NAME) continue;
    const p = readParams(offer.params, false);
    if (typeof p === 'string') continue;

    // client_max_window_bits (§7.1.2.2): without it in the offer we may not answer it, so a
    // configured limit on the client's window cannot be imposed: skip this offer.
    let clientBits = 15;
    if (p.clientMwb === undefined) {
      if (opts.clientMaxWindowBits < 15) continue;
    } else {
      clientBits = p.clientMwb === true ? opts.clientMaxWindowBits : Math.min(p.clientMwb, opts.clientMaxWindowBits);
    }

    // server_no_context_takeover (§7.1.1.1): honour the client's request; impose it when
    // configured or when one compressor is shared by every connection.
    const serverNct = p.serverNct || opts.serverNoContextTakeover || opts.mode === 'shared';
    // client_no_context_takeover (§7.1.1.2): "A server MAY include [it] ... even if [the offer]
    // didn't"; echoed when the client announced it too, so both ends state the same thing.
    const clientNct = p.clientNct || opts.clientNoContextTakeover;
    // server_max_window_bits (§7.1.2.1): an offered value caps ours; we answer "the same or
    // smaller value". Without one, we may still announce a smaller window.
    const serverBits = p.serverMwb === undefined ? opts.serverMaxWindowBits : Math.min(p.serverMwb, opts.serverMaxWindowBits);

    const response: ExtensionOffer = { name: EXTENSION_NAME, params: [] };
    if (serverNct) response.params.push([SERVER_NCT, true]);
    if (clientNct) response.params.push([CLIENT_NCT, true]);
    if (p.serverMwb !== undefined || serverBits < 15) response.params.push([SERVER_MWB, String(serverBits)]);
    if (clientBits < 15) response.params.push([CLIENT_MWB, String(clientBits)]);
    return {
      params: {
        serverNoContextTakeover: serverNct,
        clientNoContextTakeover: clientNct,
        serverMaxWindowBits: serverBits,
        clientMaxWindowBits: clientBits,
      },
      response,
    };
  }
  return undefined;
}

/**
 * Client side: the one offer we send. client_max_window_bits is always included (we can
 * compress with any window the server picks, §7.1.2.2), with a value when we limit ourselves.
 */
export function buildDeflateOffer(opts: DeflateOptions): ExtensionOffer {
  const offer: ExtensionOffer = { name: EXTENSION_NAME, params: [] };
  if (opts.serverNoContextTakeover) offer.params.push([SERVER_NCT, true]);
  if (opts.clientNoContextTakeover) offer.params.push([CLIENT_NCT, true]);
  if (opts.serverMaxWindowBits < 15) offer.params.push([SERVER_MWB, String(opts.serverMaxWindowBits)]);
  offer.params.push([CLIENT_MWB, opts.clientMaxWindowBits < 15 ? String(opts.clientMaxWindowBits) : true]);
  return offer;
}

function responseError(message: string): HandshakeError {
  return new HandshakeError(ErrorCode.HandshakeFailed, `Invalid permessage-deflate response: ${message}`);
}

/**
 * Client side (RFC 7692 §5.2, §7.1): check the server's `Sec-WebSocket-Extensions` against our
 * offer. Returns undefined when the server declined, the parameters in use when it accepted, and
 * throws `HandshakeError(HandshakeFailed)` for anything §7.1 does not allow ("the client MUST
 * _Fail the WebSocket Connection_"). `offer` is the element we sent, by default
 * `buildDeflateOffer(opts)`.
 */
export function acceptDeflateResponse(
  response: readonly ExtensionOffer[],
  opts: DeflateOptions,
  offer: ExtensionOffer = buildDeflateOffer(opts),
): DeflateParams | undefined {
  let element: ExtensionOffer | undefined;
  for (const ext of response) {
    // RFC 6455 §4.1 item 5: an extension we did not offer fails the connection.
    if (ext.name !== EXTENSION_NAME) throw responseError(`the server accepted ${ext.name}, which was not offered`);
    // §5.2 / RFC 6455 §9.1: the server accepts at most one of our offers.
    if (element !== undefined) throw responseError(`${EXTENSION_NAME} appears more than once`);
    element = ext;
  }
  if (element === undefined) return undefined;

  const p = readParams(element.params, true);
  if (typeof p === 'string') throw responseError(p);
  const ours = readParams(offer.params, false);
  if (typeof ours === 'string') throw new WebSocketError(ErrorCode.InvalidArgument, `Invalid permessage-deflate offer: ${ours}`);

  // §7.1.1.1: an offer with server_no_context_takeover is accepted by including it.
  if (ours.serverNct && !p.serverNct) throw responseError(`${SERVER_NCT} was requested but not accepted`);
  // §7.1.2.1: an offered server_max_window_bits is accepted with the same or a smaller value.
  if (ours.serverMwb !== undefined) {
    if (p.serverMwb === undefined) throw responseError(`${SERVER_MWB} was requested but not accepted`);
    if (p.serverMwb > ours.serverMwb) throw responseError(`${SERVER_MWB}=${p.serverMwb} exceeds the requested ${ours.serverMwb}`);
  }
  // §7.1.2.2: "If a received extension negotiation response has the client_max_window_bits
  // extension parameter but the offer didn't, the client MUST _Fail_".
  let clientBits = typeof ours.clientMwb === 'number' ? ours.clientMwb : 15;
  if (p.clientMwb !== undefined) {
    if (ours.clientMwb === undefined) throw responseError(`${CLIENT_MWB} was not offered`);
    const value = p.clientMwb as number; // readParams requires a value in a response
    // The server may only lower an offered limit ("equal to or smaller than the received value").
    if (typeof ours.clientMwb === 'number' && value > ours.clientMwb) {
      throw responseError(`${CLIENT_MWB}=${value} exceeds the offered ${ours.clientMwb}`);
    }
    clientBits = value;
  }
  return {
    serverNoContextTakeover: p.serverNct,
    // §7.1.1.2: the server may impose it; we keep our own promise if we made one.
    clientNoContextTakeover: p.clientNct || ours.clientNct,
    serverMaxWindowBits: p.serverMwb ?? 15,
    clientMaxWindowBits: clientBits,
  };
}

/**
 * A key that is equal for two parameter sets when one no-context-takeover payload, compressed
 * once by `compressShared`, is valid for both: only the server's window matters (level and
 * memLevel come from the server's options, the same for every connection).
 */
export function deflateParamsKey(p: DeflateParams): string {
  return `${p.serverNoContextTakeover ? 'n' : 't'}${compressorWindowBits(p.serverMaxWindowBits)}`;
}

/**
 * zlib refuses an 8-bit window for raw deflate (since zlib 1.2.9; "until 256-byte window bug
 * fixed" in deflate.c). A 9-bit compressor is safe where 8 was negotiated: zlib never emits a
 * match farther back than the window size minus MIN_LOOKAHEAD (512 - 262 = 250 bytes), so every
 * distance fits the peer's 256-byte window. The test "windowBits 8 ..." checks this on the zlib
 * we run on, across messages with context takeover. Inflating with 8 needs no such care.
 */
function compressorWindowBits(bits: number): number {
  return bits < 9 ? 9 : bits;
}

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
// soon as the output passes a limit. The SyncZlib constructor checks that shape once per stream
// and fails with a clear error where it is missing.

interface NativeZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  reset(): void;
  onerror: (message: string, errno: number) => void;
}

const Z_SYNC_FLUSH = zlib.constants.Z_SYNC_FLUSH;
/** The output chunk: the most a call holds beyond its limit. */
const CHUNK = 64 * 1024;
const EMPTY = Buffer.alloc(0);

// One scratch output buffer for the whole thread: every call is synchronous, so no two calls
// can use it at once. A call that fills it keeps it and allocates a new one.
let scratch = Buffer.allocUnsafe(CHUNK);

class SyncZlib {
  readonly #stream: zlib.DeflateRaw | zlib.InflateRaw;
  readonly #handle: NativeZlibHandle;
  readonly #state: Uint32Array;
  #error: string | undefined;
  #closed = false;
  /** Bytes of the last `write`'s input that zlib consumed. */
  consumed = 0;

  constructor(stream: zlib.DeflateRaw | zlib.InflateRaw) {
    const internals = stream as unknown as { _handle?: NativeZlibHandle; _writeState?: Uint32Array };
    const handle = internals._handle;
    const state = internals._writeState;
    if (!handle || typeof handle.writeSync !== 'function' || typeof handle.reset !== 'function' || !(state instanceof Uint32Array)) {
      stream.close();
      throw new WebSocketError(
        ErrorCode.DeflateFailed,
        `permessage-deflate needs zlib's synchronous handle API, which Node ${process.version} does not expose`,
      );
    }
    this.#stream = stream;
    this.#handle = handle;
    this.#state = state;
    // The native side reports errors through `onerror`, synchronously inside writeSync. Node's
    // own handler would destroy the stream and emit 'error' later; we record the message.
    handle.onerror = (message: string) => {
      this.#error = message;
    };
  }

  /**
   * Run `input` through zlib with Z_SYNC_FLUSH, collecting output in `out`. Stops early (and
   * returns 'limit') once more than `limit` bytes came out; returns 'ended' when the deflate
   * stream ended (BFINAL) before all input was used, with `this.consumed` saying how much was;
   * otherwise 'ok'. A zlib error is thrown as an Error with zlib's message.
   */
  write(input: Uint8Array, out: Buffer[], limit: number): 'ok' | 'limit' | 'ended' {
    const handle = this.#handle;
    const state = this.#state;
    let inOff = 0;
    let inLen = input.length;
    let produced = 0;
    let buf = scratch;
    let off = 0;
    for (;;) {
      handle.writeSync(Z_SYNC_FLUSH, input, inOff, inLen, buf, off, buf.length - off);
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
    this.#stream.close();
  }
}

function createDeflater(windowBits: number, opts: DeflateOptions): SyncZlib {
  return new SyncZlib(
    // chunkSize: the stream's own output buffer is never used (SyncZlib writes into its scratch
    // buffer); at Node's default it cost 16 KiB per stream (64 MiB for 2,000 dedicated peers).
    zlib.createDeflateRaw({ windowBits: compressorWindowBits(windowBits), level: opts.level, memLevel: opts.memLevel, chunkSize: zlib.constants.Z_MIN_CHUNK }),
  );
}

function concat(chunks: Buffer[]): Buffer {
  if (chunks.length === 0) return EMPTY;
  if (chunks.length === 1) return chunks[0]!;
  return Buffer.concat(chunks);
}

/** Compress one message and drop the 00 00 ff ff of the sync flush (RFC 7692 §7.2.1). */
function deflateMessage(z: SyncZlib, data: Uint8Array): Buffer {
  const chunks: Buffer[] = [];
  try {
    z.write(data, chunks, Infinity);
  } catch (err) {
    throw new WebSocketError(ErrorCode.DeflateFailed, `deflate failed: ${(err as Error).message}`, { cause: err });
  }
  let out = concat(chunks);
  // §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail end." A sync flush
  // always ends with them; the check keeps a surprise from corrupting the stream.
  const n = out.length;
  if (n >= 4 && out[n - 4] === 0x00 && out[n - 3] === 0x00 && out[n - 2] === 0xff && out[n - 1] === 0xff) {
    out = out.subarray(0, n - 4);
  }
  return out;
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
  const key = `${bits}:${opts.level}:${opts.memLevel}`;
  let z = sharedDeflaters.get(key);
  if (z === undefined) {
    z = createDeflater(bits, opts);
    sharedDeflaters.set(key, z);
  } else {
    z.reset();
  }
  return deflateMessage(z, data);
}

/**
 * One connection's permessage-deflate codec. Both directions are synchronous; the zlib streams
 * are created on first use, so a connection that never compresses holds no zlib memory.
 */
export class PerMessageDeflate {
  readonly role: 'server' | 'client';
  readonly params: DeflateParams;
  readonly #opts: DeflateOptions;
  /** The window of our compressor (the negotiated value; zlib runs 8 as 9). */
  readonly #deflateBits: number;
  /** Our side has no context takeover: the thread's shared compressor serves every message. */
  readonly #shared: boolean;
  /** The peer's compressor, which our inflater mirrors. */
  readonly #inflateBits: number;
  readonly #inflateReset: boolean;
  #deflater: SyncZlib | undefined;
  #inflater: SyncZlib | undefined;
  /** Inflated bytes of the message in progress, counted against `maxBytes`. */
  #messageBytes = 0;
  /** The message in progress ended with a final block; the rest of it is ignored. */
  #streamEnded = false;
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
  }

  /** Compress one whole message; returns the payload for its frame(s), without the 00 00 ff ff tail (RFC 7692 §7.2.1). */
  compress(data: Uint8Array): Buffer {
    if (this.#closed) throw new WebSocketError(ErrorCode.DeflateFailed, 'permessage-deflate codec is closed');
    // §7.1.1: without context takeover, each message starts from an empty window; the shared
    // compressor is reset (not re-created) before each message.
    if (this.#shared) return compressWithoutContext(data, this.#deflateBits, this.#opts);
    let z = this.#deflater;
    if (z === undefined) z = this.#deflater = createDeflater(this.#deflateBits, this.#opts);
    return deflateMessage(z, data);
  }

  /**
   * Inflate one frame's payload of a compressed message; `fin` ends the message (then 00 00 ff
   * ff is appended, §7.2.2). `maxBytes` limits the whole message's inflated size and is checked
   * while inflating: at most `maxBytes` plus one 64 KiB chunk is ever held. Returns the bytes of
   * this fragment, or a ProtocolError: 1009 when the message is too big, 1007 when the data is
   * not valid DEFLATE. After an error the codec is unusable (the connection fails anyway).
   */
  decompress(data: Uint8Array, fin: boolean, maxBytes: number): Buffer | ProtocolError {
    if (this.#failure !== undefined) return this.#failure;
    let z = this.#inflater;
    if (z === undefined) z = this.#inflater = new SyncZlib(zlib.createInflateRaw({ windowBits: this.#inflateBits, chunkSize: zlib.constants.Z_MIN_CHUNK }));
    const chunks: Buffer[] = [];
    try {
      if (data.length > 0 && !this.#streamEnded && !this.#feed(z, data, chunks, maxBytes)) return this.#tooBig(maxBytes);
      if (fin) {
        // §7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of the payload".
        if (!this.#streamEnded && !this.#feed(z, DEFLATE_TRAILER, chunks, maxBytes)) return this.#tooBig(maxBytes);
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
    return concat(chunks);
  }

  /** Feed `input`; false when the message went over `maxBytes`. */
  #feed(z: SyncZlib, input: Uint8Array, chunks: Buffer[], maxBytes: number): boolean {
    const before = chunks.length;
    const result = z.write(input, chunks, maxBytes - this.#messageBytes);
    for (let i = before; i < chunks.length; i++) this.#messageBytes += chunks[i]!.length;
    if (result === 'limit') return false;
    if (result === 'ended') {
      // RFC 7692 §7.2.3.4: a sender may end a message with a final (BFINAL = 1) block, after
      // which zlib takes no more input. The rest of this message (at least the 00 00 ff ff we
      // append, which means nothing after a final block) is discarded, and the next message
      // starts a new stream: the sender cannot have kept its window past a final block.
      z.reset();
      this.#streamEnded = true;
    }
    return true;
  }

  #tooBig(maxBytes: number): ProtocolError {
    return this.#fail(
      new ProtocolError(ErrorCode.PayloadTooBig, `Inflated message exceeds the limit of ${maxBytes} bytes`, CloseCode.MessageTooBig),
    );
  }

  #fail(err: ProtocolError): ProtocolError {
    this.#failure = err;
    this.#inflater?.close();
    return err;
  }

  /** Release the zlib memory. Idempotent; a shared compressor is not ours to close. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#deflater?.close();
    this.#deflater = undefined;
    this.#inflater?.close();
    this.#inflater = undefined;
    this.#failure ??= new ProtocolError(ErrorCode.InflateFailed, 'permessage-deflate codec is closed', CloseCode.InternalError);
  }
}
