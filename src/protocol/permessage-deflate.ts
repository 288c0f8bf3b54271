import { compressorWindowBits } from './deflate-codec.js';
import { ErrorCode, HandshakeError, WebSocketError } from './errors.js';
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
  /**
   * Messages larger than this many bytes (before compressing; after inflating) are compressed
   * or inflated on libuv's thread pool, off the event loop (issue 15); smaller ones in one
   * synchronous call. Default 131072 (128 KiB).
   */
  threadPoolThreshold?: number;
  /** zlib jobs of one server on the thread pool at once (default 2). */
  threadPoolConcurrency?: number;
  /** Jobs that may wait for the pool, in count (default 1024) and input bytes (default 256 MiB); past either, a message runs on the event loop in ~1 ms slices. */
  threadPoolMaxQueued?: number;
  threadPoolMaxQueuedBytes?: number;
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
 * - mode 'shared': what a server with many connections wants. bench/deflate-modes.mjs at 10,000
 *   connections of 1 KiB JSON chat messages: 'dedicated' costs ~240 KiB per connection more than
 *   no compression, 'shared' ~25 KiB (its inflater), for 25% more bytes on the wire (0.42 of
 *   the original against 0.33); smaller windows in 'dedicated' still cost ~95 KiB and compress
 *   worse than 'shared' at 9 bits. Figures: bench/RESULTS.md, *deflate-modes*.
 */
export const defaultDeflateOptions: DeflateOptions = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
  threshold: 1024,
  level: 1,
  memLevel: 8,
  mode: 'shared',
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

export { PerMessageDeflate, compressShared, shareLargeCompression, type CodecJob } from './deflate-codec.js';
