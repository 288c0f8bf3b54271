import { connect as http2Connect, constants as h2, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { isIP } from 'node:net';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { adoptHttp2Stream } from '../conn/transport.js';
import { ErrorCode, HandshakeError, WebSocketError } from '../protocol/errors.js';
import { buildConnectRequestHeaders, validateConnectResponse } from '../protocol/extended-connect.js';
import type { ExtensionOffer } from '../protocol/extensions.js';

/**
 * The client side of WebSockets over HTTP/2 (RFC 8441): open an extended CONNECT stream on a
 * session and check the response. `connect()` (src/client/client.ts) makes the Conn on it.
 */

export interface ExtendedConnectRequest {
  url: URL;
  /** A session to open the stream on (shared by several WebSockets), or undefined to open one for this WebSocket alone. */
  session: ClientHttp2Session | undefined;
  tls: TlsOptions | undefined;
  protocols: string[];
  extensions: string | undefined;
  origin: string | undefined;
  headers: Record<string, string> | undefined;
}

export interface ExtendedConnectResult {
  stream: ClientHttp2Stream;
  session: ClientHttp2Session;
  /** True when the session was opened for this WebSocket (close it when the WebSocket closes). */
  ownSession: boolean;
  protocol: string | undefined;
  extensions: ExtensionOffer[];
}

/**
 * Open the stream. `register(cancel)` receives the function that abandons the attempt (a timeout
 * or an abort signal calls it); the promise then rejects with what `cancel` was given.
 */
export function requestExtendedConnect(r: ExtendedConnectRequest, register: (cancel: (err: Error) => void) => void): Promise<ExtendedConnectResult> {
  const u = r.url;
  const secure = u.protocol === 'wss:' || u.protocol === 'https:';
  let headers: Record<string, string>;
  try {
    headers = buildConnectRequestHeaders({
      path: (u.pathname || '/') + u.search,
      authority: u.host,
      scheme: secure ? 'https' : 'http',
      protocols: r.protocols,
      extensions: r.extensions,
      origin: r.origin,
      headers: r.headers,
    });
  } catch (err) {
    return Promise.reject(err);
  }
  const ownSession = r.session === undefined;
  let session: ClientHttp2Session;
  if (r.session !== undefined) {
    session = r.session;
  } else {
    const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    // RFC 6066 §3: SNI carries host names only, never an IP literal.
    const origin = `${secure ? 'https' : 'http'}://${u.host}`;
    session = http2Connect(origin, secure ? { servername: isIP(host) === 0 ? host : '', ...r.tls } : {});
    session.on('error', noop); // reported through the stream or the wait below
  }
  return new Promise<ExtendedConnectResult>((resolve, reject) => {
    let settled = false;
    let stream: ClientHttp2Stream | undefined;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      stream?.close(h2.NGHTTP2_CANCEL);
      if (ownSession) session.destroy();
      reject(err);
    };
    register(fail);
    whenConnectAllowed(session).then(
      () => {
        if (settled) return;
        try {
          stream = session.request(headers, { endStream: false });
        } catch (err) {
          fail(new HandshakeError(ErrorCode.HandshakeFailed, `extended CONNECT failed: ${(err as Error).message}`, { cause: err }));
          return;
        }
        adoptHttp2Stream(stream);
        const s = stream;
        const onError = (err: Error): void => fail(new HandshakeError(ErrorCode.HandshakeFailed, `extended CONNECT failed: ${err.message}`, { cause: err }));
        s.on('error', onError);
        const onClose = (): void => fail(new HandshakeError(ErrorCode.HandshakeFailed, 'the HTTP/2 stream closed before a response'));
        s.on('close', onClose);
        s.once('response', (h: IncomingHttpHeaders) => {
          if (settled) return;
          try {
            const checked = validateConnectResponse(h, { protocols: r.protocols, extensionsOffered: r.extensions !== undefined });
            settled = true;
            s.off('error', onError);
            s.off('close', onClose);
            resolve({ stream: s, session, ownSession, protocol: checked.protocol, extensions: checked.extensions });
          } catch (err) {
            fail(err as Error);
          }
        });
      },
      (err: unknown) => fail(err as Error),
    );
  });
}

/** One wait per session, shared by every WebSocket opened on it. */
const allowed = new WeakMap<ClientHttp2Session, Promise<void>>();

/**
 * RFC 8441 §3: "A client MUST NOT send [:protocol] unless it has received the
 * SETTINGS_ENABLE_CONNECT_PROTOCOL parameter with a value of 1": wait for the server's SETTINGS.
 * They are the first frame a server sends (RFC 9113 §3.4), so once a PING we send after 'connect'
 * is answered they have come; if they did not allow it, fail with `ExtendedConnectDisabled`
 * rather than send a request nghttp2 would reset.
 */
export function whenConnectAllowed(session: ClientHttp2Session): Promise<void> {
  if (session.remoteSettings?.enableConnectProtocol === true) return Promise.resolve();
  let p = allowed.get(session);
  if (p !== undefined) return p;
  p = new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      session.off('remoteSettings', onSettings);
      session.off('connect', onConnect);
      session.off('close', onClose);
      session.off('error', onError);
    };
    const done = (err?: Error): void => {
      cleanup();
      allowed.delete(session);
      if (err === undefined) resolve();
      else reject(err);
    };
    const check = (final: boolean): void => {
      if (session.remoteSettings?.enableConnectProtocol === true) done();
      else if (final) done(new HandshakeError(ErrorCode.ExtendedConnectDisabled, 'the HTTP/2 server does not allow WebSockets (no SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 8441 §3)'));
    };
    const onSettings = (): void => check(false);
    const onConnect = (): void => {
      try {
        session.ping((err) => (err ? done(sessionError(err)) : check(true)));
      } catch (err) {
        done(sessionError(err as Error));
      }
    };
    const onClose = (): void => done(new WebSocketError(ErrorCode.SessionClosed, 'the HTTP/2 session closed before it allowed extended CONNECT'));
    const onError = (err: Error): void => done(sessionError(err));
    if (session.destroyed || session.closed) {
      onClose();
      return;
    }
    session.on('remoteSettings', onSettings);
    session.on('close', onClose);
    session.on('error', onError);
    if (session.connecting) session.once('connect', onConnect);
    else onConnect();
  });
  allowed.set(session, p);
  return p;
}

function sessionError(err: Error): HandshakeError {
  return new HandshakeError(ErrorCode.HandshakeFailed, `HTTP/2 connection failed: ${err.message}`, { cause: err });
}

function noop(): void {}
