import { STATUS_CODES } from 'node:http';
import { ErrorCode, WebSocketError } from '../protocol/errors.js';
import { headerLines, type UpgradeRequest } from '../protocol/handshake.js';

/** What `handleRequest` answers a plain HTTP request with (listen() only). */
export interface HttpResponse {
  /** 200-599 (a 1xx is not a final response, RFC 9110 §15.2). */
  status: number;
  /**
   * Extra header fields. `Content-Length` and `Connection` are set by the server (the response
   * ends the connection), so they, and `Transfer-Encoding`, may not be given here.
   */
  headers?: Record<string, string | string[]> | undefined;
  /** Default: empty. A string is sent as UTF-8, with `Content-Type: text/plain; charset=utf-8` unless `headers` has one. */
  body?: string | Uint8Array | undefined;
}

/**
 * listen(): answers a request that is not a WebSocket handshake (a health check, a page). It gets
 * the request head (the body, if any, is not read) and returns a response, or undefined for the
 * default 426 Upgrade Required. May be async.
 */
export type RequestHandler = (req: UpgradeRequest) => HttpResponse | undefined | Promise<HttpResponse | undefined>;

/** Fields the server sets itself: the response is framed by Content-Length and ends the connection. */
const RESERVED = new Set(['content-length', 'connection', 'transfer-encoding']);

/**
 * The bytes of `res`, one Buffer (one socket write). Throws a WebSocketError (WS_ERR_INVALID_ARGUMENT)
 * for a status outside 200-599, a reserved or malformed header, or a body that is not a string or bytes.
 * For a HEAD request the body is left out and Content-Length still announces it (RFC 9110 §9.3.2).
 */
export function buildHttpResponse(res: HttpResponse, isHead: boolean): Buffer {
  if (typeof res !== 'object' || res === null) throw new WebSocketError(ErrorCode.InvalidArgument, 'handleRequest must return { status, headers?, body? } or undefined');
  const { status, headers, body } = res;
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new WebSocketError(ErrorCode.InvalidArgument, `handleRequest returned the status ${String(status)}: expected an integer from 200 to 599`);
  }
  let payload: Buffer;
  if (body === undefined) payload = EMPTY;
  else if (typeof body === 'string') payload = Buffer.from(body);
  else if (body instanceof Uint8Array) payload = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  else throw new WebSocketError(ErrorCode.InvalidArgument, 'handleRequest returned a body that is neither a string nor bytes');
  let hasType = false;
  if (headers !== undefined) {
    for (const name of Object.keys(headers)) {
      const lower = name.toLowerCase();
      if (RESERVED.has(lower)) throw new WebSocketError(ErrorCode.InvalidArgument, `handleRequest may not set the ${name} header: the server sets it`);
      if (lower === 'content-type') hasType = true;
    }
  }
  const head =
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n` +
    headerLines(headers) +
    (!hasType && typeof body === 'string' ? 'Content-Type: text/plain; charset=utf-8\r\n' : '') +
    `Content-Length: ${payload.length}\r\n` +
    'Connection: close\r\n\r\n';
  const headBytes = Buffer.from(head, 'latin1');
  return isHead || payload.length === 0 ? headBytes : Buffer.concat([headBytes, payload]);
}

const EMPTY = Buffer.alloc(0);
