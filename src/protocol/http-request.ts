import { ErrorCode, HandshakeError } from './errors.js';
import { isTchar, isToken } from './extensions.js';

/**
 * The head of an HTTP/1.1 request (RFC 9112 §2-§5), read from bytes as they arrive: what
 * `Server.listen()` uses instead of node:http. Sans-I/O: `push(chunk)` returns nothing until the
 * head is complete, then the request and the bytes that followed it (a client may send its first
 * WebSocket frames in the same segment as the request), or a refusal with its HTTP status. It
 * never throws.
 *
 * What it accepts, and why, where RFC 9112 leaves a choice:
 * - Lines end with CRLF. A bare LF is refused with 400 (§2.2 allows a recipient to accept it; we
 *   do not: no WebSocket client sends one, and refusing it keeps one way to end a line).
 * - Empty lines before the request-line are skipped (§2.2: "SHOULD ignore at least one").
 * - The request-line is exactly `method SP request-target SP HTTP-version` (§3); the target is
 *   visible ASCII. HTTP-version is `HTTP/d.d` (§2.3); a major version other than 1 gets 505.
 *   HTTP/1.0 is parsed: RFC 6455 §4.1 ("HTTP/1.1 or higher") is checked with the handshake.
 * - Field lines (§5): the name is a token directly followed by ":" (whitespace before the colon
 *   is a 400, §5.1); whitespace around the value is trimmed; obs-fold is a 400 (§5.2); a value
 *   holding a control character (NUL, a lone CR, DEL...) is a 400 (RFC 9110 §5.5).
 * - Names are lower-cased in `headers`; repeated fields are joined with ", " (RFC 9110 §5.3), as
 *   Node's IncomingMessage does (Cookie with "; "). Two Host fields are a 400 (RFC 9112 §3.2).
 *   `rawHeaders` keeps every line as sent: [name, value, name, value, ...].
 * - The head, from the first byte to its final CRLF CRLF, may be at most `maxHeaderSize` bytes,
 *   with at most `maxHeaderFields` field lines; more is a 431 (RFC 6585 §5).
 * - A body (Content-Length, Transfer-Encoding) is not read: the bytes after the head are `head`.
 * - Bytes that cannot begin a request-line are refused with 400 as soon as they arrive, not when
 *   the handshake times out: before the first SP of the request-line, every byte must be a tchar
 *   (the method is a token, RFC 9112 §3.1). A TLS ClientHello, a WebSocket frame sent without a
 *   handshake or random bytes are answered at once.
 */

/** The parts of a request that the parser reads. */
export interface RequestHead {
  method: string;
  /** The request-target as sent (`/chat?room=1`). */
  url: string;
  /** `"1.1"`, `"1.0"`... */
  httpVersion: string;
  /** Lower-case names; repeated fields joined with ", ". */
  headers: Record<string, string>;
  /** Every field line as sent: name, value, name, value... */
  rawHeaders: string[];
}

export type RequestHeadResult =
  | { ok: true; request: RequestHead; /** Bytes after the head. */ head: Buffer }
  | { ok: false; /** A HandshakeError with the status to answer (400, 431, 505). */ error: HandshakeError };

export interface RequestHeadLimits {
  /** Largest head in bytes, request-line to the final CRLF CRLF inclusive. */
  maxHeaderSize: number;
  /** Most field lines. Default `DEFAULT_MAX_HEADER_FIELDS`. */
  maxHeaderFields?: number | undefined;
}

/** As Apache's LimitRequestFields: browsers send 10-20 fields; proxies add a few. */
export const DEFAULT_MAX_HEADER_FIELDS = 100;

const EMPTY = Buffer.alloc(0);
const LF = 0x0a;
const CR = 0x0d;
const METHOD_LEAD = 0; // empty lines before the request-line
const METHOD_IN = 1; // inside the method
const METHOD_DONE = 2; // its SP was seen (or the line scan decides)

/**
 * Reads one request head from chunks. Each byte is looked at once while looking for the end of
 * the head (a head split into many reads costs no more than one read), and the head is decoded
 * once, as latin1 (RFC 9110 §5.5: field values are octets; obs-text is kept byte for byte).
 */
export class RequestHeadReader {
  readonly #maxSize: number;
  readonly #maxFields: number;
  /** Chunks held until the head is complete (none while the first chunk has not been kept). */
  #chunks: Buffer[] | undefined;
  /** Bytes held. */
  #length = 0;
  /** Offset where the current line starts. */
  #lineStart = 0;
  /** Offset of the request-line (after skipped empty lines). */
  #start = 0;
  /** Lines ended so far (request-line and fields). */
  #lines = 0;
  /** The last byte of the previous chunk (to tell CRLF from a bare LF across a split). */
  #prev = -1;
  #done = false;
  /** Where the early method check is: METHOD_LEAD, METHOD_IN, METHOD_DONE (see #methodOk). */
  #method = METHOD_LEAD;

  constructor(limits: RequestHeadLimits) {
    this.#maxSize = limits.maxHeaderSize;
    this.#maxFields = limits.maxHeaderFields ?? DEFAULT_MAX_HEADER_FIELDS;
  }

  /**
   * Give the next chunk (the reader keeps it: do not reuse it). Returns undefined while the head
   * is incomplete, then the result, once; after that it ignores everything.
   */
  push(chunk: Buffer): RequestHeadResult | undefined {
    if (this.#done) return undefined;
    const base = this.#length;
    // Only a line ending within maxSize bytes can end the head (the end is inclusive).
    const scanEnd = Math.min(chunk.length, this.#maxSize - base);
    if (this.#method !== METHOD_DONE && !this.#methodOk(chunk, scanEnd)) {
      return this.#fail(400, 'Bad Request', 'not an HTTP request: the request-line does not start with a method');
    }
    let lineStart = this.#lineStart;
    let i = 0;
    while (i < scanEnd) {
      // A plain loop: Buffer#indexOf is a native call per line, which cost more than the scan.
      let lf = i;
      while (lf < scanEnd && chunk[lf] !== LF) lf++;
      if (lf >= scanEnd) break;
      const before = lf > 0 ? chunk[lf - 1]! : this.#prev;
      if (before !== CR) return this.#fail(400, 'Bad Request', 'a line ends with a bare LF (expected CRLF)');
      const at = base + lf;
      if (at - 1 === lineStart) {
        // An empty line: before the request-line, it is skipped (RFC 9112 §2.2); after it, it
        // ends the head.
        if (lineStart !== this.#start) return this.#complete(chunk, base, at + 1);
        this.#start = at + 1;
      } else if (++this.#lines > this.#maxFields + 1) {
        return this.#fail(431, 'Request Header Fields Too Large', `more than ${this.#maxFields} header fields`);
      }
      lineStart = at + 1;
      i = lf + 1;
    }
    if (base + chunk.length >= this.#maxSize) {
      return this.#fail(431, 'Request Header Fields Too Large', `request head larger than ${this.#maxSize} bytes`);
    }
    this.#lineStart = lineStart;
    this.#length = base + chunk.length;
    if (chunk.length > 0) this.#prev = chunk[chunk.length - 1]!;
    (this.#chunks ??= []).push(chunk);
    return undefined;
  }

  /**
   * The early check, before the line scan and on the same bytes (so a verdict does not depend on
   * how the bytes were split): after CRLF empty lines, the request-line must begin with a token
   * and a SP. False: these bytes cannot be an HTTP request. A bare LF among the leading empty
   * lines is left to the line scan (its own 400).
   */
  #methodOk(chunk: Buffer, end: number): boolean {
    let state = this.#method;
    let prev = this.#prev;
    for (let i = 0; i < end && state !== METHOD_DONE; i++) {
      const c = chunk[i]!;
      if (state === METHOD_LEAD && (c === CR || c === LF)) {
        if (c === LF && prev !== CR) state = METHOD_DONE;
      } else if (isTchar(c)) {
        state = METHOD_IN;
      } else if (c === 0x20 && state === METHOD_IN) {
        state = METHOD_DONE;
      } else {
        return false;
      }
      prev = c;
    }
    this.#method = state;
    return true;
  }

  #complete(chunk: Buffer, base: number, end: number): RequestHeadResult {
    this.#done = true;
    const all = this.#chunks === undefined ? chunk : Buffer.concat([...this.#chunks, chunk], base + chunk.length);
    this.#chunks = undefined;
    // The head without its final empty line: field lines each end with CRLF.
    const parsed = parseRequestHead(all.toString('latin1', this.#start, end - 2), this.#maxFields);
    if (parsed instanceof HandshakeError) return { ok: false, error: parsed };
    return { ok: true, request: parsed, head: end === all.length ? EMPTY : all.subarray(end) };
  }

  #fail(status: number, text: string, reason: string): RequestHeadResult {
    this.#done = true;
    this.#chunks = undefined;
    return { ok: false, error: headError(status, text, reason) };
  }
}

function headError(status: number, text: string, reason: string): HandshakeError {
  return new HandshakeError(ErrorCode.HandshakeFailed, `${text}: ${reason}`, { status });
}

function badRequest(reason: string): HandshakeError {
  return headError(400, 'Bad Request', reason);
}

/**
 * The class of `headers`: no inherited keys, so a field named "constructor" or "__proto__" is
 * just a field. Instances of a constructor whose prototype has a null prototype keep V8's fast
 * properties, where `Object.create(null)` makes a dictionary-mode object.
 */
function HeaderMap(): void {}
HeaderMap.prototype = Object.create(null) as object;
const NullProtoRecord = HeaderMap as unknown as new () => Record<string, string>;

/**
 * Parse a request head: the request-line and field lines, each ending in CRLF (the final empty
 * line removed), as latin1. Returns the request or a HandshakeError (400, 431 or 505).
 */
export function parseRequestHead(text: string, maxFields = DEFAULT_MAX_HEADER_FIELDS): RequestHead | HandshakeError {
  // RFC 9112 §3: request-line = method SP request-target SP HTTP-version
  let eol = text.indexOf('\r\n');
  if (eol === -1) eol = text.length;
  const sp1 = text.indexOf(' ');
  const sp2 = sp1 === -1 ? -1 : text.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 === -1 || sp2 >= eol || sp2 === sp1 + 1) return badRequest('malformed request line');
  // (The usual method, target and version are constants: no new string for them per request.)
  const method = sp1 === 3 && text.startsWith('GET') ? 'GET' : text.slice(0, sp1);
  if (method !== 'GET' && !isToken(method)) return badRequest('malformed request line: the method is not a token');
  for (let i = sp1 + 1; i < sp2; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return badRequest('malformed request line: invalid character in the request target');
  }
  const url = sp2 === sp1 + 2 && text.charCodeAt(sp1 + 1) === 0x2f ? '/' : text.slice(sp1 + 1, sp2);
  // RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT (case-sensitive).
  const v = sp2 + 1;
  if (
    eol - v !== 8 ||
    !text.startsWith('HTTP/', v) ||
    !isDigit(text.charCodeAt(v + 5)) ||
    text.charCodeAt(v + 6) !== 0x2e ||
    !isDigit(text.charCodeAt(v + 7))
  ) {
    return badRequest('malformed request line: the HTTP version');
  }
  const httpVersion = text.charCodeAt(v + 5) === 0x31 && text.charCodeAt(v + 7) === 0x31 ? '1.1' : text.slice(v + 5, eol);
  // RFC 9110 §6.2: a server can refuse another major version with 505. A request-line in
  // HTTP/1 syntax claiming another major version (e.g. HTTP/2's "PRI * HTTP/2.0" preface) is
  // not one we can answer in kind.
  if (text.charCodeAt(v + 5) !== 0x31) {
    return headError(505, 'HTTP Version Not Supported', `HTTP/${httpVersion}`);
  }

  const headers = new NullProtoRecord();
  const rawHeaders: string[] = [];
  let hasHost = false;
  let pos = eol + 2;
  while (pos < text.length) {
    let end = text.indexOf('\r\n', pos);
    if (end === -1) end = text.length;
    // RFC 9112 §5.2: obs-fold (a line starting with SP or HTAB) is refused.
    const first = text.charCodeAt(pos);
    if (first === 0x20 || first === 0x09) return badRequest('obsolete line folding in a header field');
    const colon = text.indexOf(':', pos);
    if (colon === -1 || colon > end) return badRequest('a header line without a colon');
    const name = text.slice(pos, colon);
    if (!isToken(name)) {
      // RFC 9112 §5.1: "No whitespace is allowed between the field name and colon ... A server
      // MUST reject ... with a response status code of 400".
      const last = name.charCodeAt(name.length - 1);
      return badRequest(
        last === 0x20 || last === 0x09 ? `whitespace before the colon in header ${JSON.stringify(name.trimEnd())}` : `invalid header name ${JSON.stringify(name)}`,
      );
    }
    // RFC 9112 §5.1: OWS before and after the value is not part of it.
    let vs = colon + 1;
    let ve = end;
    while (vs < ve && isOws(text.charCodeAt(vs))) vs++;
    while (ve > vs && isOws(text.charCodeAt(ve - 1))) ve--;
    for (let i = vs; i < ve; i++) {
      const c = text.charCodeAt(i);
      // RFC 9110 §5.5: field-value = VCHAR / obs-text / SP / HTAB; a CR, LF or NUL (or other
      // control) in a value is refused.
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) return badRequest(`invalid character in the value of header ${name}`);
    }
    const value = text.slice(vs, ve);
    rawHeaders.push(name, value);
    const key = knownName(text, pos, colon) ?? name.toLowerCase();
    const prev = headers[key];
    if (prev === undefined) {
      headers[key] = value;
      if (key === 'host') hasHost = true;
    } else if (key === 'host' && hasHost) {
      // RFC 9112 §3.2: a request with more than one Host field line MUST be answered with 400.
      return badRequest('more than one Host header');
    } else {
      headers[key] = prev + (key === 'cookie' ? '; ' : ', ') + value;
    }
    pos = end + 2;
  }
  if (rawHeaders.length > maxFields * 2) {
    return headError(431, 'Request Header Fields Too Large', `more than ${maxFields} header fields`);
  }
  return { method, url, httpVersion, headers, rawHeaders };
}

/**
 * The lower-case name of a field that every handshake carries, when `text[start, end)` is one of
 * them in any case: a constant (no new string per request, and V8 stores a known key faster).
 * Undefined for any other name.
 */
function knownName(text: string, start: number, end: number): string | undefined {
  let name: string;
  switch (end - start) {
    case 4:
      name = 'host';
      break;
    case 6:
      name = 'origin';
      break;
    case 7:
      name = 'upgrade';
      break;
    case 10:
      name = text.charCodeAt(start) === 0x55 || text.charCodeAt(start) === 0x75 ? 'user-agent' : 'connection';
      break;
    case 17:
      name = 'sec-websocket-key';
      break;
    case 21:
      name = 'sec-websocket-version';
      break;
    case 22:
      name = 'sec-websocket-protocol';
      break;
    case 24:
      name = 'sec-websocket-extensions';
      break;
    default:
      return undefined;
  }
  for (let i = 0; i < name.length; i++) {
    // ASCII case-insensitive: setting 0x20 lower-cases a letter and leaves '-' (0x2d) as it is.
    // Only letters and '-' occur in these names, and a non-letter that matches under 0x20 ('\r'
    // for '-'...) is not a tchar, which the caller has checked already.
    if ((text.charCodeAt(start + i) | 0x20) !== name.charCodeAt(i)) return undefined;
  }
  return name;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}
