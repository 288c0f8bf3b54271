import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type { ClientHttp2Session } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Type } from '@sinclair/typebox';
import { Conn, type ConnHandlers } from '../conn/conn.js';
import { ErrorCode, HandshakeError, WebSocketError } from '../protocol/errors.js';
import { formatExtensions } from '../protocol/extensions.js';
import { buildClientHeaders, generateKey, validateServerResponse } from '../protocol/handshake.js';
import type { MaskKeySource } from '../protocol/mask.js';
import { PerMessageDeflate, acceptDeflateResponse, buildDeflateOffer } from '../protocol/permessage-deflate.js';
import { requestExtendedConnect } from './http2.js';
import type { ExtensionOffer } from '../protocol/extensions.js';
import { ConnOptionsSchema, DeflateOptionsSchema, connOptionsFrom, parseOptions, resolveDeflate } from '../server/options.js';

export const ClientOptionsSchema = Type.Object(
  {
    ...ConnOptionsSchema,
    handshakeTimeout: Type.Integer({ minimum: 1, default: 10_000, description: 'Longest time to a 101 response (ms)' }),
    protocols: Type.Optional(Type.Array(Type.String(), { description: 'Subprotocols to offer, in order of preference' })),
    headers: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Extra request headers' })),
    origin: Type.Optional(Type.String({ description: 'Origin header to send' })),
    deflate: Type.Union([Type.Boolean(), Type.Partial(DeflateOptionsSchema)], { default: false, description: 'Offer permessage-deflate' }),
  },
  { additionalProperties: false },
);

export interface ClientOptions<D = undefined> extends ConnHandlers<D> {
  maxMessageSize?: number;
  maxFrameSize?: number;
  maxQueuedFrames?: number;
  maxQueuedBytes?: number;
  overflow?: 'wait' | 'drop-newest' | 'drop-oldest' | 'close' | 'conflate';
  overflowCloseCode?: 1008 | 1013;
  maxWaiters?: number;
  inboxSize?: number;
  pingInterval?: number;
  pongTimeout?: number;
  closeTimeout?: number;
  handshakeTimeout?: number;
  protocols?: string[];
  headers?: Record<string, string>;
  origin?: string;
  deflate?: boolean | Partial<import('../server/options.js').DeflateSettings>;
  /** Per-connection context, as `conn.data`. */
  data?: D;
  /** TLS options for wss:// (ca, cert, key, rejectUnauthorized, servername…). */
  tls?: TlsOptions;
  /** Abort the handshake. */
  signal?: AbortSignal;
  /** Where masking keys come from (default: crypto-random). Tests inject a fixed key. */
  maskKeys?: MaskKeySource;
  /**
   * Open the WebSocket as a stream of an HTTP/2 session (RFC 8441 extended CONNECT) instead of an
   * HTTP/1.1 upgrade: a `ClientHttp2Session` from `http2.connect()` to share one session among
   * several WebSockets (you close it), or `true` to open a session for this WebSocket alone
   * (closed with it; `tls` applies to it). Fails with `WS_ERR_H2_NO_EXTENDED_CONNECT` when the
   * server does not allow extended CONNECT.
   */
  http2?: ClientHttp2Session | boolean;
}

const HANDLER_KEYS = ['handleOpen', 'handleData', 'handlePing', 'handlePong', 'handleClose', 'handleError', 'handleFrame'] as const;
const NON_SCHEMA_KEYS = new Set<string>([...HANDLER_KEYS, 'data', 'tls', 'signal', 'maskKeys', 'http2']);

/**
 * Open a WebSocket connection (RFC 6455 §4.1) to a `ws://` or `wss://` URL. Resolves with the same
 * `Conn` the server uses, once the server's 101 response has been checked. Messages go to
 * `handleData` when given, else to `for await (const m of conn)`.
 */
export function connect<D = undefined>(url: string | URL, options: ClientOptions<D> = {}): Promise<Conn<D>> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return Promise.reject(new WebSocketError(ErrorCode.InvalidArgument, `invalid URL: ${String(url)}`));
  }
  const secure = u.protocol === 'wss:' || u.protocol === 'https:';
  if (!secure && u.protocol !== 'ws:' && u.protocol !== 'http:') {
    return Promise.reject(new WebSocketError(ErrorCode.InvalidArgument, `unsupported URL scheme ${u.protocol} (use ws: or wss:)`));
  }
  if (u.hash !== '') return Promise.reject(new WebSocketError(ErrorCode.InvalidArgument, 'a WebSocket URL must not have a fragment (RFC 6455 §3)'));

  const schemaInput: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) if (!NON_SCHEMA_KEYS.has(k) && v !== undefined) schemaInput[k] = v;
  let opts;
  try {
    opts = parseOptions(ClientOptionsSchema, schemaInput, 'client options');
  } catch (err) {
    return Promise.reject(err);
  }
  const handlers: ConnHandlers<D> = {};
  for (const k of HANDLER_KEYS) if (options[k] !== undefined) (handlers as Record<string, unknown>)[k] = options[k];
  const deflate = resolveDeflate(opts.deflate);
  const offer = deflate !== undefined ? formatExtensions([buildDeflateOffer(deflate)]) : undefined;
  const key = generateKey();
  const protocols = opts.protocols ?? [];
  let headers: Record<string, string>;
  try {
    // A bad subprotocol or header is reported as every other bad argument is: by rejecting.
    headers = buildClientHeaders({ key, protocols, extensions: offer, origin: opts.origin, headers: opts.headers });
  } catch (err) {
    return Promise.reject(err);
  }

  const ctx: OpenContext<D> = { options, opts, handlers, deflate };
  if (options.http2 !== undefined && options.http2 !== false) return connectHttp2(u, options.http2 === true ? undefined : options.http2, ctx, offer);

  return new Promise<Conn<D>>((resolve, reject) => {
    let settled = false;
    let req: ClientRequest;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      req?.destroy();
      reject(err);
    };
    const onAbort = (): void => fail(new WebSocketError(ErrorCode.Aborted, 'connect aborted', { cause: options.signal?.reason }));
    const timer = setTimeout(
      () => fail(new HandshakeError(ErrorCode.HandshakeTimeout, `no handshake response within ${opts.handshakeTimeout} ms`)),
      opts.handshakeTimeout,
    );
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    const requestOptions = {
      method: 'GET',
      host,
      port: u.port !== '' ? Number(u.port) : secure ? 443 : 80,
      path: (u.pathname || '/') + u.search,
      headers,
      agent: false as const,
      // RFC 6066 §3: SNI carries host names only, never an IP literal ('' sends no SNI).
      ...(secure ? { servername: isIP(host) === 0 ? host : '', ...options.tls } : {}),
    };
    req = (secure ? httpsRequest : httpRequest)(requestOptions);
    req.on('error', (err) => fail(new HandshakeError(ErrorCode.HandshakeFailed, `connection failed: ${err.message}`, { cause: err })));
    req.on('response', (res: IncomingMessage) => {
      res.resume();
      fail(new HandshakeError(ErrorCode.HandshakeFailed, `server answered ${res.statusCode} ${res.statusMessage ?? ''} instead of 101`.trim(), { status: res.statusCode }));
    });
    req.on('upgrade', (res: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (settled) {
        socket.destroy();
        return;
      }
      try {
        const checked = validateServerResponse(res, { key, protocols, extensionsOffered: offer !== undefined });
        const codec = acceptDeflate(checked.extensions, deflate);
        settled = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        resolve(openConn(ctx, socket, checked.protocol, codec, (socket as Duplex & { remoteAddress?: string }).remoteAddress, head));
      } catch (err) {
        socket.destroy();
        fail(err instanceof Error ? err : new HandshakeError(ErrorCode.HandshakeFailed, String(err)));
      }
    });
    req.end();
  });
}

interface OpenContext<D> {
  options: ClientOptions<D>;
  opts: ReturnType<typeof parseOptions<typeof ClientOptionsSchema>>;
  handlers: ConnHandlers<D>;
  deflate: ReturnType<typeof resolveDeflate>;
}

/** RFC 7692 §5: the server's answer to our permessage-deflate offer, as a codec (undefined: none). */
function acceptDeflate(
  extensions: ExtensionOffer[],
  deflate: OpenContext<unknown>['deflate'],
): { codec: PerMessageDeflate; extensions: string; threshold: number } | undefined {
  if (deflate === undefined) return undefined;
  const params = acceptDeflateResponse(extensions, deflate);
  if (params === undefined) return undefined;
  return { codec: new PerMessageDeflate('client', params, deflate), extensions: formatExtensions(extensions), threshold: deflate.threshold };
}

/** The handshake is done: the Conn over `socket` (a TCP/TLS socket, or an HTTP/2 stream), then handleOpen. */
function openConn<D>(
  ctx: OpenContext<D>,
  socket: Duplex,
  protocol: string | undefined,
  deflate: ReturnType<typeof acceptDeflate>,
  remoteAddress: string | undefined,
  head: Buffer | undefined,
): Conn<D> {
  const { options, opts, handlers } = ctx;
  const c = new Conn<D>({
    socket,
    role: 'client',
    options: connOptionsFrom(opts),
    handlers,
    data: options.data as D,
    protocol,
    extensions: deflate?.extensions,
    remoteAddress,
    head,
    deflate: deflate !== undefined ? { codec: deflate.codec, threshold: deflate.threshold, paramsKey: null } : undefined,
    maskKeys: options.maskKeys,
  });
  const open = handlers.handleOpen;
  if (open !== undefined) {
    // Now, before the first message (its bytes are parsed on the next tick at the earliest).
    try {
      const r = open(c);
      if (r instanceof Promise) r.catch((e: unknown) => failOpen(c, handlers, e));
    } catch (e) {
      failOpen(c, handlers, e);
    }
  }
  return c;
}

/** RFC 8441: the WebSocket as an extended CONNECT stream on `session` (a new one when undefined). */
function connectHttp2<D>(u: URL, session: ClientHttp2Session | undefined, ctx: OpenContext<D>, offer: string | undefined): Promise<Conn<D>> {
  const { options, opts } = ctx;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const attempt = requestExtendedConnect(
    { url: u, session, tls: options.tls, protocols: opts.protocols ?? [], extensions: offer, origin: opts.origin, headers: opts.headers },
    (cancel) => {
      timer = setTimeout(() => cancel(new HandshakeError(ErrorCode.HandshakeTimeout, `no handshake response within ${opts.handshakeTimeout} ms`)), opts.handshakeTimeout);
      onAbort = () => cancel(new WebSocketError(ErrorCode.Aborted, 'connect aborted', { cause: options.signal?.reason }));
      if (options.signal?.aborted) onAbort();
      else options.signal?.addEventListener('abort', onAbort, { once: true });
    },
  );
  const settle = (): void => {
    clearTimeout(timer);
    if (onAbort !== undefined) options.signal?.removeEventListener('abort', onAbort);
  };
  return attempt.then(
    (r) => {
      settle();
      let conn: Conn<D>;
      try {
        conn = openConn(ctx, r.stream, r.protocol, acceptDeflate(r.extensions, ctx.deflate), r.session.socket?.remoteAddress, undefined);
      } catch (err) {
        r.stream.close(0x8); // RFC 9113 §7 CANCEL
        if (r.ownSession) r.session.close();
        throw err;
      }
      if (r.ownSession) {
        // A session of its own ends with the WebSocket (GOAWAY after the stream closes).
        void conn.closed.then(() => r.session.close());
      }
      return conn;
    },
    (err: unknown) => {
      settle();
      throw err;
    },
  );
}

/** handleOpen threw: report it to handleError, as the server does, and close with 1011 (RFC 6455 §7.4.1). */
function failOpen<D>(conn: Conn<D>, handlers: ConnHandlers<D>, err: unknown): void {
  const error = new WebSocketError(ErrorCode.HandlerFailed, `handleOpen threw: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
    closeCode: 1011,
  });
  try {
    handlers.handleError?.(conn, error);
  } catch {
    // An error handler that throws has nobody left to tell.
  } finally {
    if (conn.state === 'open') void conn.close(1011, 'internal error');
  }
}
