import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Conn, connInternals, isEarly, leaveEarly, listenEarly, type CloseInfo, type ConnHandlers, type ConnOptions, type PublishWriteResult } from '../conn/conn.js';
import { handshakeRefusedChannel, warnUnhandled } from '../conn/diagnostics.js';
import { failOpen } from '../conn/report.js';
import { CloseCode, Opcode } from '../protocol/constants.js';
import { isValidUtf8 } from '../protocol/utf8.js';
import { arenaFrame } from './frame-arena.js';
import { compressShared, shareLargeCompression, type DeflateParams } from '../protocol/permessage-deflate.js';
import { ConnectionError, ErrorCode, HandshakeError, WebSocketError } from '../protocol/errors.js';
import { formatExtensions, type ExtensionOffer } from '../protocol/extensions.js';
import {
  buildAcceptResponse,
  buildPlainAcceptResponse,
  buildRefusalResponse,
  hasToken,
  validateUpgradeRequest,
  type UpgradeRequest,
  type ValidatedUpgrade,
} from '../protocol/handshake.js';
import { RequestHeadReader, type RequestHeadLimits } from '../protocol/http-request.js';
import type { Frame } from '../protocol/frame-parser.js';
import { negotiateDeflate, type DeflateSetup } from './deflate.js';
import { PendingHandshake, PendingHandshakes } from './pending.js';
import { TopicRegistry } from './topics.js';
import { buildHttpResponse, type HttpResponse, type RequestHandler } from './http-response.js';
import { addRoute, pathOf, removeRoute, type UpgradeRoute } from './upgrade-router.js';
import { addHttp2Route, isHttp2Server, refuseStream, removeHttp2Route, respondAccepted, type AnyHttp2Server } from './http2.js';
import { transportOf } from '../conn/transport.js';
import { validateConnectRequest } from '../protocol/extended-connect.js';
import { BusList, publishFlags, type BusAttachment, type TopicBus } from './bus.js';
import { reusePortMissing } from './reuse-port.js';
import {
  ServerOptionsSchema,
  connOptionsFrom,
  parseOptions,
  resolveDeflate,
  type DeflateSettings,
  type ServerOptions,
  type ServerOptionsInput,
} from './options.js';

/** What `handleUpgrade` learns about a request that passed the RFC 6455 checks. */
export interface UpgradeInfo {
  /** Subprotocols the client offered, in its order. */
  protocols: string[];
  origin: string | undefined;
  extensions: ExtensionOffer[];
}

/** Accept: with your per-connection data and, optionally, one of the offered subprotocols. */
export interface UpgradeAccept<D> {
  data: D;
  protocol?: string | undefined;
  headers?: Record<string, string> | undefined;
}
/** Refuse: with an HTTP status (4xx/5xx) and a short reason. */
export interface UpgradeRefuse {
  status: number;
  reason?: string | undefined;
  headers?: Record<string, string> | undefined;
}
export type UpgradeDecision<D> = UpgradeAccept<D> | UpgradeRefuse;

export interface ListenOptions {
  port?: number;
  host?: string;
  /**
   * Let several listeners (threads) bind the same port, the kernel spreading connections among
   * them (SO_REUSEPORT; Linux, Node >= 22.12 / 23.1). Where Node lacks it, listen() fails with
   * `WS_ERR_UNSUPPORTED` rather than bind alone.
   */
  reusePort?: boolean;
}

/**
 * How a publish went, one count per target connection (queued + conflated + dropped + closed =
 * targets): it was queued; it replaced a queued message with the same key (policy `conflate`; it
 * will be sent in that one's place); the overflow policy dropped it; or the connection was closing,
 * closed, or closed by the `close` policy because of it.
 */
export interface PublishResult {
  queued: number;
  conflated: number;
  dropped: number;
  closed: number;
}

export interface PublishOptions {
  /** Default: text for a string, binary for bytes. */
  isBinary?: boolean | undefined;
  /** Policy `conflate`: replace the unsent message with the same key in each subscriber's outbox. */
  key?: string | undefined;
}

/**
 * Counters of the whole server since it started. `delivered`, `dropped` and `conflated` add up the
 * connections' own counters (open and closed ones), so they include direct `conn.write()`s too.
 */
export interface ServerStats {
  /** Calls to publish, publishTo and broadcast. */
  published: number;
  /** Copies of those messages that went into an outbox (Σ PublishResult.queued + conflated). */
  queued: number;
  /** Data messages handed to sockets by the writers. */
  delivered: number;
  /** Data messages dropped by the overflow policies (refused or evicted). */
  dropped: number;
  /** Queued messages replaced by a newer one with the same key. */
  conflated: number;
  /** Connections closed by the `close` overflow policy. */
  closedForSlowness: number;
}

const STATUS_TEXT: Record<number, string> = { 404: 'Not Found', 403: 'Forbidden', 503: 'Service Unavailable' };

/**
 * A WebSocket server: the HTTP upgrade (RFC 6455 §4.2), then one `Conn` per client reporting to
 * the `handle*` callbacks set on this object. It can listen on its own (`listen`) or serve the
 * `upgrade` event of any node:http / node:https server (`attach`).
 */
export class Server<D = undefined> {
  readonly options: ServerOptions;
  readonly #connOptions: ConnOptions;
  readonly #deflate: DeflateSettings | undefined;
  readonly #handlers: ConnHandlers<D> = {};
  readonly #conns = new Set<Conn<D>>();
  #handleUpgrade: ((req: UpgradeRequest, info: UpgradeInfo) => UpgradeDecision<D> | Promise<UpgradeDecision<D>>) | undefined;
  #handleUpgradeError: ((req: UpgradeRequest | undefined, error: WebSocketError) => void) | undefined;
  #handleRequest: RequestHandler | undefined;
  /** listen()'s TCP server. */
  #net: NetServer | undefined;
  readonly #headLimits: RequestHeadLimits;
  #attached: (HttpServer | HttpsServer | AnyHttp2Server)[] = [];
  #closing: Promise<void> | undefined;
  /** Handshakes in progress and their handshakeTimeout deadline. */
  readonly #pending: PendingHandshakes;
  /** Sockets answered with a refusal, until they close. */
  readonly #refusing = new Set<Duplex>();
  /** What attach() routes to this server (see src/server/upgrade-router.ts). */
  readonly #route: UpgradeRoute;

  /** Parameter sets in use by connections whose compressed frames can be shared, by key. */
  readonly #deflateParams = new Map<string, DeflateParams>();
  #userClose: ((conn: Conn<D>, info: CloseInfo) => void) | undefined;
  readonly #topics = new TopicRegistry<Conn<D>>();
  /** Attached topic buses (threads, Redis): told of topic interest and of every publish. */
  readonly #buses = new BusList();
  // Counters: what publishes did, and the totals of connections that have closed.
  #published = 0;
  #queued = 0;
  #closedDelivered = 0;
  #closedDropped = 0;
  #closedConflated = 0;
  #closedForSlowness = 0;

  constructor(options?: ServerOptionsInput) {
    // The set of open connections and the topics are kept here, before the user's callback runs.
    this.#handlers.handleClose = (conn, info) => {
      this.#conns.delete(conn);
      this.#topics.unsubscribeAll(conn);
      this.#closedDelivered += conn.delivered;
      this.#closedDropped += conn.dropped;
      this.#closedConflated += conn.conflated;
      if (info.error?.code === ErrorCode.OutboxFull) this.#closedForSlowness++;
      this.#userClose?.(conn, info);
    };
    this.options = parseOptions(ServerOptionsSchema, options, 'server options');
    this.#connOptions = connOptionsFrom(this.options);
    this.#deflate = resolveDeflate(this.options.deflate);
    this.#headLimits = { maxHeaderSize: this.options.maxHeaderSize };
    this.#pending = new PendingHandshakes(this.options.handshakeTimeout, this.#expire);
    this.#route = {
      path: this.options.path,
      take: (req, socket, head) => {
        socket.on('error', swallow);
        this.#handshake(req, socket, head, undefined);
      },
      refuseUnrouted: (req, socket) => {
        socket.on('error', swallow);
        this.#refuse(req, socket, new HandshakeError(ErrorCode.HandshakeFailed, `no WebSocket endpoint at ${pathOf(req.url)}`, { status: 404 }));
      },
    };
  }

  // ------------------------------------------------------------ callbacks (each returns this)

  handleOpen(fn: (conn: Conn<D>) => void | Promise<void>): this {
    this.#handlers.handleOpen = fn;
    return this;
  }
  handleData(fn: (conn: Conn<D>, data: Buffer, isBinary: boolean) => unknown): this {
    this.#handlers.handleData = fn;
    return this;
  }
  handlePing(fn: (conn: Conn<D>, payload: Buffer) => void): this {
    this.#handlers.handlePing = fn;
    return this;
  }
  handlePong(fn: (conn: Conn<D>, payload: Buffer) => void): this {
    this.#handlers.handlePong = fn;
    return this;
  }
  handleClose(fn: (conn: Conn<D>, info: CloseInfo) => void): this {
    this.#userClose = fn;
    return this;
  }
  handleError(fn: (conn: Conn<D>, error: WebSocketError) => void): this {
    this.#handlers.handleError = fn;
    return this;
  }
  handleFrame(fn: (conn: Conn<D>, frame: Frame) => void): this {
    this.#handlers.handleFrame = fn;
    return this;
  }
  /** Decide on each upgrade (authentication, per-connection data, subprotocol). May be async. */
  handleUpgrade(fn: (req: UpgradeRequest, info: UpgradeInfo) => UpgradeDecision<D> | Promise<UpgradeDecision<D>>): this {
    this.#handleUpgrade = fn;
    return this;
  }
  /**
   * Each refused or failed handshake, with the HTTP status it was answered with in `error.status`.
   * `req` is undefined when no request could be read (listen() only): garbage bytes (400), a
   * head over `maxHeaderSize` (431), a client too slow to send it (408). `error.message` starts
   * with the status text ("Bad Request: ...").
   * A connection `listen()` could not accept at all (EMFILE, ENFILE) comes here too, with `req`
   * undefined, no status, and the code `WS_ERR_SOCKET`; the server keeps listening.
   */
  handleUpgradeError(fn: (req: UpgradeRequest | undefined, error: WebSocketError) => void): this {
    this.#handleUpgradeError = fn;
    return this;
  }

  /**
   * listen() only: answer the requests that are not WebSocket handshakes (a load balancer's health
   * check, a status page). `fn` gets the request head and returns `{ status, headers?, body? }`
   * (or a Promise of it), or undefined for the default 426 Upgrade Required. Each response ends
   * its connection (`Connection: close`); a request body is not read. A handler that throws, that
   * returns something invalid, or that has not answered within `handshakeTimeout` gets the client
   * a 500 (503 for the timeout), and is reported to `handleUpgradeError`. Upgrades never reach it.
   */
  handleRequest(fn: RequestHandler): this {
    this.#handleRequest = fn;
    return this;
  }

  // ------------------------------------------------------------ connections

  /** Open connections (a live view; iterate it to broadcast). */
  get connections(): ReadonlySet<Conn<D>> {
    return this.#conns;
  }
  get clientCount(): number {
    return this.#conns.size;
  }

  /**
   * Send one message to every open connection. It is framed once and the same buffer goes to every
   * outbox (compressed once per parameter set for peers with no context takeover). It never waits:
   * a connection whose outbox is full gets its overflow policy (`wait` counts as `drop-newest`).
   */
  broadcast(data: string | Uint8Array, options?: boolean | PublishOptions): PublishResult {
    if (this.#buses.size === 0) return this.publishTo(this.#conns, data, options);
    return this.deliver(undefined, data, options, undefined);
  }

  /**
   * Send one message to the subscribers of `topic`, as `broadcast` does (framed once, never
   * waits). With `key`, under the policy `conflate`, it replaces the unsent message with the same
   * key in each subscriber's outbox, so a slow subscriber gets the latest value, not a backlog.
   */
  publish(topic: string, data: string | Uint8Array, options?: PublishOptions): PublishResult {
    if (this.#buses.size === 0) return this.publishTo(this.#topics.subscribers(topic), data, options);
    return this.deliver(topic, data, options, undefined);
  }

  /**
   * For topic buses (`src/scale/`): deliver a message published elsewhere to this server's own
   * subscribers of `topic` (every connection when `topic` is undefined), and forward it to every
   * attached bus except `from`, the one it came in on. The result counts local connections only.
   * With `relay` false it goes to no bus at all: for a bus whose message every other process has
   * already had by another way (a Redis adapter attached in each worker thread).
   */
  deliver(topic: string | undefined, data: string | Uint8Array, options: boolean | PublishOptions | undefined, from: TopicBus | undefined, relay = true): PublishResult {
    const result = this.publishTo(topic === undefined ? this.#conns : this.#topics.subscribers(topic), data, options);
    if (relay && this.#buses.size !== 0) {
      const [isBinary, key] = publishFlags(data, options);
      this.#buses.forward(topic, data, isBinary, key, from);
    }
    return result;
  }

  /**
   * For topic buses (`src/scale/`): from now on `bus` hears of every topic that gets its first
   * local subscriber or loses its last (at once for the topics live now), and of every publish and
   * broadcast made here. `detach()` stops that.
   */
  attachBus(bus: TopicBus): BusAttachment {
    return this.#buses.add(bus, this.#topics.topics(), (empty) => (this.#topics.onTopicChange = empty ? undefined : this.#onTopicChange));
  }

  readonly #onTopicChange = (topic: string, added: boolean): void => this.#buses.topicChanged(topic, added);

  /** Connections subscribed to `topic`. */
  subscriberCount(topic: string): number {
    return this.#topics.subscribers(topic).size;
  }

  /** Topics with at least one subscriber. */
  get topicCount(): number {
    return this.#topics.size;
  }

  /** The topics with at least one subscriber. */
  topics(): string[] {
    return [...this.#topics.topics()];
  }

  /** Counters since the server started (see `ServerStats`). */
  get stats(): ServerStats {
    let delivered = this.#closedDelivered;
    let dropped = this.#closedDropped;
    let conflated = this.#closedConflated;
    for (const c of this.#conns) {
      delivered += c.delivered;
      dropped += c.dropped;
      conflated += c.conflated;
    }
    return { published: this.#published, queued: this.#queued, delivered, dropped, conflated, closedForSlowness: this.#closedForSlowness };
  }

  /** `broadcast` to the connections you choose. `options`: `isBinary`, or `{ isBinary, key }`. */
  publishTo(targets: Iterable<Conn<D>>, data: string | Uint8Array, options?: boolean | PublishOptions): PublishResult {
    const payload = typeof data === 'string' ? Buffer.from(data) : Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    let isBinary: boolean | undefined;
    let conflateKey: string | undefined;
    if (typeof options === 'object' && options !== null) {
      isBinary = options.isBinary;
      conflateKey = options.key;
    } else {
      isBinary = options;
    }
    isBinary ??= typeof data !== 'string';
    const op = isBinary ? Opcode.Binary : Opcode.Text;
    // Bytes sent as text are checked once here, as conn.write checks them: invalid UTF-8 would make
    // every subscriber fail the connection with 1007.
    if (!isBinary && typeof data !== 'string' && !isValidUtf8(payload)) {
      throw new WebSocketError(ErrorCode.InvalidUtf8, 'text message is not valid UTF-8', { closeCode: CloseCode.InvalidPayloadData });
    }
    const result: PublishResult = { queued: 0, conflated: 0, dropped: 0, closed: 0 };
    let plain: Buffer | undefined;
    let compressed: Map<string, Buffer | null> | undefined;
    // A large shared-mode compression is found by the object its subscribers queue: a view made
    // for this publish, so that the user's Buffer, refilled and written again later, is never
    // mistaken for this message (the bytes are the same memory; only the identity is new).
    let shareable: Buffer | undefined;
    // Read once per publish, not once per subscriber (Conn's broadcast internals, see conn.ts).
    const { deflateKeyFor, tryWriteFrame, tryPublish } = connInternals;
    if (this.#deflate === undefined) {
      // No connection of this server compresses: one frame for all, queued in one loop.
      if (!(targets instanceof Set && targets.size === 0)) connInternals.fanOutFrame(targets, arenaFrame(op, payload, false), payload.length, conflateKey, result);
    } else {
      for (const conn of targets) {
        const key = deflateKeyFor(conn, payload.length);
        let r: PublishWriteResult;
        if (key === undefined) {
          plain ??= arenaFrame(op, payload, false);
          r = tryWriteFrame(conn, plain, payload.length, conflateKey);
        } else if (key === null) {
          r = tryPublish(conn, payload, isBinary, conflateKey);
        } else {
          compressed ??= new Map();
          let frame = compressed.get(key);
          if (frame === undefined) {
            // Issue 15: a large message is compressed once on the thread pool (null: each subscriber
            // queues it plain, in its order, and its codec takes the shared result when it gets there).
            const params = this.#deflateParams.get(key)!;
            shareable ??= payload.subarray(0);
            frame = shareLargeCompression(shareable, params, this.#deflate!) ? null : arenaFrame(op, compressShared(payload, params, this.#deflate!), true);
            compressed.set(key, frame);
          }
          r = frame === null ? tryPublish(conn, shareable!, isBinary, conflateKey) : tryWriteFrame(conn, frame, payload.length, conflateKey);
        }
        result[r]++;
      }
    }
    this.#published++;
    this.#queued += result.queued + result.conflated;
    return result;
  }

  // ------------------------------------------------------------ serving

  /**
   * Listen on a port of our own: a plain TCP server reading the request heads itself (no
   * node:http). A request that is not a WebSocket handshake gets 426 Upgrade Required.
   */
  async listen(options: ListenOptions = {}): Promise<AddressInfo> {
    if (this.#net !== undefined) throw new WebSocketError(ErrorCode.InvalidArgument, 'this server is already listening');
    const net = createNetServer(this.#onConnection);
    this.#net = net;
    try {
      await new Promise<void>((resolve, reject) => {
        net.once('error', reject);
        const opts: { port: number; host?: string; reusePort?: boolean } = { port: options.port ?? 0 };
        if (options.host !== undefined) opts.host = options.host;
        if (options.reusePort === true) {
          const missing = reusePortMissing();
          if (missing !== undefined) throw new WebSocketError(ErrorCode.Unsupported, `listen({ reusePort: true }) needs ${missing}`);
          opts.reusePort = true;
        }
        net.listen(opts, () => {
          net.off('error', reject);
          // From now on an 'error' is a failed accept (EMFILE, ENFILE…): the server keeps
          // listening; report it rather than let an unhandled 'error' end the process.
          net.on('error', this.#onAcceptError);
          resolve();
        });
      });
    } catch (err) {
      this.#net = undefined;
      throw err;
    }
    return net.address() as AddressInfo;
  }

  readonly #onAcceptError = (err: Error): void => {
    const error = new ConnectionError(ErrorCode.SocketError, `accepting a connection failed: ${err.message}`, { cause: err });
    const h = this.#handleUpgradeError;
    if (h === undefined) {
      warnUnhandled(error, 'handleUpgradeError');
      return;
    }
    try {
      h(undefined, error);
    } catch {
      // nothing to tell
    }
  };

  /** The address we listen on (after `listen`). */
  address(): AddressInfo | undefined {
    const a = this.#net?.address();
    return a !== null && typeof a === 'object' ? a : undefined;
  }

  /**
   * Serve WebSocket upgrades of an existing node:http or node:https server: those for `path`
   * (every path without that option). Several Servers with different paths, and other libraries'
   * `upgrade` listeners, can share one http server: a Server never touches an upgrade for another
   * path. One that nobody takes gets a 404, unless the http server has another `upgrade` listener
   * (then it is that listener's to answer). Throws when a Server with the same path (or another
   * without a path) is attached already.
   * A node:http2 server too: RFC 8441 extended CONNECTs on its HTTP/2 sessions, routed by path
   * the same way (it turns on `enableConnectProtocol` for the sessions opened from then on: attach
   * before it listens), and HTTP/1.1 upgrades when it was made with `allowHTTP1: true`.
   */
  attach(server: HttpServer | HttpsServer | AnyHttp2Server): this {
    if (this.#closing !== undefined) throw new WebSocketError(ErrorCode.InvalidArgument, 'this server is closed');
    if (this.#attached.includes(server)) return this;
    addRoute(server, this.#route);
    if (isHttp2Server(server)) addHttp2Route(server, this.#route);
    this.#attached.push(server);
    return this;
  }

  /**
   * Handle one upgrade request yourself (from your own `upgrade` listener). Resolves with the new
   * connection, or undefined when the request was refused (it has been answered and closed).
   * Without `handleUpgrade`, or when it returns a decision rather than a Promise, the connection
   * is open (and `handleOpen` has run) when this returns.
   */
  upgrade(req: UpgradeRequest, socket: Duplex, head: Buffer): Promise<Conn<D> | undefined> {
    socket.on('error', swallow);
    const r = this.#handshake(req, socket, head, undefined);
    return r instanceof Promise ? r : Promise.resolve(r);
  }

  /** listen(): a new TCP connection. Its request head is read by `#onHeadData`. */
  readonly #onConnection = (socket: Socket): void => {
    if (this.#closing !== undefined) {
      socket.on('error', swallow);
      socket.destroy();
      return;
    }
    const p = new PendingHandshake(socket, new RequestHeadReader(this.#headLimits));
    p.onHead = this.#onHeadData;
    // The Conn's own 'data' and 'error' listeners from the start: data goes to the pending
    // handshake (its head reader) until the Conn exists, errors are dropped until then.
    listenEarly(socket, p);
    this.#pending.add(p);
  };

  /**
   * listen(): bytes of a request head. Once it is whole, the socket goes to the handshake. One
   * function per server (not a closure per connection): the socket's pending handshake passes itself.
   */
  readonly #onHeadData = (p: PendingHandshake, chunk: Buffer): void => {
    const r = p.reader!.push(chunk);
    if (r === undefined) return;
    const socket = p.socket as Socket;
    leaveEarly(socket);
    p.reader = undefined;
    p.onHead = undefined;
    if (!r.ok) {
      this.#pending.delete(p);
      this.#refuse(undefined, socket, r.error);
      return;
    }
    const h = r.request;
    const req: UpgradeRequest = { method: h.method, url: h.url, httpVersion: h.httpVersion, headers: h.headers, rawHeaders: h.rawHeaders, socket };
    // As node:http does: a request is an upgrade when it has an Upgrade header and the Connection
    // token "upgrade" (RFC 9110 §7.8); anything else is an ordinary request.
    if (h.headers['upgrade'] === undefined || !hasToken(h.headers['connection'], 'upgrade')) {
      this.#pending.delete(p);
      this.#answerRequest(req, socket);
      return;
    }
    this.#handshake(req, socket, r.head, p);
  };

  /** listen(): a request that is not an upgrade. */
  #answerRequest(req: UpgradeRequest, socket: Socket): void {
    // RFC 6455 §4.2.1: a handshake without the Upgrade or Connection token is a malformed
    // handshake (400 and its reason), not a plain GET.
    if (req.headers['sec-websocket-key'] !== undefined || req.headers['upgrade'] !== undefined) {
      let error = new HandshakeError(ErrorCode.HandshakeFailed, 'Invalid Connection header: expected the token "Upgrade"', { status: 400 });
      try {
        validateUpgradeRequest(req);
      } catch (err) {
        error = toHandshakeError(err);
      }
      this.#refuse(req, socket, error);
      return;
    }
    const handle = this.#handleRequest;
    let r: HttpResponse | undefined | PromiseLike<HttpResponse | undefined>;
    try {
      r = handle?.(req);
    } catch (err) {
      this.#failRequest(req, socket, err);
      return;
    }
    if (!isThenable(r)) {
      this.#answerPlain(req, socket, r);
      return;
    }
    // The deadline of a handshake covers the wait (close() ends it too).
    const p = new PendingHandshake(socket);
    p.req = req;
    p.plain = true;
    this.#pending.add(p);
    Promise.resolve(r).then(
      (res) => {
        if (p.over) return;
        this.#pending.delete(p);
        if (!socket.destroyed) this.#answerPlain(req, socket, res);
      },
      (err: unknown) => {
        if (p.over) return;
        this.#pending.delete(p);
        this.#failRequest(req, socket, err);
      },
    );
  }

  /** listen(): send handleRequest's response, or the default 426 for undefined. */
  #answerPlain(req: UpgradeRequest, socket: Socket, res: HttpResponse | undefined): void {
    const isHead = req.method === 'HEAD';
    // Not reported to handleUpgradeError: nobody tried to open a WebSocket.
    if (res === undefined) {
      this.#endRefused(socket, isHead ? RESPONSE_426.subarray(0, RESPONSE_426_HEAD_LENGTH) : RESPONSE_426);
      return;
    }
    let bytes: Buffer;
    try {
      bytes = buildHttpResponse(res, isHead);
    } catch (err) {
      this.#failRequest(req, socket, err);
      return;
    }
    this.#endRefused(socket, bytes);
  }

  /** listen(): handleRequest threw, rejected or returned something invalid: 500, reported with the cause. */
  #failRequest(req: UpgradeRequest, socket: Socket, err: unknown): void {
    this.#endRefused(socket, buildRefusalResponse(500, 'Internal Server Error'));
    const error = new HandshakeError(ErrorCode.HandlerFailed, `handleRequest failed: ${err instanceof Error ? err.message : String(err)}`, { status: 500, cause: err });
    this.#reportUpgradeError(req, error);
  }

  /**
   * The handshake once the request is read: RFC 6455 checks, then `handleUpgrade`. Synchronous
   * (no Promise, timer or Map entry) unless handleUpgrade returns a Promise; then the deadline of
   * `p` covers the wait (from attach()/upgrade(), where there is no `p`, one starts now).
   */
  #handshake(req: UpgradeRequest, socket: Duplex, head: Buffer, p: PendingHandshake | undefined): Conn<D> | undefined | Promise<Conn<D> | undefined> {
    const opts = this.options;
    let v: ValidatedUpgrade;
    let decision: UpgradeDecision<D> | PromiseLike<UpgradeDecision<D>> | undefined;
    try {
      if (this.#closing !== undefined) throw new HandshakeError(ErrorCode.HandshakeFailed, 'server is shutting down', { status: 503 });
      if (opts.path !== undefined && pathOf(req.url) !== opts.path) {
        throw new HandshakeError(ErrorCode.HandshakeFailed, `no WebSocket endpoint at ${pathOf(req.url)}`, { status: 404 });
      }
      v = transportOf(socket) === 'http2' ? validateConnectRequest(req) : validateUpgradeRequest(req);
      if (opts.origins !== undefined && (v.origin === undefined || !opts.origins.includes(v.origin))) {
        throw new HandshakeError(ErrorCode.Forbidden, `origin ${v.origin ?? '(none)'} is not allowed`, { status: 403 });
      }
      if (this.#handleUpgrade !== undefined) decision = this.#handleUpgrade(req, { protocols: v.protocols, origin: v.origin, extensions: v.extensions });
    } catch (err) {
      if (p !== undefined) this.#pending.delete(p);
      this.#refuse(req, socket, toHandshakeError(err));
      return undefined;
    }
    if (isThenable(decision)) {
      if (p === undefined) {
        p = new PendingHandshake(socket);
        this.#pending.add(p);
      } else {
        // listen(): our 'data' listener is gone and the socket still flows; hold what the client
        // sends meanwhile (it may send frames before our 101) for the Conn.
        socket.pause();
        p.paused = true;
      }
      p.req = req;
      const pending = p;
      return Promise.resolve(decision).then(
        (d) => {
          if (pending.over || socket.destroyed) {
            // Timed out (already refused), or the peer left, or close() ended it.
            this.#pending.delete(pending);
            return undefined;
          }
          this.#pending.delete(pending);
          return this.#accept(req, socket, head, v, d, true, pending.paused);
        },
        (err: unknown) => {
          if (pending.over) return undefined;
          this.#pending.delete(pending);
          this.#refuse(req, socket, toHandshakeError(err));
          return undefined;
        },
      );
    }
    if (p !== undefined) this.#pending.delete(p);
    return this.#accept(req, socket, head, v, decision, this.#handleUpgrade !== undefined, false);
  }

  /** Check handleUpgrade's decision, answer 101 and open the connection (or refuse). */
  #accept(
    req: UpgradeRequest,
    socket: Duplex,
    head: Buffer,
    v: ValidatedUpgrade,
    decision: UpgradeDecision<D> | undefined,
    decided: boolean,
    resume: boolean,
  ): Conn<D> | undefined {
    const opts = this.options;
    const early = isEarly(socket);
    let conn: Conn<D>;
    try {
      let data = undefined as D;
      let protocol = opts.protocols?.find((p) => v.protocols.includes(p));
      let extraHeaders: Record<string, string> | undefined;
      if (decided) {
        if (decision === undefined || decision === null || typeof decision !== 'object') {
          throw new HandshakeError(ErrorCode.HandshakeFailed, 'handleUpgrade must return { data } or { status }', { status: 500 });
        }
        if ('status' in decision) {
          throw new HandshakeError(ErrorCode.Forbidden, decision.reason ?? STATUS_TEXT[decision.status] ?? 'refused', {
            status: decision.status,
            headers: decision.headers,
          });
        }
        data = decision.data;
        if (decision.protocol !== undefined) {
          // RFC 6455 §4.2.2 item 5: the selected subprotocol must be one the client offered.
          if (!v.protocols.includes(decision.protocol)) {
            throw new HandshakeError(ErrorCode.HandshakeFailed, `handleUpgrade chose subprotocol ${decision.protocol}, which the client did not offer`, { status: 500 });
          }
          protocol = decision.protocol;
        }
        extraHeaders = decision.headers;
      }
      let deflate: DeflateSetup | undefined;
      if (this.#deflate !== undefined) {
        deflate = negotiateDeflate(v.extensions, this.#deflate);
        if (deflate?.conn.paramsKey) this.#deflateParams.set(deflate.conn.paramsKey, deflate.params);
      }
      const extensions = deflate !== undefined ? formatExtensions([deflate.response]) : undefined;
      if (v.key === '') {
        // RFC 8441 §5: over HTTP/2, 200 and no Sec-WebSocket-Accept (an HTTP/1.1 key is never empty).
        respondAccepted(socket, { protocol, extensions, headers: extraHeaders });
      } else {
        const plain = protocol === undefined && extensions === undefined && extraHeaders === undefined ? buildPlainAcceptResponse(v.key) : undefined;
        socket.write(plain ?? buildAcceptResponse({ key: v.key, protocol, extensions, headers: extraHeaders }));
      }
      // The Conn's own 'error' listener replaces ours: removed first, so the socket never holds
      // two (which would make EventEmitter allocate a listener array per connection). A listen()
      // socket has had the Conn's listeners from the start.
      if (!early) socket.off('error', swallow);
      conn = new Conn<D>({
        listening: early,
        socket,
        role: 'server',
        options: this.#connOptions,
        handlers: this.#handlers,
        data,
        protocol,
        extensions,
        head,
        deflate: deflate?.conn,
        topics: this.#topics,
        // Over HTTP/2 the stream has no address of its own: the session's socket has it.
        remoteAddress: v.key === '' ? req.socket?.remoteAddress : undefined,
      });
    } catch (err) {
      if (!early && socket.listenerCount('error') === 0) socket.on('error', swallow);
      this.#refuse(req, socket, toHandshakeError(err));
      return undefined;
    }
    this.#conns.add(conn);
    // A paused socket with no head bytes: the Conn's 'data' listener does not resume it (with
    // head bytes, the Conn pauses and resumes it itself once they are parsed).
    if (resume && head.length === 0) socket.resume();
    const open = this.#handlers.handleOpen;
    if (open !== undefined) {
      try {
        const r = open(conn);
        if (r instanceof Promise) r.catch((err: unknown) => failOpen(conn, this.#handlers, err));
      } catch (err) {
        failOpen(conn, this.#handlers, err);
      }
    }
    return conn;
  }

  /** A handshake past its deadline (see PendingHandshakes). */
  readonly #expire = (p: PendingHandshake): void => {
    p.over = true;
    const socket = p.socket;
    if (p.plain) {
      // handleRequest did not answer in time.
      this.#refuse(p.req, socket, new HandshakeError(ErrorCode.HandshakeTimeout, `handleRequest did not answer within ${this.options.handshakeTimeout} ms`, { status: 503 }));
      return;
    }
    if (p.req !== undefined) {
      // handleUpgrade did not decide in time.
      this.#refuse(p.req, socket, new HandshakeError(ErrorCode.HandshakeTimeout, `handshake not completed within ${this.options.handshakeTimeout} ms`, { status: 503 }));
      return;
    }
    // listen(): the request head did not arrive in time.
    if (p.onHead !== undefined) leaveEarly(socket);
    p.onHead = undefined;
    p.reader = undefined;
    // A peer that left without a request: nothing to answer or report.
    if (socket.destroyed) return;
    const error = new HandshakeError(ErrorCode.HandshakeFailed, `Request Timeout: no complete request head within ${this.options.handshakeTimeout} ms`, {
      status: 408,
    });
    this.#refuse(undefined, socket, error);
  };

  /** Answer a refusal, close the socket, and report it to handleUpgradeError. */
  #refuse(req: UpgradeRequest | undefined, socket: Duplex, error: HandshakeError): void {
    if (transportOf(socket) === 'http2') {
      refuseStream(socket, error.status ?? 400, error.message, error.headers);
    } else if (!socket.destroyed && socket.writable) {
      let response: string;
      try {
        response = buildRefusalResponse(error.status ?? 400, error.message, error.headers);
      } catch {
        // Headers from handleUpgrade that would split the response (CR/LF): refuse without them.
        response = buildRefusalResponse(500, 'invalid response headers');
      }
      this.#endRefused(socket, response);
    } else {
      socket.destroy();
    }
    this.#reportUpgradeError(req, error);
  }

  #reportUpgradeError(req: UpgradeRequest | undefined, error: HandshakeError): void {
    if (handshakeRefusedChannel.hasSubscribers) handshakeRefusedChannel.publish({ role: 'server', req, error });
    const h = this.#handleUpgradeError;
    // A refusal for what the peer sent (4xx) is the server working; a 5xx is ours to hear about.
    if (h === undefined && (error.status ?? 500) >= 500) warnUnhandled(error, 'handleUpgradeError');
    if (h !== undefined) {
      try {
        h(req, error);
      } catch {
        // nothing to tell
      }
    }
  }

  /**
   * Send the last bytes and end the socket; destroy it after 1 s if the peer has not closed its
   * side by then (a peer that never reads must not hold it), or when close() is done.
   */
  #endRefused(socket: Duplex, response: string | Buffer): void {
    // Read and drop what the client still sends (a request body, frames): unread bytes at the
    // close would make TCP answer with a reset, which can destroy the response at the client.
    socket.resume();
    socket.end(response);
    const timer = setTimeout(() => socket.destroy(), 1000).unref();
    this.#refusing.add(socket);
    socket.once('close', () => {
      clearTimeout(timer);
      this.#refusing.delete(socket);
    });
  }

  /**
   * Stop accepting, send 1001 Going Away to every connection, wait up to `shutdownTimeout` ms for
   * their closing handshakes, then end what is left. Idempotent: every call returns the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    for (const s of this.#attached) {
      removeRoute(s, this.#route);
      if (isHttp2Server(s)) removeHttp2Route(s, this.#route);
    }
    const net = this.#net;
    const netClosed = net === undefined ? Promise.resolve() : new Promise<void>((resolve) => net.close(() => resolve()));
    // Handshakes in progress end here, unreported (not as timed out later), and their interval
    // stops: nothing holds the event loop open after close() has resolved.
    this.#pending.clear((p) => {
      p.over = true;
      p.socket.destroy();
    });
    const conns = [...this.#conns];
    for (const c of conns) {
      if (c.state === 'open') void c.close(1001, 'server shutting down');
    }
    const all = Promise.all(conns.map((c) => c.closed));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.options.shutdownTimeout))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const c of conns) c.terminate();
      await all;
    }
    // Refusals still being sent: the listening socket closes only when every connection has.
    for (const s of this.#refusing) s.destroy();
    await netClosed;
  }
}

function swallow(): void {}

function isThenable<T>(x: T | PromiseLike<T>): x is PromiseLike<T> {
  return typeof x === 'object' && x !== null && typeof (x as { then?: unknown }).then === 'function';
}

// RFC 9110 §15.5.22: a 426 carries an Upgrade header naming the protocol to switch to (with the
// "Upgrade" connection option, §7.8); RFC 6455 §4.4, the version we speak.
const BODY_426 = 'This is a WebSocket endpoint: send an Upgrade request.\n';
const HEAD_426 =
  'HTTP/1.1 426 Upgrade Required\r\n' +
  'Connection: Upgrade, close\r\n' +
  'Upgrade: websocket\r\n' +
  'Sec-WebSocket-Version: 13\r\n' +
  'Content-Type: text/plain\r\n' +
  `Content-Length: ${Buffer.byteLength(BODY_426)}\r\n\r\n`;
const RESPONSE_426 = Buffer.from(HEAD_426 + BODY_426, 'latin1');
/** A HEAD request gets the same head and no body (RFC 9110 §9.3.2). */
const RESPONSE_426_HEAD_LENGTH = HEAD_426.length;

function toHandshakeError(err: unknown): HandshakeError {
  if (err instanceof HandshakeError) return err;
  // A WebSocketError without a status comes from our side (e.g. bad headers from handleUpgrade): 500.
  if (err instanceof WebSocketError) return new HandshakeError(err.code, err.message, { status: err.status ?? 500, cause: err });
  return new HandshakeError(ErrorCode.HandshakeFailed, `handshake failed: ${err instanceof Error ? err.message : String(err)}`, {
    status: 500,
    cause: err,
  });
}
