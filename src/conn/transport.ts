import { constants as h2 } from 'node:http2';
import type { Duplex } from 'node:stream';
import { CloseCode } from '../protocol/constants.js';
import { ConnectionError, ErrorCode, WebSocketError } from '../protocol/errors.js';

/**
 * What carries a connection's frames: a TCP (or TLS) socket after an HTTP/1.1 upgrade
 * (RFC 6455 §4), or one stream of an HTTP/2 session after an extended CONNECT (RFC 8441).
 */
export type Transport = 'http1' | 'http2';

/**
 * The HTTP/2 streams that carry a WebSocket. A set beside the streams rather than a field on every
 * Conn: a connection over TCP (nearly all of them) pays nothing for the question.
 */
const http2Streams = new WeakSet<Duplex>();

/** Which transport `socket` is (a Conn's `transport`). */
export function transportOf(socket: Duplex): Transport {
  return http2Streams.has(socket) ? 'http2' : 'http1';
}

/** The fields of a node:http2 stream read here (`Http2Stream` is not exported as a class). */
interface StreamLike extends Duplex {
  readonly rstCode?: number | undefined;
}

/**
 * Internal (src/server/http2.ts, src/client/http2.ts): `stream`, an HTTP/2 stream, will carry a
 * WebSocket. Call it before anything else listens to the stream. A Conn runs over the stream as
 * over a socket (it is a Duplex: write callbacks, cork, 'drain' from HTTP/2 flow control,
 * pause/resume); only the ways it can die differ, and they are named here so that the Conn ends
 * with 1006 and the right error instead of a bare socket error or none:
 * - the stream is reset (RST_STREAM with an error code, RFC 9113 §6.4): `StreamReset`. node:http2
 *   reports the end of the data first and the reset after (an 'error' only for codes other than
 *   CANCEL), so it is read from `rstCode` when the stream closes;
 * - the session ends under it (GOAWAY with an error code, its socket dies, `session.destroy()`):
 *   the stream is destroyed with the session's error: `SessionClosed`.
 * These listeners come before the Conn's: it keeps the first error it hears, so a typed one
 * emitted here wins over node:http2's raw one, and an error the Conn named itself (a close or
 * pong timeout, before it destroys the stream) wins over both.
 */
export function adoptHttp2Stream(stream: Duplex): void {
  http2Streams.add(stream);
  stream.on('error', onStreamError);
  stream.on('close', onStreamClose);
}

function onStreamClose(this: StreamLike): void {
  const code = this.rstCode;
  if (code === undefined || code === h2.NGHTTP2_NO_ERROR) return;
  this.emit('error', new ConnectionError(ErrorCode.StreamReset, `the HTTP/2 stream was reset (${errorName(code)})`, { closeCode: CloseCode.AbnormalClosure }));
}

/** node:http2's error becomes a typed one, heard by the Conn first. */
function onStreamError(this: StreamLike, err: Error): void {
  if (err instanceof WebSocketError) return;
  const code = (err as { code?: unknown }).code;
  // Other errors (a socket's ECONNRESET, an error passed to destroy()) stay socket errors.
  if (typeof code !== 'string' || !code.startsWith('ERR_HTTP2_')) return;
  const typed =
    code === 'ERR_HTTP2_STREAM_ERROR'
      ? new ConnectionError(ErrorCode.StreamReset, `the HTTP/2 stream was reset (${errorName(this.rstCode ?? -1)})`, { cause: err, closeCode: CloseCode.AbnormalClosure })
      : new ConnectionError(ErrorCode.SessionClosed, `the HTTP/2 session ended: ${err.message}`, { cause: err, closeCode: CloseCode.AbnormalClosure });
  this.emit('error', typed);
}

// RFC 9113 §7, in code order.
const ERROR_NAMES = [
  'NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED', 'FRAME_SIZE_ERROR',
  'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM', 'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED',
];

/** RFC 9113 §7: an HTTP/2 error code by name (CANCEL, PROTOCOL_ERROR...). */
export function errorName(code: number): string {
  return ERROR_NAMES[code] ?? `error code ${code}`;
}
