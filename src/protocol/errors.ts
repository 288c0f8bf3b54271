/**
 * One error family with a stable `code` string. Where it applies, an error carries the close
 * code that the connection is (or should be) closed with, and the HTTP status of a refused
 * handshake.
 */

export const ErrorCode = {
  // Framing (RFC 6455 §5)
  InvalidOpcode: 'WS_ERR_INVALID_OPCODE',
  UnexpectedRsv: 'WS_ERR_UNEXPECTED_RSV',
  ExpectedMask: 'WS_ERR_EXPECTED_MASK',
  UnexpectedMask: 'WS_ERR_UNEXPECTED_MASK',
  InvalidControlFrame: 'WS_ERR_INVALID_CONTROL_FRAME',
  InvalidLength: 'WS_ERR_INVALID_LENGTH',
  PayloadTooBig: 'WS_ERR_PAYLOAD_TOO_BIG',
  TooManyFragments: 'WS_ERR_TOO_MANY_FRAGMENTS',
  /** A buffer for bytes the peer sent could not be allocated: that connection fails, not the process. */
  OutOfMemory: 'WS_ERR_OUT_OF_MEMORY',
  UnexpectedContinuation: 'WS_ERR_UNEXPECTED_CONTINUATION',
  ExpectedContinuation: 'WS_ERR_EXPECTED_CONTINUATION',
  InvalidUtf8: 'WS_ERR_INVALID_UTF8',
  InvalidCloseCode: 'WS_ERR_INVALID_CLOSE_CODE',
  InvalidClosePayload: 'WS_ERR_INVALID_CLOSE_PAYLOAD',
  // Compression (RFC 7692)
  InflateFailed: 'WS_ERR_INFLATE_FAILED',
  DeflateFailed: 'WS_ERR_DEFLATE_FAILED',
  // Handshake (RFC 6455 §4)
  HandshakeFailed: 'WS_ERR_HANDSHAKE_FAILED',
  HandshakeTimeout: 'WS_ERR_HANDSHAKE_TIMEOUT',
  UnsupportedVersion: 'WS_ERR_UNSUPPORTED_VERSION',
  InvalidExtensions: 'WS_ERR_INVALID_EXTENSIONS',
  Forbidden: 'WS_ERR_FORBIDDEN',
  TooManyRedirects: 'WS_ERR_TOO_MANY_REDIRECTS',
  // Connection life
  ConnectionClosed: 'WS_ERR_CONNECTION_CLOSED',
  OutboxFull: 'WS_ERR_OUTBOX_FULL',
  TooManyWaiters: 'WS_ERR_TOO_MANY_WAITERS',
  ChannelClosed: 'WS_ERR_CHANNEL_CLOSED',
  Aborted: 'WS_ERR_ABORTED',
  PongTimeout: 'WS_ERR_PONG_TIMEOUT',
  CloseTimeout: 'WS_ERR_CLOSE_TIMEOUT',
  /** A frame or fragmented message was not complete within messageTimeout of its first byte. */
  MessageTimeout: 'WS_ERR_MESSAGE_TIMEOUT',
  SocketError: 'WS_ERR_SOCKET',
  HandlerFailed: 'WS_ERR_HANDLER_FAILED',
  // Fan-out across machines (src/scale/redis.ts)
  RedisUnavailable: 'WS_ERR_REDIS_UNAVAILABLE',
  MissingPeerDependency: 'WS_ERR_MISSING_PEER_DEPENDENCY',
  // WebSockets over HTTP/2 (RFC 8441)
  /** The HTTP/2 peer did not send SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441 §3). */
  ExtendedConnectDisabled: 'WS_ERR_H2_NO_EXTENDED_CONNECT',
  /** The HTTP/2 stream carrying the WebSocket was reset (RST_STREAM with an error code). */
  StreamReset: 'WS_ERR_H2_STREAM_RESET',
  /** The HTTP/2 session ended under the WebSocket (GOAWAY with an error, or its connection died). */
  SessionClosed: 'WS_ERR_H2_SESSION_CLOSED',
  // Typed messages (src/typed/)
  NotJson: 'WS_ERR_NOT_JSON',
  UnknownKind: 'WS_ERR_UNKNOWN_KIND',
  InvalidMessage: 'WS_ERR_INVALID_MESSAGE',
  UnexpectedBinary: 'WS_ERR_UNEXPECTED_BINARY',
  RequestTimeout: 'WS_ERR_REQUEST_TIMEOUT',
  TooManyRequests: 'WS_ERR_TOO_MANY_REQUESTS',
  RequestFailed: 'WS_ERR_REQUEST_FAILED',
  // API misuse
  InvalidArgument: 'WS_ERR_INVALID_ARGUMENT',
  InvalidOptions: 'WS_ERR_INVALID_OPTIONS',
  /** This Node or platform lacks what the call needs (e.g. `reusePort` for threads). */
  Unsupported: 'WS_ERR_UNSUPPORTED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface WebSocketErrorOptions {
  /** The close code the connection is closed with because of this error (RFC 6455 §7.4.1). */
  closeCode?: number;
  /** The HTTP status of a refused handshake. */
  status?: number;
  cause?: unknown;
}

export class WebSocketError extends Error {
  override name = 'WebSocketError';
  readonly code: ErrorCode;
  readonly closeCode: number | undefined;
  readonly status: number | undefined;

  constructor(code: ErrorCode, message: string, options: WebSocketErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.closeCode = options.closeCode;
    this.status = options.status;
  }
}

/** A violation of RFC 6455/7692 by the peer: the connection fails with `closeCode`. */
export class ProtocolError extends WebSocketError {
  override name = 'ProtocolError';
  declare readonly closeCode: number;
  constructor(code: ErrorCode, message: string, closeCode: number) {
    super(code, message, { closeCode });
  }
}

/** The opening handshake was refused (server side: answered with `status`) or failed (client side). */
export class HandshakeError extends WebSocketError {
  override name = 'HandshakeError';
  /** Headers the refusal response must carry (e.g. `Sec-WebSocket-Version: 13` with a 426). */
  readonly headers: Record<string, string> | undefined;
  constructor(
    code: ErrorCode,
    message: string,
    options: WebSocketErrorOptions & { headers?: Record<string, string> } = {},
  ) {
    super(code, message, options);
    this.headers = options.headers;
  }
}

/** An operation on a connection or channel that is closed, full, or aborted. */
export class ConnectionError extends WebSocketError {
  override name = 'ConnectionError';
}

/** Options that fail validation; the message names the path of each bad value. */
export class OptionsError extends WebSocketError {
  override name = 'OptionsError';
  constructor(message: string) {
    super(ErrorCode.InvalidOptions, message);
  }
}
