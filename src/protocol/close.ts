import { CloseCode, MAX_CONTROL_PAYLOAD, isValidWireCloseCode } from './constants.js';
import { ErrorCode, ProtocolError, WebSocketError } from './errors.js';
import { isUtf8 } from './utf8.js';

export interface ClosePayload {
  code: number;
  reason: string;
}

const EMPTY = Buffer.alloc(0);

/**
 * Read a Close frame's body (RFC 6455 §5.5.1). An empty body means "no status" (1005). A body of
 * one byte cannot hold a code: 1002. A code not allowed on the wire: 1002 (§7.4). A reason that is
 * not UTF-8: 1007 (§5.5.1 "the data ... is not guaranteed to be human readable" but §8.1 requires
 * text to be UTF-8, and Autobahn 7.5.1 expects 1007).
 */
export function parseClosePayload(payload: Uint8Array): ClosePayload | ProtocolError {
  if (payload.length === 0) return { code: CloseCode.NoStatusReceived, reason: '' };
  if (payload.length === 1) {
    return new ProtocolError(ErrorCode.InvalidClosePayload, 'close frame body of 1 byte', CloseCode.ProtocolError);
  }
  const code = (payload[0]! << 8) | payload[1]!;
  if (!isValidWireCloseCode(code)) {
    return new ProtocolError(ErrorCode.InvalidCloseCode, `invalid close code ${code}`, CloseCode.ProtocolError);
  }
  if (payload.length === 2) return { code, reason: '' };
  const reasonBytes = payload.subarray(2);
  if (!isUtf8(reasonBytes)) {
    return new ProtocolError(ErrorCode.InvalidUtf8, 'close reason is not valid UTF-8', CloseCode.InvalidPayloadData);
  }
  return { code, reason: Buffer.from(reasonBytes.buffer, reasonBytes.byteOffset, reasonBytes.length).toString('utf8') };
}

/**
 * Build a Close frame's body. `code` undefined sends an empty body (which the peer reads as 1005).
 * Throws a WebSocketError (WS_ERR_INVALID_ARGUMENT) for a code that may not be sent or a reason
 * longer than 123 bytes (§5.5: a control payload is at most 125 bytes, 2 of them the code).
 */
export function encodeClosePayload(code?: number, reason = ''): Buffer {
  if (code === undefined) {
    if (reason !== '') throw new WebSocketError(ErrorCode.InvalidArgument, 'a close reason needs a close code');
    return EMPTY;
  }
  if (!Number.isInteger(code) || !isValidWireCloseCode(code)) {
    throw new WebSocketError(ErrorCode.InvalidArgument, `close code ${code} may not be sent (RFC 6455 §7.4)`);
  }
  const len = Buffer.byteLength(reason);
  if (len > MAX_CONTROL_PAYLOAD - 2) {
    throw new WebSocketError(ErrorCode.InvalidArgument, `close reason is ${len} bytes; at most 123 fit in a close frame`);
  }
  const body = Buffer.allocUnsafe(2 + len);
  body.writeUInt16BE(code, 0);
  body.write(reason, 2, 'utf8');
  return body;
}
