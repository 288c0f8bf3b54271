import * as crypto from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { ACCEPT_KEY_LENGTH, acceptKeyOf24, writeAcceptKey } from './accept-key.js';
import { WEBSOCKET_GUID } from './constants.js';
import { ErrorCode, HandshakeError, WebSocketError } from './errors.js';
import { isToken, parseExtensions } from './extensions.js';
import type { ExtensionOffer } from './extensions.js';

/**
 * The opening handshake (RFC 6455 §4) as pure functions: they read header objects shaped like
 * Node's `IncomingMessage` (lower-case names, a string or an array of strings per name) and
 * produce strings and header objects. No sockets here.
 */

// crypto.hash (Node 20.12+): one call, no Hash object; 1.2 µs a key against 2.4 µs for
// createHash().update().digest() (Node 20.20, x64). Older Node 20 releases lack it.
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'base64') => string }).hash;

/**
 * RFC 6455 §1.3/§4.2.2: base64(SHA-1(key + GUID)), the value of `Sec-WebSocket-Accept`. A key of
 * 24 ASCII characters (every valid one) is hashed in JavaScript (accept-key.ts: it cost 2% less
 * server CPU than node:crypto in the churn benchmark); any other string goes to node:crypto.
 */
export function computeAcceptKey(key: string): string {
  const fast = acceptKeyOf24(key);
  if (fast !== undefined) return fast;
  if (oneShotHash !== undefined) return oneShotHash('sha1', key + WEBSOCKET_GUID, 'base64');
  return createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
}

/** RFC 6455 §4.1: a nonce of 16 random bytes, base64-encoded (always 24 characters). */
export function generateKey(): string {
  return randomBytes(16).toString('base64');
}

// 16 bytes in base64 are 22 significant characters and "==" of padding.
const KEY_RE = /^[A-Za-z0-9+/]{22}==$/;

/** RFC 6455 §4.2.1 item 5: "a base64-encoded value that, when decoded, is 16 bytes in length". */
export function isValidKey(key: string): boolean {
  return KEY_RE.test(key);
}

/**
 * A client's upgrade request as the server sees it: what `Server.listen()` parses, and what a
 * node:http `IncomingMessage` already is (it satisfies this interface), so `attach()` and
 * `upgrade()` take Node's requests unchanged. `method` and `url` are optional only because they
 * are on `IncomingMessage`; `listen()` always sets them.
 */
export interface UpgradeRequest {
  /** `"GET"` for a valid handshake (RFC 6455 §4.1). */
  method?: string | undefined;
  /** The request-target as sent, query string included (`/chat?room=1`). */
  url?: string | undefined;
  /** `"1.1"` for a valid handshake; `"1.0"` is parsed and then refused. */
  httpVersion: string;
  /** Lower-case names; a field sent several times is one value joined with ", ". */
  headers: Record<string, string | string[] | undefined>;
  /** Every field line as sent, names in their original case: [name, value, name, value, ...]. */
  rawHeaders: string[];
  /** The TCP (or TLS) socket of the request. */
  socket: Socket;
}

/** The parts of an `UpgradeRequest` that `validateUpgradeRequest` reads. */
export type UpgradeRequestLike = Partial<Pick<UpgradeRequest, 'method' | 'url' | 'httpVersion'>> & Pick<UpgradeRequest, 'headers'>;

export interface ValidatedUpgrade {
  key: string;
  protocols: string[];
  extensions: ExtensionOffer[];
  origin: string | undefined;
  host: string;
}

/** One header as one string: several lines of a list header are one list (RFC 7230 §3.2.2). */
function joined(value: string | string[] | undefined): string | undefined {
  return value === undefined ? undefined : typeof value === 'string' ? value : value.join(',');
}

/** Does the comma-separated list `value` contain `token` (lower case; compared ASCII case-insensitively)? */
export function hasToken(value: string | string[] | undefined, token: string): boolean {
  // The usual case, one value that is the token itself ("Upgrade", "websocket"): no split.
  if (typeof value === 'string' && value.length === token.length && value.toLowerCase() === token) return true;
  const s = joined(value);
  if (s === undefined) return false;
  for (const part of s.split(',')) {
    if (part.trim().toLowerCase() === token) return true;
  }
  return false;
}

/** A header that must appear exactly once: a single line, or undefined. */
function single(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  return value.length === 1 ? value[0] : undefined;
}

function refuse(status: number, message: string, headers?: Record<string, string>): HandshakeError {
  return new HandshakeError(ErrorCode.HandshakeFailed, message, headers ? { status, headers } : { status });
}

/**
 * `Sec-WebSocket-Protocol` (RFC 6455 §4.1, §11.3.4): a comma-separated list of tokens, each
 * listed once. Empty list elements are ignored (RFC 7230 §7). Throws `HandshakeError` 400.
 */
export function parseProtocols(header: string | string[] | undefined): string[] {
  const s = joined(header);
  if (s === undefined) return [];
  const out: string[] = [];
  for (const part of s.split(',')) {
    const p = part.replace(/^[ \t]+|[ \t]+$/g, '');
    if (p === '') continue;
    if (!isToken(p)) throw refuse(400, `Invalid Sec-WebSocket-Protocol header: ${JSON.stringify(p)} is not a token`);
    // RFC 6455 §4.1 item 10: "The elements that comprise this value MUST be ... unique strings".
    if (out.includes(p)) throw refuse(400, `Invalid Sec-WebSocket-Protocol header: duplicate protocol ${JSON.stringify(p)}`);
    out.push(p);
  }
  return out;
}

/**
 * RFC 6455 §4.2.1: check a client's opening handshake (an `UpgradeRequest`, an `IncomingMessage`,
 * or just the parts read here). Throws a `HandshakeError` whose `status`
 * (and `headers`, for 426) is the refusal to send (§4.2.2: "an appropriate HTTP error code").
 */
export function validateUpgradeRequest(req: UpgradeRequestLike): ValidatedUpgrade {
  const h = req.headers;
  // §4.2.1 item 1: "An HTTP/1.1 or higher GET request". RFC 6455 names no status for another
  // method; RFC 7231 §6.5.5 does: 405 Method Not Allowed, which MUST carry an Allow header.
  if (req.method !== undefined && req.method !== 'GET') {
    throw new HandshakeError(ErrorCode.HandshakeFailed, `Invalid HTTP method ${req.method}: the upgrade must be a GET`, {
      status: 405,
      headers: { Allow: 'GET' },
    });
  }
  if (req.httpVersion !== undefined && req.httpVersion !== '1.1') {
    const m = /^(\d+)(?:\.(\d+))?$/.exec(req.httpVersion);
    const major = m ? Number(m[1]) : 0;
    const minor = m && m[2] !== undefined ? Number(m[2]) : 0;
    if (major < 1 || (major === 1 && minor < 1)) {
      throw refuse(400, `Invalid HTTP version ${req.httpVersion}: the upgrade needs HTTP/1.1 or later`);
    }
  }
  // §4.2.1 item 2: a |Host| header field.
  const host = single(h['host']);
  if (host === undefined || host.trim() === '') throw refuse(400, 'Missing Host header');
  // §4.2.1 item 3: "An |Upgrade| header field containing the value "websocket", treated as an
  // ASCII case-insensitive value."
  if (!hasToken(h['upgrade'], 'websocket')) throw refuse(400, 'Invalid Upgrade header: expected "websocket"');
  // §4.2.1 item 4: "A |Connection| header field that includes the token "Upgrade", treated as an
  // ASCII case-insensitive value."
  if (!hasToken(h['connection'], 'upgrade')) throw refuse(400, 'Invalid Connection header: expected the token "Upgrade"');
  checkVersion(h);
  // §4.2.1 item 5: a |Sec-WebSocket-Key| that decodes to 16 bytes.
  const rawKey = single(h['sec-websocket-key']);
  const key = rawKey?.trim();
  if (key === undefined || !isValidKey(key)) {
    throw refuse(400, h['sec-websocket-key'] === undefined ? 'Missing Sec-WebSocket-Key header' : 'Invalid Sec-WebSocket-Key header');
  }
  return { key, ...readOffers(h), host };
}

/**
 * §4.2.1 item 6 and §4.2.2 item 4 (also over HTTP/2, RFC 8441 §5): another version (or none) is
 * answered with 426 Upgrade Required and a |Sec-WebSocket-Version| header listing the versions we
 * understand (§4.4).
 */
export function checkVersion(h: UpgradeRequest['headers']): void {
  const version = single(h['sec-websocket-version']);
  if (version === undefined || version.trim() !== '13') {
    throw new HandshakeError(
      ErrorCode.UnsupportedVersion,
      version === undefined ? 'Missing Sec-WebSocket-Version header' : `Unsupported WebSocket version ${JSON.stringify(version)}`,
      { status: 426, headers: { 'Sec-WebSocket-Version': '13' } },
    );
  }
}

/** The client's offers, read the same way over HTTP/1.1 and HTTP/2 (RFC 8441 §5). */
export function readOffers(h: UpgradeRequest['headers']): Pick<ValidatedUpgrade, 'protocols' | 'extensions' | 'origin'> {
  const protocols = parseProtocols(h['sec-websocket-protocol']);
  const extensions = parseExtensions(h['sec-websocket-extensions']);
  // §4.2.1 item 7 (optional): |Origin|, sent by browsers.
  const origin = single(h['origin']);
  return { protocols, extensions, origin };
}

// RFC 7230 §3.2: field-value = *( field-content / obs-fold ); we emit visible ASCII, SP and
// HTAB (and obs-text), never CR, LF or NUL, so no value can end a header or start another.
const FIELD_VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/;

function checkHeader(name: string, value: string): void {
  if (!isToken(name)) throw new WebSocketError(ErrorCode.InvalidArgument, `Invalid header name ${JSON.stringify(name)}`);
  if (!FIELD_VALUE_RE.test(value)) {
    throw new WebSocketError(ErrorCode.InvalidArgument, `Invalid value for header ${name}: ${JSON.stringify(value)}`);
  }
}

/** `name: value\r\n` for each header (each value of an array); throws on a name or value that could split a response. */
export function headerLines(headers: Record<string, string | string[]> | undefined): string {
  let out = '';
  if (!headers) return out;
  for (const name of Object.keys(headers)) {
    const value = headers[name]!;
    for (const v of typeof value === 'string' ? [value] : value) {
      checkHeader(name, v);
      out += `${name}: ${v}\r\n`;
    }
  }
  return out;
}

/**
 * RFC 6455 §4.2.2 item 5: the server's 101 response. `protocol` and `extensions` are the values
 * of the selected subprotocol and of the accepted extensions (already formatted). Extra headers
 * are checked: a CR or LF in a name or value throws instead of splitting the response.
 */
export function buildAcceptResponse(opts: {
  key: string;
  protocol?: string;
  extensions?: string;
  headers?: Record<string, string | string[]>;
}): string {
  let res =
    'HTTP/1.1 101 Switching Protocols\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${computeAcceptKey(opts.key)}\r\n`;
  if (opts.protocol !== undefined) {
    checkHeader('Sec-WebSocket-Protocol', opts.protocol);
    res += `Sec-WebSocket-Protocol: ${opts.protocol}\r\n`;
  }
  if (opts.extensions !== undefined && opts.extensions !== '') {
    checkHeader('Sec-WebSocket-Extensions', opts.extensions);
    res += `Sec-WebSocket-Extensions: ${opts.extensions}\r\n`;
  }
  return res + headerLines(opts.headers) + '\r\n';
}

const PLAIN_101_HEAD = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ', 'latin1');

/**
 * `buildAcceptResponse({ key })` as bytes, for the common 101 with no subprotocol, extension or
 * extra header: one buffer written in place (no strings to build, join and encode per
 * handshake). Undefined for a key that is not 24 ASCII characters (use buildAcceptResponse).
 */
export function buildPlainAcceptResponse(key: string): Buffer | undefined {
  const n = PLAIN_101_HEAD.length;
  const out = Buffer.allocUnsafe(n + ACCEPT_KEY_LENGTH + 4);
  if (!writeAcceptKey(key, out, n)) return undefined;
  out.set(PLAIN_101_HEAD, 0);
  const e = n + ACCEPT_KEY_LENGTH;
  out[e] = 0x0d;
  out[e + 1] = 0x0a;
  out[e + 2] = 0x0d;
  out[e + 3] = 0x0a;
  return out;
}

/**
 * A refusal: status line, `Connection: close`, a plain-text body holding `reason`, and any
 * extra headers (for example `Sec-WebSocket-Version: 13` with 426, RFC 6455 §4.4).
 */
export function buildRefusalResponse(status: number, reason: string, headers?: Record<string, string>): string {
  if (!Number.isInteger(status) || status < 100 || status > 999) {
    throw new WebSocketError(ErrorCode.InvalidArgument, `Invalid HTTP status ${status}`);
  }
  const text = STATUS_CODES[status] ?? 'Unknown';
  return (
    `HTTP/1.1 ${status} ${text}\r\n` +
    'Connection: close\r\n' +
    'Content-Type: text/plain\r\n' +
    `Content-Length: ${Buffer.byteLength(reason)}\r\n` +
    headerLines(headers) +
    '\r\n' +
    reason
  );
}

/** RFC 6455 §4.1: the headers of the client's opening handshake, for `http.request`. */
export function buildClientHeaders(opts: {
  key: string;
  protocols?: string[];
  extensions?: string;
  origin?: string;
  headers?: Record<string, string>;
}): Record<string, string> {
  const out: Record<string, string> = {};
  if (opts.headers) {
    for (const name of Object.keys(opts.headers)) {
      const value = opts.headers[name]!;
      checkHeader(name, value);
      out[name] = value;
    }
  }
  out['Connection'] = 'Upgrade';
  out['Upgrade'] = 'websocket';
  out['Sec-WebSocket-Version'] = '13';
  out['Sec-WebSocket-Key'] = opts.key;
  if (opts.protocols !== undefined && opts.protocols.length > 0) {
    const seen = new Set<string>();
    for (const p of opts.protocols) {
      // §4.1 item 10: tokens, each at most once.
      if (!isToken(p) || seen.has(p)) {
        throw new WebSocketError(ErrorCode.InvalidArgument, `Invalid or duplicate subprotocol ${JSON.stringify(p)}`);
      }
      seen.add(p);
    }
    out['Sec-WebSocket-Protocol'] = opts.protocols.join(', ');
  }
  if (opts.extensions !== undefined && opts.extensions !== '') {
    checkHeader('Sec-WebSocket-Extensions', opts.extensions);
    out['Sec-WebSocket-Extensions'] = opts.extensions;
  }
  if (opts.origin !== undefined) {
    checkHeader('Origin', opts.origin);
    out['Origin'] = opts.origin;
  }
  return out;
}

export interface ServerResponseLike {
  statusCode?: number;
  headers: Record<string, string | string[] | undefined>;
}

function fail(message: string, cause?: unknown): HandshakeError {
  return new HandshakeError(ErrorCode.HandshakeFailed, message, cause === undefined ? {} : { cause });
}

/**
 * RFC 6455 §4.1 (the client's checks of the server's handshake, items 1–6). Any failure means
 * "the client MUST _Fail the WebSocket Connection_": throws `HandshakeError(HandshakeFailed)`.
 * Returns the selected subprotocol and the parsed extensions (to be checked against what we
 * offered by the extension's own negotiation, e.g. `acceptDeflateResponse`).
 */
export function validateServerResponse(
  res: ServerResponseLike,
  expect: { key: string; protocols: string[]; extensionsOffered: boolean },
): { protocol: string | undefined; extensions: ExtensionOffer[] } {
  const h = res.headers;
  // Item 1: "If the status code received from the server is not 101, the client handles the
  // response per HTTP procedures"; for us the connection fails.
  if (res.statusCode !== 101) throw fail(`Unexpected server response status ${res.statusCode ?? '(none)'}`);
  // Items 2 and 3: Upgrade "websocket" and Connection "Upgrade", case-insensitive.
  if (!hasToken(h['upgrade'], 'websocket')) throw fail('Invalid Upgrade header in the server response');
  if (!hasToken(h['connection'], 'upgrade')) throw fail('Invalid Connection header in the server response');
  // Item 4: Sec-WebSocket-Accept must be base64(SHA-1(key + GUID)), trimmed of whitespace.
  const accept = single(h['sec-websocket-accept']);
  if (accept === undefined) throw fail('Missing Sec-WebSocket-Accept header');
  if (accept.trim() !== computeAcceptKey(expect.key)) throw fail('Invalid Sec-WebSocket-Accept header');
  return checkResponseSelection(h, expect);
}

/**
 * RFC 6455 §4.1 items 5 and 6, shared with the HTTP/2 response check (RFC 8441 §5): the
 * subprotocol the server selected must be one we offered, and it may list extensions only when we
 * offered some.
 */
export function checkResponseSelection(
  h: ServerResponseLike['headers'],
  expect: { protocols: string[]; extensionsOffered: boolean },
): { protocol: string | undefined; extensions: ExtensionOffer[] } {
  // Item 6: a subprotocol "that was not present in the client's handshake" fails.
  let protocol: string | undefined;
  const rawProtocol = h['sec-websocket-protocol'];
  if (rawProtocol !== undefined) {
    const p = single(rawProtocol)?.trim();
    if (p === undefined || !isToken(p)) throw fail('Invalid Sec-WebSocket-Protocol header in the server response');
    if (!expect.protocols.includes(p)) {
      throw fail(
        expect.protocols.length === 0
          ? `Server selected subprotocol ${JSON.stringify(p)} but none was requested`
          : `Server selected subprotocol ${JSON.stringify(p)}, which was not requested`,
      );
    }
    protocol = p;
  }
  // Item 5: an extension "not present in the client's handshake" fails.
  let extensions: ExtensionOffer[] = [];
  const rawExt = h['sec-websocket-extensions'];
  if (rawExt !== undefined) {
    try {
      extensions = parseExtensions(rawExt);
    } catch (err) {
      throw fail(err instanceof Error ? err.message : 'Invalid Sec-WebSocket-Extensions header', err);
    }
    if (extensions.length > 0 && !expect.extensionsOffered) {
      throw fail('Server sent Sec-WebSocket-Extensions but no extension was offered');
    }
  }
  return { protocol, extensions };
}
