/**
 * The bytes a published message travels in between nodes (through Redis): a small header and the
 * payload as it was given, so binary payloads cross unchanged and the receiving node frames once.
 *
 * ```
 * 0      version (1)
 * 1      flags: bit 0 binary, bit 1 a conflation key follows, bit 2 broadcast (no topic)
 * 2..9   origin node id (8 random bytes): a node skips what it published itself
 * [10..11 key length, big-endian u16; then the key's UTF-8 bytes]   when bit 1 is set
 * ...    payload
 * ```
 * Pure functions, no I/O: tested byte by byte in test/scale/redis-envelope.test.ts.
 */

export const ENVELOPE_VERSION = 1;
export const NODE_ID_BYTES = 8;
const HEADER_BYTES = 2 + NODE_ID_BYTES;
/** A conflation key is a short name; its length travels as a u16. */
export const MAX_KEY_BYTES = 0xffff;

const FLAG_BINARY = 1;
const FLAG_KEY = 2;
const FLAG_BROADCAST = 4;

export interface Envelope {
  origin: Buffer;
  broadcast: boolean;
  isBinary: boolean;
  key: string | undefined;
  /** A view into the received bytes (no copy). */
  payload: Buffer;
}

/** The header and the payload in one buffer (one allocation, one copy of the payload). */
export function encodeEnvelope(origin: Buffer, broadcast: boolean, data: string | Uint8Array, isBinary: boolean, key: string | undefined): Buffer {
  const dataBytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
  const keyBytes = key === undefined ? 0 : Buffer.byteLength(key);
  if (keyBytes > MAX_KEY_BYTES) throw new RangeError(`conflation key is ${keyBytes} bytes (at most ${MAX_KEY_BYTES})`);
  const keyField = key === undefined ? 0 : 2 + keyBytes;
  const out = Buffer.allocUnsafe(HEADER_BYTES + keyField + dataBytes);
  out[0] = ENVELOPE_VERSION;
  out[1] = (isBinary ? FLAG_BINARY : 0) | (key === undefined ? 0 : FLAG_KEY) | (broadcast ? FLAG_BROADCAST : 0);
  origin.copy(out, 2, 0, NODE_ID_BYTES);
  let at = HEADER_BYTES;
  if (key !== undefined) {
    out.writeUInt16BE(keyBytes, at);
    out.write(key, at + 2, 'utf8');
    at += keyField;
  }
  if (typeof data === 'string') out.write(data, at, 'utf8');
  else out.set(data, at);
  return out;
}

/** Whether `message` was sent by the node `origin` (compared in place, no allocation). */
export function isFromNode(message: Buffer, origin: Buffer): boolean {
  return message.length >= HEADER_BYTES && message.compare(origin, 0, NODE_ID_BYTES, 2, HEADER_BYTES) === 0;
}

/** The envelope in `message`, or undefined when it is not one of ours (wrong version, truncated). */
export function decodeEnvelope(message: Buffer): Envelope | undefined {
  if (message.length < HEADER_BYTES || message[0] !== ENVELOPE_VERSION) return undefined;
  const flags = message[1]!;
  if (flags > (FLAG_BINARY | FLAG_KEY | FLAG_BROADCAST)) return undefined;
  let at = HEADER_BYTES;
  let key: string | undefined;
  if ((flags & FLAG_KEY) !== 0) {
    if (message.length < at + 2) return undefined;
    const n = message.readUInt16BE(at);
    if (message.length < at + 2 + n) return undefined;
    key = message.toString('utf8', at + 2, at + 2 + n);
    at += 2 + n;
  }
  return {
    origin: message.subarray(2, HEADER_BYTES),
    broadcast: (flags & FLAG_BROADCAST) !== 0,
    isBinary: (flags & FLAG_BINARY) !== 0,
    key,
    payload: message.subarray(at),
  };
}
