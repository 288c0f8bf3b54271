import { ErrorCode, HandshakeError, WebSocketError } from './errors.js';
import type { ExtensionOffer } from './extensions.js';
import { buildClientHeaders, checkResponseSelection, checkVersion, readOffers, type UpgradeRequestLike, type ValidatedUpgrade } from './handshake.js';

/**
 * The opening handshake over HTTP/2 (RFC 8441, "Bootstrapping WebSockets with HTTP/2") as pure
 * functions over header objects shaped like node:http2's (lower-case names, pseudo-headers
 * `:method`, `:protocol`, `:path`, `:scheme`, `:authority`, `:status`). No streams here.
 *
 * What differs from RFC 6455 §4 (RFC 8441 §5): the request is an extended CONNECT with
 * `:protocol = websocket` instead of a GET with Upgrade/Connection; there is no
 * Sec-WebSocket-Key nor Sec-WebSocket-Accept (the stream itself proves the server took the
 * request); the answer is a 2xx instead of 101. Sec-WebSocket-Version, -Protocol, -Extensions and
 * Origin mean what they mean over HTTP/1.1.
 */

/** Whether a stream's request headers are a WebSocket extended CONNECT (RFC 8441 §4), ours to answer. */
export function isWebSocketConnect(headers: Record<string, string | string[] | undefined>): boolean {
  const p = headers[':protocol'];
  return headers[':method'] === 'CONNECT' && typeof p === 'string' && p.toLowerCase() === 'websocket';
}

/**
 * RFC 8441 §4-5: check an extended CONNECT. Throws a `HandshakeError` whose `status` is the
 * refusal to send. `key` is empty: there is none over HTTP/2.
 */
export function validateConnectRequest(req: UpgradeRequestLike): ValidatedUpgrade {
  const h = req.headers;
  // §4: "A new pseudo-header field :protocol MAY be included on request HEADERS indicating the
  // desired protocol to be spoken on the tunnel created by CONNECT", and "On requests that contain
  // the :protocol pseudo-header field, the :scheme and :path pseudo-header fields of the target
  // URI MUST also be included" (node:http2 already refuses such a stream without them).
  if (!isWebSocketConnect(h)) throw new HandshakeError(ErrorCode.HandshakeFailed, 'not an extended CONNECT for the websocket protocol', { status: 400 });
  const authority = h[':authority'] ?? h['host'];
  if (typeof authority !== 'string' || authority.trim() === '') throw new HandshakeError(ErrorCode.HandshakeFailed, 'Missing :authority', { status: 400 });
  if (typeof h[':path'] !== 'string' || typeof h[':scheme'] !== 'string') {
    throw new HandshakeError(ErrorCode.HandshakeFailed, 'Missing :path or :scheme', { status: 400 });
  }
  // §5: Sec-WebSocket-Version, -Protocol and -Extensions are used as in RFC 6455.
  checkVersion(h);
  return { key: '', ...readOffers(h), host: authority };
}

/**
 * RFC 8441 §5: the server's acceptance, "a 2xx series status code" (200) with the selected
 * subprotocol and extensions; never Sec-WebSocket-Accept. Names are lower case (RFC 9113
 * §8.2.1). Extra headers are checked as over HTTP/1.1; node:http2 itself refuses the
 * connection-specific ones (Connection, Upgrade...), which RFC 9113 §8.2.2 forbids.
 */
export function buildConnectResponseHeaders(opts: {
  protocol?: string | undefined;
  extensions?: string | undefined;
  headers?: Record<string, string> | undefined;
}): Record<string, string | number> {
  const out: Record<string, string | number> = { ':status': 200 };
  if (opts.headers !== undefined) {
    // buildClientHeaders checks the names and values (tokens, no CR/LF) the same way for both directions.
    const checked = buildClientHeaders({ key: '', headers: opts.headers });
    for (const name of Object.keys(opts.headers)) out[name.toLowerCase()] = checked[name]!;
  }
  if (opts.protocol !== undefined) out['sec-websocket-protocol'] = opts.protocol;
  if (opts.extensions !== undefined) out['sec-websocket-extensions'] = opts.extensions;
  return out;
}

/** The headers of a refusal (HTTP/2 has no reason phrase: the reason goes in the body). */
export function buildConnectRefusalHeaders(status: number, headers?: Record<string, string>): Record<string, string | number> {
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new WebSocketError(ErrorCode.InvalidArgument, `Invalid HTTP status ${status}`);
  }
  const out: Record<string, string | number> = {};
  if (headers !== undefined) {
    const checked = buildClientHeaders({ key: '', headers });
    for (const name of Object.keys(headers)) out[name.toLowerCase()] = checked[name]!;
  }
  out[':status'] = status;
  out['content-type'] = 'text/plain; charset=utf-8';
  return out;
}

/** RFC 8441 §4-5: the client's extended CONNECT for `url` (path and query), offering what RFC 6455 §4.1 offers. */
export function buildConnectRequestHeaders(opts: {
  path: string;
  authority: string;
  scheme: 'http' | 'https';
  protocols?: string[];
  extensions?: string | undefined;
  origin?: string | undefined;
  headers?: Record<string, string> | undefined;
}): Record<string, string> {
  // The same checks of subprotocols, Origin and extra headers as over HTTP/1.1 (then renamed below).
  const h1 = buildClientHeaders({ key: '', protocols: opts.protocols, extensions: opts.extensions, origin: opts.origin, headers: opts.headers });
  const out: Record<string, string> = { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': opts.scheme, ':path': opts.path, ':authority': opts.authority };
  for (const [name, value] of Object.entries(h1)) {
    const n = name.toLowerCase();
    // §5: no Sec-WebSocket-Key; RFC 9113 §8.2.2: no connection-specific fields (Connection, Upgrade).
    if (n === 'sec-websocket-key' || n === 'connection' || n === 'upgrade' || n === 'host') continue;
    out[n] = value;
  }
  return out;
}

/**
 * RFC 8441 §5: the client's checks of the response: a 2xx status, then the subprotocol and the
 * extensions as RFC 6455 §4.1 items 5-6. Throws `HandshakeError` (with `status` when not 2xx).
 */
export function validateConnectResponse(
  headers: Record<string, string | string[] | number | undefined>,
  expect: { protocols: string[]; extensionsOffered: boolean },
): { protocol: string | undefined; extensions: ExtensionOffer[] } {
  const status = Number(headers[':status']);
  if (!(status >= 200 && status < 300)) {
    throw new HandshakeError(
      ErrorCode.HandshakeFailed,
      `server answered ${Number.isNaN(status) ? '(no status)' : status} to the extended CONNECT instead of 2xx`,
      Number.isNaN(status) ? {} : { status },
    );
  }
  return checkResponseSelection(headers as Record<string, string | string[] | undefined>, expect);
}
