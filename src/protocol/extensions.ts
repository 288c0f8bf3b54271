import { ErrorCode, HandshakeError, WebSocketError } from './errors.js';

/**
 * The `Sec-WebSocket-Extensions` header (RFC 6455 §9.1):
 *
 *   extension-list = 1#extension
 *   extension      = extension-token *( ";" extension-param )
 *   extension-param = token [ "=" (token | quoted-string) ]
 *
 * with optional whitespace around the separators (RFC 7230 §3.2.3, §7). The parser keeps the
 * order of extensions and of parameters, and keeps duplicates: negotiation must be able to see
 * (and refuse) an offer that names the same parameter twice (RFC 7692 §7.1).
 */

/** One element of the list: an extension name and its parameters, in header order. */
export interface ExtensionOffer {
  name: string;
  /** `true` stands for a parameter written without a value. */
  params: Array<[name: string, value: string | true]>;
}

// RFC 7230 §3.2.6: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. A lookup table indexed by char code.
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

/** Is `s` a non-empty RFC 7230 token? */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TCHAR[c] !== 1) return false;
  }
  return true;
}

/** Is the byte or char code `c` an RFC 7230 tchar? */
export function isTchar(c: number): boolean {
  return c < 128 && TCHAR[c] === 1;
}

/** RFC 7230 §3.2.3: OWS = *( SP / HTAB ). */
function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

function syntaxError(at: number, what: string): HandshakeError {
  return new HandshakeError(
    ErrorCode.InvalidExtensions,
    `Invalid Sec-WebSocket-Extensions header: ${what} at index ${at}`,
    { status: 400 },
  );
}

/**
 * Parse one or more `Sec-WebSocket-Extensions` header lines (several lines are one list joined
 * with ","). Empty list elements are skipped (RFC 7230 §7 asks recipients to accept them).
 * Throws `HandshakeError(InvalidExtensions, status 400)` on bad syntax.
 */
export function parseExtensions(header: string | string[] | undefined): ExtensionOffer[] {
  if (header === undefined) return [];
  const s = typeof header === 'string' ? header : header.join(',');
  const out: ExtensionOffer[] = [];
  const n = s.length;
  let i = 0;

  const skipWs = (): void => {
    while (i < n && isWs(s.charCodeAt(i))) i++;
  };
  const readToken = (what: string): string => {
    const start = i;
    while (i < n && isTchar(s.charCodeAt(i))) i++;
    if (i === start) {
      throw syntaxError(i, i < n ? `unexpected character ${JSON.stringify(s[i])} in ${what}` : `missing ${what}`);
    }
    return s.slice(start, i);
  };

  while (i < n) {
    skipWs();
    if (i === n) break;
    if (s.charCodeAt(i) === 0x2c /* , */) {
      i++;
      continue; // empty list element
    }
    const ext: ExtensionOffer = { name: readToken('extension name'), params: [] };
    skipWs();
    while (i < n && s.charCodeAt(i) === 0x3b /* ; */) {
      i++;
      skipWs();
      const name = readToken('parameter name');
      skipWs();
      let value: string | true = true;
      if (i < n && s.charCodeAt(i) === 0x3d /* = */) {
        i++;
        skipWs();
        if (i < n && s.charCodeAt(i) === 0x22 /* " */) {
          const start = i;
          i++;
          let v = '';
          for (;;) {
            if (i >= n) throw syntaxError(start, 'unterminated quoted-string');
            const c = s.charCodeAt(i);
            if (c === 0x22) {
              i++;
              break;
            }
            if (c === 0x5c /* \ */) {
              // RFC 7230 §3.2.6: quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
              i++;
              if (i >= n) throw syntaxError(start, 'unterminated quoted-string');
            }
            v += s[i];
            i++;
          }
          // RFC 6455 §9.1: "When using the quoted-string syntax variant, the value after
          // quoted-string unescaping MUST conform to the 'token' ABNF."
          if (!isToken(v)) throw syntaxError(start, `quoted value ${JSON.stringify(v)} is not a token`);
          value = v;
        } else {
          value = readToken('parameter value');
        }
        skipWs();
      }
      ext.params.push([name, value]);
    }
    out.push(ext);
    if (i < n) {
      if (s.charCodeAt(i) !== 0x2c) throw syntaxError(i, `unexpected character ${JSON.stringify(s[i])}`);
      i++;
    }
  }
  return out;
}

/**
 * Serialise a list for a header value: `name; p; q=v, other`. Names and values must be tokens
 * (RFC 6455 §9.1), so nothing needs quoting; anything else is a programming error.
 */
export function formatExtensions(list: readonly ExtensionOffer[]): string {
  const parts: string[] = [];
  for (const ext of list) {
    if (!isToken(ext.name)) {
      throw new WebSocketError(ErrorCode.InvalidArgument, `Extension name ${JSON.stringify(ext.name)} is not a token`);
    }
    let part = ext.name;
    for (const [name, value] of ext.params) {
      if (!isToken(name) || (value !== true && !isToken(value))) {
        throw new WebSocketError(
          ErrorCode.InvalidArgument,
          `Extension parameter ${JSON.stringify(name)}=${JSON.stringify(value)} of ${ext.name} is not a token`,
        );
      }
      part += value === true ? `; ${name}` : `; ${name}=${value}`;
    }
    parts.push(part);
  }
  return parts.join(', ');
}
