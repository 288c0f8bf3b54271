import { Agent, request as httpRequest, type ClientRequest, type ClientRequestArgs, type IncomingMessage } from 'node:http';
import type { ClientHttp2Session } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Type } from '@sinclair/typebox';
import { Conn, type ConnHandlers } from '../conn/conn.js';
import { handshakeRefusedChannel } from '../conn/diagnostics.js';
import { failOpen } from '../conn/report.js';
import { ErrorCode, HandshakeError, OptionsError, WebSocketError } from '../protocol/errors.js';
import { formatExtensions, type ExtensionOffer } from '../protocol/extensions.js';
import { buildClientHeaders, generateKey, validateServerResponse } from '../protocol/handshake.js';
import type { MaskKeySource } from '../protocol/mask.js';
import { PerMessageDeflate, acceptDeflateResponse, buildDeflateOffer, type DeflateParams } from '../protocol/permessage-deflate.js';
import { ConnOptionsSchema, DeflateOptionsSchema, connOptionsFrom, parseOptions, resolveDeflate, type DeflateSettings } from '../server/options.js';
import { requestExtendedConnect } from './http2.js';
import { isRedirect, parseTarget, redirectTarget, sameOrigin, type Target } from './target.js';

/** The client's permessage-deflate settings: the server's, plus whether to add a fallback offer. */
export const ClientDeflateOptionsSchema = Type.Object(
  {
    ...DeflateOptionsSchema.properties,
    fallback: Type.Boolean({
      default: true,
      description: 'With serverMaxWindowBits < 15, also offer permessage-deflate without server_max_window_bits (for servers that do not support it)',
    }),
  },
  { additionalProperties: false },
);

export const ClientOptionsSchema = Type.Object(
  {
    ...ConnOptionsSchema,
    handshakeTimeout: Type.Integer({ minimum: 1, default: 10_000, description: 'Longest time to a 101 response (ms), redirects included' }),
    protocols: Type.Optional(Type.Array(Type.String(), { description: 'Subprotocols to offer, in order of preference' })),
    headers: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Extra request headers' })),
    origin: Type.Optional(Type.String({ description: 'Origin header to send' })),
    deflate: Type.Union([Type.Boolean(), Type.Partial(ClientDeflateOptionsSchema)], { default: false, description: 'Offer permessage-deflate' }),
    socketPath: Type.Optional(Type.String({ minLength: 1, description: 'Connect to this unix domain socket instead of the URL\'s host and port' })),
    followRedirects: Type.Boolean({ default: false, description: 'Follow 301, 302, 303, 307 and 308 answers to the handshake' }),
    maxRedirects: Type.Integer({ minimum: 0, default: 10, description: 'Most redirects followed (followRedirects); one more fails with WS_ERR_TOO_MANY_REDIRECTS' }),
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
  maxInboundBytes?: number;
  maxFragments?: number;
  messageTimeout?: number;
  pingInterval?: number;
  pongTimeout?: number;
  closeTimeout?: number;
  handshakeTimeout?: number;
  protocols?: string[];
  headers?: Record<string, string>;
  origin?: string;
  /** Offer permessage-deflate: true, or settings (`fallback`: see ClientDeflateOptionsSchema). */
  deflate?: boolean | Partial<DeflateSettings & { fallback: boolean }>;
  /** Connect to this unix domain socket (the URL then only gives the request path and Host). */
  socketPath?: string;
  /** Follow 301, 302, 303, 307 and 308 answers to the handshake (default false), at most `maxRedirects` (default 10). */
  followRedirects?: boolean;
  maxRedirects?: number;
  /**
   * The `http.Agent` (an `https.Agent` for wss:) that makes the connection: a proxy agent such as
   * `new HttpsProxyAgent('http://proxy:3128')` tunnels through an HTTP proxy. Default: none (a
   * fresh socket per connection, never pooled).
   */
  agent?: Agent;
  /**
   * Make the socket yourself: return it, or pass it to `callback` later (for wss: it must already
   * speak TLS). Takes precedence over `agent`.
   */
  createConnection?: ClientRequestArgs['createConnection'];
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
/** The options that are not plain data, each with the check its value must pass. */
const OBJECT_OPTIONS: Record<string, [check: (v: unknown) => boolean, expected: string]> = {
  ...Object.fromEntries(HANDLER_KEYS.map((k) => [k, [isFunction, 'a function']])),
  createConnection: [isFunction, 'a function'],
  agent: [(v) => v instanceof Agent || (typeof v === 'object' && v !== null && isFunction((v as { addRequest?: unknown }).addRequest)), 'an http.Agent'],
  signal: [(v) => v instanceof AbortSignal, 'an AbortSignal'],
  tls: [(v) => typeof v === 'object' && v !== null, 'an object'],
  maskKeys: [(v) => typeof v === 'object' && v !== null && isFunction((v as MaskKeySource).next), 'a MaskKeySource'],
  data: [() => true, ''],
  http2: [(v) => typeof v === 'boolean' || (typeof v === 'object' && v !== null && isFunction((v as { request?: unknown }).request)), 'a boolean or a ClientHttp2Session'],
};

function isFunction(v: unknown): boolean {
  return typeof v === 'function';
}

/** Headers that carry credentials: not sent on to another origin after a redirect (as fetch does). */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

/**
 * Open a WebSocket connection (RFC 6455 §4.1) to a `ws://`, `wss://` or `ws+unix:` URL. Resolves
 * with the same `Conn` the server uses, once the server's 101 response has been checked. Messages
 * go to `handleData` when given, else to `for await (const m of conn)`.
 */
export function connect<D = undefined>(url: string | URL, options: ClientOptions<D> = {}): Promise<Conn<D>> {
  let plan: Plan<D>;
  try {
    plan = planConnect(url, options);
  } catch (err) {
    return Promise.reject(err);
  }
  return run(plan, options);
}

type Plan<D> = ReturnType<typeof planConnect<D>>;

/** Check the URL and the options (throwing what connect() rejects with) and work out the offers. */
export function planConnect<D>(url: string | URL, options: ClientOptions<D>) {
  const first = parseTarget(url);
  if (first instanceof WebSocketError) throw first;

  const schemaInput: Record<string, unknown> = {};
  const problems: string[] = [];
  if (typeof options !== 'object' || options === null) throw new OptionsError('client options must be an object');
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    const check = OBJECT_OPTIONS[k];
    if (check === undefined) schemaInput[k] = v;
    else if (!check[0](v)) problems.push(`/${k}: Expected ${check[1]}`);
  }
  if (problems.length > 0) throw new OptionsError(`invalid client options: ${problems.join('; ')}`);
  const opts = parseOptions(ClientOptionsSchema, schemaInput, 'client options');
  const handlers: ConnHandlers<D> = {};
  for (const k of HANDLER_KEYS) if (options[k] !== undefined) (handlers as Record<string, unknown>)[k] = options[k];
  const deflate = resolveDeflate(opts.deflate);
  const offers: ExtensionOffer[] = [];
  if (deflate !== undefined) {
    const offer = buildDeflateOffer(deflate);
    offers.push(offer);
    // RFC 7692 §5: a client may send several offers, in order of preference, and §7.1.2.1 lets a
    // server that does not support server_max_window_bits only decline that offer. Some servers
    // (Bun) instead accept it without the parameter, which we must refuse; the same offer without
    // server_max_window_bits after it still gets compression from them.
    const fallback = typeof opts.deflate === 'object' ? opts.deflate.fallback !== false : true;
    if (fallback && deflate.serverMaxWindowBits < 15) offers.push({ ...offer, params: offer.params.filter(([k]) => k !== SERVER_MWB) });
  }
  const offerHeader = offers.length > 0 ? formatExtensions(offers) : undefined;
  const protocols = opts.protocols ?? [];
  // A bad subprotocol or header is reported as every other bad argument is (connect() rejects).
  buildClientHeaders({ key: generateKey(), protocols, extensions: offerHeader, origin: opts.origin, headers: opts.headers });
  return { first, opts, handlers, deflate, offers, offerHeader, protocols };
}

function run<D>(plan: Plan<D>, options: ClientOptions<D>): Promise<Conn<D>> {
  const { first, opts, handlers, deflate, offers, offerHeader, protocols } = plan;

  const ctx: OpenContext<D> = { options, opts, handlers, deflate, offers };
  if (options.http2 !== undefined && options.http2 !== false) {
    if (first.socketPath !== undefined) return Promise.reject(new WebSocketError(ErrorCode.InvalidArgument, 'http2 cannot be combined with a ws+unix: URL'));
    return connectHttp2(new URL(first.href), options.http2 === true ? undefined : options.http2, ctx, offerHeader);
  }

  return new Promise<Conn<D>>((resolve, reject) => {
    let settled = false;
    let req: ClientRequest | undefined;
    let target: Target = first;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      req?.destroy();
      if (handshakeRefusedChannel.hasSubscribers) handshakeRefusedChannel.publish({ role: 'client', url: target.href, error: err });
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

    const send = (to: Target, redirects: number, userHeaders: Record<string, string> | undefined): void => {
      target = to;
      const key = generateKey();
      const headers = buildClientHeaders({ key, protocols, extensions: offerHeader, origin: opts.origin, headers: userHeaders });
      const socketPath = to.socketPath ?? opts.socketPath;
      const requestOptions: ClientRequestArgs & Record<string, unknown> = {
        method: 'GET',
        path: to.path,
        headers,
        ...(socketPath !== undefined ? { socketPath } : { host: to.host, port: to.port }),
        // No agent: a fresh socket per connection (a pooled keep-alive socket cannot be upgraded).
        // A createConnection hook is called by node:http only when there is no agent.
        ...(options.createConnection !== undefined ? { createConnection: options.createConnection } : { agent: options.agent ?? false }),
        // RFC 6066 §3: SNI carries host names only, never an IP literal ('' sends no SNI).
        ...(to.secure ? { servername: isIP(to.host) === 0 ? to.host : '', ...options.tls } : {}),
      };
      const r = (to.secure ? httpsRequest : httpRequest)(requestOptions);
      req = r;
      r.on('error', (err) => r === req && fail(new HandshakeError(ErrorCode.HandshakeFailed, `connection failed: ${err.message}`, { cause: err })));
      r.on('response', (res: IncomingMessage) => {
        res.resume();
        const location = res.headers.location;
        if (opts.followRedirects && isRedirect(res.statusCode) && location !== undefined) {
          if (redirects >= opts.maxRedirects) {
            fail(new HandshakeError(ErrorCode.TooManyRedirects, `more than ${opts.maxRedirects} redirects (last: ${res.statusCode} to ${location})`, { status: res.statusCode }));
            return;
          }
          const next = redirectTarget(to, location);
          if (next instanceof WebSocketError) {
            fail(next);
            return;
          }
          r.destroy();
          send(next, redirects + 1, sameOrigin(to, next) ? userHeaders : withoutCredentials(userHeaders));
          return;
        }
        fail(new HandshakeError(ErrorCode.HandshakeFailed, `server answered ${res.statusCode} ${res.statusMessage ?? ''} instead of 101`.trim(), { status: res.statusCode }));
      });
      r.on('upgrade', (res: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (settled || r !== req) {
          socket.destroy();
          return;
        }
        try {
          const checked = validateServerResponse(res, { key, protocols, extensionsOffered: offerHeader !== undefined });
          const accepted = acceptDeflate(checked.extensions, ctx);
          settled = true;
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          resolve(openConn(ctx, socket, checked.protocol, accepted, (socket as Duplex & { remoteAddress?: string }).remoteAddress, head));
        } catch (err) {
          socket.destroy();
          fail(err instanceof Error ? err : new HandshakeError(ErrorCode.HandshakeFailed, String(err)));
        }
      });
      r.end();
    };
    try {
      send(first, 0, opts.headers);
    } catch (err) {
      fail(err instanceof Error ? err : new WebSocketError(ErrorCode.InvalidArgument, String(err)));
    }
  });
}

const SERVER_MWB = 'server_max_window_bits';

/** The parameters of the offer the server accepted (RFC 7692 §5: it answers one of them), trying them in our order. */
function acceptAnyOffer(response: readonly ExtensionOffer[], deflate: DeflateSettings, offers: readonly ExtensionOffer[]): DeflateParams | undefined {
  let firstError: unknown;
  for (const offer of offers) {
    try {
      return acceptDeflateResponse(response, deflate, offer);
    } catch (err) {
      firstError ??= err;
    }
  }
  throw firstError;
}

function withoutCredentials(headers: Record<string, string> | undefined): Record<string, string> | undefined {
  if (headers === undefined) return undefined;
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !CREDENTIAL_HEADERS.has(k.toLowerCase())));
}

interface OpenContext<D> {
  options: ClientOptions<D>;
  opts: ReturnType<typeof parseOptions<typeof ClientOptionsSchema>>;
  handlers: ConnHandlers<D>;
  deflate: ReturnType<typeof resolveDeflate>;
  /** Our permessage-deflate offers, in order (a fallback may follow the first). */
  offers: readonly ExtensionOffer[];
}

/** RFC 7692 §5: the server's answer to our permessage-deflate offers, as a codec (undefined: none). */
function acceptDeflate<D>(
  extensions: readonly ExtensionOffer[],
  ctx: OpenContext<D>,
): { codec: PerMessageDeflate; extensions: string; threshold: number } | undefined {
  const { deflate, offers } = ctx;
  if (deflate === undefined) return undefined;
  const params = acceptAnyOffer(extensions, deflate, offers);
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
        conn = openConn(ctx, r.stream, r.protocol, acceptDeflate(r.extensions, ctx), r.session.socket?.remoteAddress, undefined);
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
