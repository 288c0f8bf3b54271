/**
 * Constants named as RFC 6455 and RFC 7692 name them. `as const` objects, not enums, so that
 * they erase to plain numbers and can be used in `switch` without a lookup.
 */

/** RFC 6455 §5.2 opcodes. */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** RFC 6455 §7.4.1 status codes (and the IANA registry entries 1012–1014). */
export const CloseCode = {
  NormalClosure: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  /** Never on the wire: "no status code was present". */
  NoStatusReceived: 1005,
  /** Never on the wire: "the connection was closed abnormally". */
  AbnormalClosure: 1006,
  InvalidPayloadData: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  BadGateway: 1014,
  /** Never on the wire: TLS handshake failure. */
  TlsHandshake: 1015,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * RFC 6455 §7.4.1/§7.4.2: may this status code appear in a Close frame on the wire?
 * 1000–1003 and 1007–1014 are defined; 1004, 1005, 1006 and 1015 are reserved and MUST NOT be
 * sent; 3000–4999 belong to libraries, frameworks and applications. Everything else (0–999,
 * undefined 1016–2999, 5000+) is invalid.
 */
export function isValidWireCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1003) ||
    (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999)
  );
}

/** RFC 6455 §5.5: control frames carry at most 125 payload bytes. */
export const MAX_CONTROL_PAYLOAD = 125;

/** RFC 6455 §1.3: the GUID appended to Sec-WebSocket-Key before hashing. */
export const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** RFC 7692 §7.2.1: the trailing bytes of a sync flush, removed by the sender, re-added by the receiver. */
export const DEFLATE_TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** Which end of the connection we are; decides masking (RFC 6455 §5.1). */
export type Role = 'server' | 'client';
