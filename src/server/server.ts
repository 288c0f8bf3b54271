import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Conn, type CloseInfo, type ConnHandlers, type ConnOptions, type PublishWriteResult } from '../conn/conn.js';
import { CloseCode, Opcode } from '../protocol/constants.js';
import { isValidUtf8 } from '../protocol/utf8.js';
import { encodeFrame } from '../protocol/frame-encoder.js';
import { compressShared, type DeflateParams } from '../protocol/permessage-deflate.js';
import { ErrorCode, HandshakeError, WebSocketError } from '../protocol/errors.js';
import { formatExtensions, type ExtensionOffer } from '../protocol/extensions.js';
import { buildAcceptResponse, buildRefusalResponse, validateUpgradeRequest } from '../protocol/handshake.js';
import type { Frame } from '../protocol/frame-parser.js';
import { negotiateDeflate, type DeflateSetup } from './deflate.js';
import { TopicRegistry } from './topics.js';
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
  #handleUpgrade: ((req: IncomingMessage, info: UpgradeInfo) => UpgradeDecision<D> | Promise<UpgradeDecision<D>>) | undefined;
  #handleUpgradeError: ((req: IncomingMessage | undefined, error: WebSocketError) => void) | undefined;
  #http: HttpServer | undefined;
  #attached: (HttpServer | HttpsServer)[] = [];
  #closing: Promise<void> | undefined;
  /** Handshakes in progress, with their handshakeTimeout timers. */
  #pendingHandshakes = new Map<Duplex, NodeJS.Timeout>();
  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    void this.upgrade(req, socket, head);
  };

  /** Parameter sets in use by connections whose compressed frames can be shared, by key. */
  readonly #deflateParams = new Map<string, DeflateParams>();
  #userClose: ((conn: Conn<D>, info: CloseInfo) => void) | undefined;
  readonly #topics = new TopicRegistry<Conn<D>>();
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
  handleUpgrade(fn: (req: IncomingMessage, info: UpgradeInfo) => UpgradeDecision<D> | Promise<UpgradeDecision<D>>): this {
    this.#handleUpgrade = fn;
    return this;
  }
  /**
   * Each refused or failed handshake, with the HTTP status it was answered with in `error.status`.
   * `req` is undefined when no request could be read (garbage bytes, headers over
   * `maxHeaderSize`, a client too slow to send them): Node's HTTP parser refused it (listen() only).
   */
  handleUpgradeError(fn: (req: IncomingMessage | undefined, error: WebSocketError) => void): this {
    this.#handleUpgradeError = fn;
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
    return this.publishTo(this.#conns, data, options);
  }

  /**
   * Send one message to the subscribers of `topic`, as `broadcast` does (framed once, never
   * waits). With `key`, under the policy `conflate`, it replaces the unsent message with the same
   * key in each subscriber's outbox, so a slow subscriber gets the latest value, not a backlog.
   */
  publish(topic: string, data: string | Uint8Array, options?: PublishOptions): PublishResult {
    return this.publishTo(this.#topics.subscribers(topic), data, options);
  }

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
    let compressed: Map<string, Buffer> | undefined;
    for (const conn of targets) {
      const key = conn.deflateKeyFor(payload.length);
      let r: PublishWriteResult;
      if (key === undefined) {
        plain ??= encodeFrame(op, payload);
        r = conn.tryWriteFrame(plain, payload.length, conflateKey);
      } else if (key === null) {
        r = conn.tryPublish(payload, isBinary, conflateKey);
      } else {
        compressed ??= new Map();
        let frame = compressed.get(key);
        if (frame === undefined) {
          frame = encodeFrame(op, compressShared(payload, this.#deflateParams.get(key)!, this.#deflate!), { rsv1: true });
          compressed.set(key, frame);
        }
        r = conn.tryWriteFrame(frame, payload.length, conflateKey);
      }
      if (r === 'queued') result.queued++;
      else if (r === 'conflated') result.conflated++;
      else if (r === 'closed') result.closed++;
      else result.dropped++;
    }
    this.#published++;
    this.#queued += result.queued + result.conflated;
    return result;
  }

  // ------------------------------------------------------------ serving

  /** Listen on a port of our own. Plain HTTP requests get 426 Upgrade Required. */
  async listen(options: ListenOptions = {}): Promise<AddressInfo> {
    if (this.#http !== undefined) throw new WebSocketError(ErrorCode.InvalidArgument, 'this server is already listening');
    const timeout = this.options.handshakeTimeout;
    const http = createServer({
      maxHeaderSize: this.options.maxHeaderSize,
      headersTimeout: timeout,
      requestTimeout: timeout,
      // How often Node checks those timeouts (default 30 s, far coarser than a handshake timeout).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(timeout / 2))),
    });
    http.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
      // What Node's HTTP parser refuses before there is a request: answer as Node would, and report it.
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const reason = status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request';
      if (socket.writable && !(socket as Duplex & { _httpMessage?: unknown })._httpMessage) {
        socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      }
      setTimeout(() => socket.destroy(), 1000).unref();
      try {
        this.#handleUpgradeError?.(undefined, new HandshakeError(ErrorCode.HandshakeFailed, `${reason}: ${err.message}`, { status, cause: err }));
      } catch {
        // nothing to tell
      }
    });
    http.on('request', (req, res) => {
      // RFC 6455 §4.2.1: a handshake without the Upgrade or Connection token is not routed to
      // 'upgrade' by Node, but it is a malformed handshake (400 and its reason), not a plain GET.
      if (req.headers['sec-websocket-key'] !== undefined || req.headers['upgrade'] !== undefined) {
        let error = new HandshakeError(ErrorCode.HandshakeFailed, 'Invalid Connection header: expected the token "Upgrade"', { status: 400 });
        try {
          validateUpgradeRequest(req);
        } catch (err) {
          error = toHandshakeError(err);
        }
        res.writeHead(error.status ?? 400, { ...error.headers, 'Content-Type': 'text/plain', Connection: 'close', 'Content-Length': Buffer.byteLength(error.message) });
        res.end(error.message);
        try {
          this.#handleUpgradeError?.(req, error);
        } catch {
          // nothing to tell
        }
        return;
      }
      const body = 'This is a WebSocket endpoint: send an Upgrade request.\n';
      res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
    this.#http = http;
    this.attach(http);
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      const opts: { port: number; host?: string } = { port: options.port ?? 0 };
      if (options.host !== undefined) opts.host = options.host;
      http.listen(opts, () => {
        http.off('error', reject);
        resolve();
      });
    });
    return http.address() as AddressInfo;
  }

  /** The address we listen on (after `listen`). */
  address(): AddressInfo | undefined {
    const a = this.#http?.address();
    return a !== null && typeof a === 'object' ? a : undefined;
  }

  /** Serve WebSocket upgrades of an existing node:http or node:https server. */
  attach(server: HttpServer | HttpsServer): this {
    server.on('upgrade', this.#onUpgrade);
    this.#attached.push(server);
    return this;
  }

  /**
   * Handle one upgrade request yourself (from your own `upgrade` listener). Resolves with the new
   * connection, or undefined when the request was refused (it has been answered and closed).
   */
  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<Conn<D> | undefined> {
    const opts = this.options;
    socket.on('error', swallow);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.#refuse(req, socket, new HandshakeError(ErrorCode.HandshakeTimeout, `handshake not completed within ${opts.handshakeTimeout} ms`, { status: 503 }));
    }, opts.handshakeTimeout);
    this.#pendingHandshakes.set(socket, timer);
    try {
      if (this.#closing !== undefined) throw new HandshakeError(ErrorCode.HandshakeFailed, 'server is shutting down', { status: 503 });
      if (opts.path !== undefined && pathOf(req.url) !== opts.path) {
        throw new HandshakeError(ErrorCode.HandshakeFailed, `no WebSocket endpoint at ${pathOf(req.url)}`, { status: 404 });
      }
      const v = validateUpgradeRequest(req);
      if (opts.origins !== undefined && (v.origin === undefined || !opts.origins.includes(v.origin))) {
        throw new HandshakeError(ErrorCode.Forbidden, `origin ${v.origin ?? '(none)'} is not allowed`, { status: 403 });
      }
      let data = undefined as D;
      let protocol = opts.protocols?.find((p) => v.protocols.includes(p));
      let extraHeaders: Record<string, string> | undefined;
      if (this.#handleUpgrade !== undefined) {
        const decision = await this.#handleUpgrade(req, { protocols: v.protocols, origin: v.origin, extensions: v.extensions });
        if (timedOut || socket.destroyed) {
          // The peer left (or close() ended the handshake): nothing left to time out.
          clearTimeout(timer);
          this.#pendingHandshakes.delete(socket);
          return undefined;
        }
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
      clearTimeout(timer);
      this.#pendingHandshakes.delete(socket);
      socket.write(buildAcceptResponse({ key: v.key, protocol, extensions, headers: extraHeaders }));
      const conn = new Conn<D>({
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
      });
      socket.off('error', swallow);
      this.#conns.add(conn);
      const open = this.#handlers.handleOpen;
      if (open !== undefined) {
        try {
          const r = open(conn);
          if (r instanceof Promise) r.catch((err: unknown) => this.#failOpen(conn, err));
        } catch (err) {
          this.#failOpen(conn, err);
        }
      }
      return conn;
    } catch (err) {
      clearTimeout(timer);
      if (!timedOut) this.#refuse(req, socket, toHandshakeError(err));
      return undefined;
    }
  }

  /** handleOpen threw: report it, and close with 1011 Internal Error. */
  #failOpen(conn: Conn<D>, err: unknown): void {
    const error = new WebSocketError(ErrorCode.HandlerFailed, `handleOpen threw: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      closeCode: 1011,
    });
    try {
      this.#handlers.handleError?.(conn, error);
    } finally {
      if (conn.state === 'open') void conn.close(1011, 'internal error');
    }
  }

  #refuse(req: IncomingMessage, socket: Duplex, error: HandshakeError): void {
    this.#pendingHandshakes.delete(socket);
    if (!socket.destroyed && socket.writable) {
      let response: string;
      try {
        response = buildRefusalResponse(error.status ?? 400, error.message, error.headers);
      } catch {
        // Headers from handleUpgrade that would split the response (CR/LF): refuse without them.
        response = buildRefusalResponse(500, 'invalid response headers');
      }
      socket.end(response);
      // Do not wait forever for a peer that never reads the refusal.
      setTimeout(() => socket.destroy(), 1000).unref();
    } else {
      socket.destroy();
    }
    const h = this.#handleUpgradeError;
    if (h !== undefined) {
      try {
        h(req, error);
      } catch {
        // nothing to tell
      }
    }
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
    for (const s of this.#attached) s.off('upgrade', this.#onUpgrade);
    const http = this.#http;
    const httpClosed = http === undefined ? Promise.resolve() : new Promise<void>((resolve) => http.close(() => resolve()));
    http?.closeIdleConnections();
    // A handshake cut short by close() must not be reported as timed out later, nor keep its
    // timer holding the event loop open after close() has resolved.
    for (const [s, timer] of this.#pendingHandshakes) {
      clearTimeout(timer);
      s.destroy();
    }
    this.#pendingHandshakes.clear();
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
    http?.closeAllConnections();
    await httpClosed;
  }
}

function swallow(): void {}


function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function toHandshakeError(err: unknown): HandshakeError {
  if (err instanceof HandshakeError) return err;
  // A WebSocketError without a status comes from our side (e.g. bad headers from handleUpgrade): 500.
  if (err instanceof WebSocketError) return new HandshakeError(err.code, err.message, { status: err.status ?? 500, cause: err });
  return new HandshakeError(ErrorCode.HandshakeFailed, `handshake failed: ${err instanceof Error ? err.message : String(err)}`, {
    status: 500,
    cause: err,
  });
}
