/**
 * One connection seen through a protocol: `send` and `request` take only the kinds this end may
 * send, with their payload types; the raw `Conn` stays reachable as `raw`.
 */
import type { Conn, CloseInfo, TryWriteResult, WriteResult } from '../conn/conn.js';
import { ConnectionError, ErrorCode } from '../protocol/errors.js';
import { TypedMessageError } from './errors.js';
import type { CompiledKind, Payload, ReplyOf, RequestKinds, Side } from './protocol.js';
import { PendingRequests } from './requests.js';
import { encodeMessage } from './wire.js';

/** What a `TypedConn` needs from the endpoint that made it. */
export interface ConnContext {
  /** The outgoing kind `kind`, with the incoming kind that answers it when it is a request. */
  outKind(kind: string): { compiled: CompiledKind; reply: CompiledKind | undefined; sent: number };
  readonly validateOutgoing: boolean;
  readonly maxPendingRequests: number;
  readonly requestTimeout: number;
  countTimeout(): void;
}

export interface RequestOptions {
  /** Milliseconds to wait for the reply (default: the endpoint's `requestTimeout`). */
  timeout?: number;
  signal?: AbortSignal;
}

export class TypedConn<Sd extends Side, D = undefined> {
  /** The underlying connection (binary writes, counters, everything else). */
  readonly raw: Conn<D>;
  readonly #ctx: ConnContext;
  #requests: PendingRequests | undefined;

  constructor(raw: Conn<D>, ctx: ConnContext) {
    this.raw = raw;
    this.#ctx = ctx;
  }

  /** @internal The endpoint this view belongs to (which endpoint's view a connection's slot holds). */
  get ctx(): ConnContext {
    return this.#ctx;
  }

  get id(): number {
    return this.raw.id;
  }
  get data(): D {
    return this.raw.data;
  }
  set data(v: D) {
    this.raw.data = v;
  }
  get state(): Conn<D>['state'] {
    return this.raw.state;
  }
  get closed(): Promise<CloseInfo> {
    return this.raw.closed;
  }
  subscribe(topic: string): boolean {
    return this.raw.subscribe(topic);
  }
  unsubscribe(topic: string): boolean {
    return this.raw.unsubscribe(topic);
  }
  close(code?: number, reason?: string): Promise<CloseInfo> {
    return this.raw.close(code, reason);
  }

  /** Requests sent and not answered yet. */
  get pendingRequests(): number {
    return this.#requests?.size ?? 0;
  }

  /** Serialize `payload` as a message of `kind` and write it (`conn.write`'s Promise and rules). */
  send<K extends keyof Sd['out'] & string>(kind: K, payload: Payload<Sd['out'], K>): Promise<WriteResult> {
    return this.raw.write(this.#encode(kind, payload));
  }

  /** The synchronous form of `send` (`conn.tryWrite`'s answers). */
  trySend<K extends keyof Sd['out'] & string>(kind: K, payload: Payload<Sd['out'], K>): TryWriteResult {
    return this.raw.tryWrite(this.#encode(kind, payload));
  }

  /** Write raw bytes as a binary message (the peer's `handleBinary` receives them). */
  sendBinary(data: Uint8Array): Promise<WriteResult> {
    return this.raw.write(data, true);
  }

  /**
   * Send a request (a kind listed in the protocol's `replies`) and resolve with the peer's typed
   * reply. Rejects with `WS_ERR_REQUEST_TIMEOUT` after `timeout` ms, `WS_ERR_TOO_MANY_REQUESTS` when
   * `maxPendingRequests` are already waiting, `WS_ERR_CONNECTION_CLOSED` when the connection closes
   * first, `WS_ERR_ABORTED` on `signal`, or the error the peer answered with (`$error`).
   */
  request<K extends RequestKinds<Sd>>(kind: K, payload: Payload<Sd['out'], K>, options: RequestOptions = {}): Promise<ReplyOf<Sd, K>> {
    const ctx = this.#ctx;
    let out: ReturnType<ConnContext['outKind']>;
    try {
      out = ctx.outKind(kind);
    } catch (err) {
      return Promise.reject(err);
    }
    if (out.reply === undefined) return Promise.reject(new TypedMessageError(ErrorCode.InvalidArgument, `${kind} is not a request kind (see defineProtocol's replies)`, { kind }));
    let requests = this.#requests;
    if (requests === undefined) {
      requests = this.#requests = new PendingRequests(ctx.maxPendingRequests, () => ctx.countTimeout());
      // Every wait ends with the connection: one listener per connection that ever makes a request.
      const r = requests;
      void this.raw.closed.then((info) => r.close(new ConnectionError(ErrorCode.ConnectionClosed, `request: the connection closed (${info.code}) before the reply`)));
    }
    if (this.raw.state !== 'open') return Promise.reject(new ConnectionError(ErrorCode.ConnectionClosed, `request ${kind}: the connection is ${this.raw.state}`));
    try {
      countOutgoing(ctx, out, payload);
    } catch (err) {
      return Promise.reject(err);
    }
    const opened = requests.open(out.reply, kind, options.timeout ?? ctx.requestTimeout, options.signal);
    if (opened instanceof Error) return Promise.reject(opened);
    const { id, promise } = opened;
    let json: string;
    try {
      json = encodeMessage(out.compiled.head, payload, 'id', id);
    } catch (err) {
      requests.take(id);
      return Promise.reject(err);
    }
    this.raw.write(json).then(
      (r) => {
        if (r === 'dropped') requests.take(id)?.reject(new ConnectionError(ErrorCode.OutboxFull, `request ${kind}: dropped by the overflow policy`));
      },
      (err: Error) => requests.take(id)?.reject(err),
    );
    return promise as Promise<ReplyOf<Sd, K>>;
  }

  /** @internal The endpoint hands a reply (`re`) to the request that waits for it. */
  takeRequest(id: unknown): ReturnType<PendingRequests['take']> {
    return typeof id === 'number' ? this.#requests?.take(id) : undefined;
  }

  #encode(kind: string, payload: unknown): string {
    return serializeOutgoing(this.#ctx, kind, payload);
  }
}

/** A message of the outgoing `kind` as JSON text, counted (and checked, with `validateOutgoing`). */
export function serializeOutgoing(ctx: ConnContext, kind: string, payload: unknown): string {
  const out = ctx.outKind(kind);
  countOutgoing(ctx, out, payload);
  return encodeMessage(out.compiled.head, payload);
}

function countOutgoing(ctx: ConnContext, out: ReturnType<ConnContext['outKind']>, payload: unknown): void {
  if (ctx.validateOutgoing) checkOutgoing(out.compiled, payload);
  out.sent++;
}

/** `validateOutgoing`: a payload that fails its schema is the caller's bug, thrown at once. */
export function checkOutgoing(c: CompiledKind, payload: unknown): void {
  if (c.check.Check(payload)) return;
  const e = c.check.Errors(payload).First();
  throw new TypedMessageError(ErrorCode.InvalidMessage, `outgoing ${c.kind}${e?.path ?? ''}: ${e?.message ?? 'fails its schema'}`, { kind: c.kind, path: e?.path });
}
