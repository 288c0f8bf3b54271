import { Type } from '@sinclair/typebox';
import type { CloseInfo, Conn, TryWriteResult, WriteResult } from '../conn/conn.js';
import { defaultConnOptions } from '../conn/conn.js';
import { failOpen } from '../conn/report.js';
import { ConnectionError, ErrorCode, HandshakeError, WebSocketError } from '../protocol/errors.js';
import { parseOptions } from '../server/options.js';
import { connect, planConnect, type ClientOptions } from './client.js';

export const ReconnectOptionsSchema = Type.Object(
  {
    initialDelay: Type.Integer({ minimum: 0, default: 500, description: 'Delay before the first reconnect attempt (ms)' }),
    maxDelay: Type.Integer({ minimum: 0, default: 30_000, description: 'Cap on the delay between attempts (ms)' }),
    factor: Type.Number({ minimum: 1, default: 2, description: 'Each retry multiplies the delay by this' }),
    jitter: Type.Number({ minimum: 0, maximum: 1, default: 0.5, description: 'Each delay is drawn from [delay × (1 − jitter), delay]' }),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, description: 'Consecutive failed attempts before giving up (default: never give up)' })),
  },
  { additionalProperties: false },
);

/** Why a ReconnectingClient ended: `close()`, its `signal`, or it gave up. */
export interface ReconnectEnd {
  reason: 'closed' | 'aborted' | 'gave-up';
  /** Connection attempts that failed in a row before the end. */
  attempts: number;
  /** The last failed attempt's error (a `HandshakeError`, say), if any. */
  error: WebSocketError | undefined;
  /** How the last connection closed, if one was open. */
  closeInfo: CloseInfo | undefined;
  /** Messages held while disconnected that never reached a connection. */
  unsent: number;
}

/** Passed to `handleReconnecting` each time a reconnect is scheduled. */
export interface ReconnectAttempt {
  /** 1 for the first attempt after a loss (or after a failed first connect), then 2, 3… */
  attempt: number;
  /** The wait before it (ms), backoff and jitter applied. */
  delay: number;
  /** Why: the CloseInfo of the lost connection or the error of the failed attempt. */
  cause: CloseInfo | WebSocketError;
}

export interface ReconnectOptions<D = undefined> extends ClientOptions<D> {
  initialDelay?: number;
  maxDelay?: number;
  factor?: number;
  jitter?: number;
  maxAttempts?: number;
  /**
   * Whether to try again after `cause`. Default: yes, except after a handshake refused with a
   * 4xx status other than 408 and 429 (401, 403, 404 will not change by themselves).
   */
  shouldReconnect?: (cause: CloseInfo | WebSocketError) => boolean;
  /** A reconnect is scheduled (for logs and UIs). */
  handleReconnecting?: (attempt: ReconnectAttempt) => void;
}

const RECONNECT_KEYS = ['initialDelay', 'maxDelay', 'factor', 'jitter', 'maxAttempts'] as const;

interface Held {
  data: string | Uint8Array;
  isBinary: boolean | undefined;
  bytes: number;
}

interface WaitingWrite extends Held {
  resolve: (r: WriteResult) => void;
  reject: (e: unknown) => void;
}

export type ReconnectState = 'connecting' | 'open' | 'waiting' | 'closed';

/**
 * A client connection that comes back: see `reconnect()`. While it is disconnected, writes are
 * held in a buffer bounded like an outbox (`maxQueuedFrames`, `maxQueuedBytes`) and meet the
 * `overflow` policy when it is full; they go out, in order, on the next connection right after
 * its `handleOpen` (the place to resubscribe) has finished.
 */
export class ReconnectingClient<D = undefined> {
  readonly #url: string | URL;
  readonly #connectOptions: ClientOptions<D>;
  readonly #options: ReconnectOptions<D>;
  readonly #backoff: { initialDelay: number; maxDelay: number; factor: number; jitter: number; maxAttempts: number | undefined };
  readonly #limits: { frames: number; bytes: number; overflow: string; maxWaiters: number };
  readonly #abort = new AbortController();
  #state: ReconnectState = 'connecting';
  #conn: Conn<D> | undefined;
  #held: Held[] = [];
  #heldBytes = 0;
  #waiting: WaitingWrite[] = [];
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #ending = false;
  #end: ReconnectEnd | undefined;
  #resolveEnded!: (e: ReconnectEnd) => void;
  #opened: { promise: Promise<Conn<D>>; resolve: (c: Conn<D>) => void; reject: (e: unknown) => void } | undefined;
  /** Messages dropped from the hold buffer by the overflow policy. */
  dropped = 0;
  /** Connections opened so far. */
  connections = 0;
  /** Resolves once, when the client has stopped for good, with the reason. */
  readonly ended: Promise<ReconnectEnd>;

  constructor(url: string | URL, options: ReconnectOptions<D> = {}) {
    const backoffInput: Record<string, unknown> = {};
    const connectOptions: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(options)) {
      if ((RECONNECT_KEYS as readonly string[]).includes(k)) backoffInput[k] = v;
      else if (k !== 'shouldReconnect' && k !== 'handleReconnecting' && k !== 'handleOpen' && k !== 'signal') connectOptions[k] = v;
    }
    const b = parseOptions(ReconnectOptionsSchema, backoffInput, 'reconnect options');
    this.#backoff = { ...b, maxAttempts: b.maxAttempts };
    this.#url = url;
    this.#options = options;
    this.#connectOptions = { ...(connectOptions as ClientOptions<D>), signal: this.#abort.signal };
    // A bad URL or option throws here, at once, rather than ending the client after a first attempt.
    planConnect(url, this.#connectOptions);
    const d = defaultConnOptions;
    this.#limits = {
      frames: options.maxQueuedFrames ?? d.maxQueuedFrames,
      bytes: options.maxQueuedBytes ?? d.maxQueuedBytes,
      overflow: options.overflow ?? d.overflow,
      maxWaiters: options.maxWaiters ?? d.maxWaiters,
    };
    this.ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) queueMicrotask(() => void this.#stop('aborted'));
      else signal.addEventListener('abort', () => void this.#stop('aborted'), { once: true });
    }
    void this.#run();
  }

  get state(): ReconnectState {
    return this.#state;
  }
  /** The connection while one is open (also during its `handleOpen`). */
  get conn(): Conn<D> | undefined {
    return this.#conn;
  }
  /** Messages held for the next connection, and their payload bytes. */
  get heldMessages(): number {
    return this.#held.length;
  }
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** The open connection, or the next one; rejects with `WS_ERR_CONNECTION_CLOSED` if the client ends first. */
  connected(): Promise<Conn<D>> {
    if (this.#state === 'open' && this.#conn !== undefined) return Promise.resolve(this.#conn);
    if (this.#end !== undefined) return Promise.reject(this.#endedError());
    if (this.#opened === undefined) {
      let resolve!: (c: Conn<D>) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<Conn<D>>((res, rej) => ((resolve = res), (reject = rej)));
      this.#opened = { promise, resolve, reject };
    }
    return this.#opened.promise;
  }

  /** As `Conn.write`: to the open connection, or into the hold buffer while there is none. */
  write(data: string | Uint8Array, isBinary?: boolean): Promise<WriteResult> {
    const conn = this.#conn;
    if (this.#state === 'open' && conn !== undefined && conn.state === 'open') return conn.write(data, isBinary);
    const r = this.#hold(data, isBinary);
    if (r === 'queued' || r === 'dropped') return Promise.resolve(r);
    if (r === 'closed') return Promise.reject(this.#endedError());
    const l = this.#limits;
    if (l.overflow === 'close') {
      return Promise.reject(new ConnectionError(ErrorCode.OutboxFull, `disconnected, and ${this.#held.length} messages (${this.#heldBytes} bytes) are already held`));
    }
    // 'wait': until the next connection takes the held messages, or the client ends.
    if (this.#waiting.length >= l.maxWaiters) {
      return Promise.reject(new ConnectionError(ErrorCode.TooManyWaiters, `more than ${l.maxWaiters} writes waiting for a connection`));
    }
    return new Promise<WriteResult>((resolve, reject) => {
      this.#waiting.push({ data, isBinary, bytes: byteLength(data), resolve, reject });
    });
  }

  /** As `Conn.tryWrite`: `'full'` when the hold buffer is full under the `'wait'` or `'close'` policy. */
  tryWrite(data: string | Uint8Array, isBinary?: boolean): TryWriteResult {
    const conn = this.#conn;
    if (this.#state === 'open' && conn !== undefined && conn.state === 'open') return conn.tryWrite(data, isBinary);
    return this.#hold(data, isBinary);
  }

  /** Stop for good: close the connection (default 1000) and stop reconnecting. Idempotent. */
  close(code = 1000, reason = ''): Promise<ReconnectEnd> {
    return this.#stop('closed', code, reason);
  }

  #hold(data: string | Uint8Array, isBinary: boolean | undefined): TryWriteResult {
    if (this.#ending) return 'closed';
    const bytes = byteLength(data);
    const l = this.#limits;
    // As an outbox: an empty buffer takes one message whatever its size (maxMessageSize is the peer's to enforce).
    const fits = (): boolean => this.#held.length === 0 || (this.#held.length < l.frames && this.#heldBytes + bytes <= l.bytes);
    if (!fits() || this.#waiting.length > 0) {
      if (l.overflow === 'drop-newest') {
        this.dropped++;
        return 'dropped';
      }
      if (l.overflow === 'drop-oldest' || l.overflow === 'conflate') {
        while (!fits()) {
          const old = this.#held.shift()!;
          this.#heldBytes -= old.bytes;
          this.dropped++;
        }
      } else {
        return 'full';
      }
    }
    this.#held.push({ data, isBinary, bytes });
    this.#heldBytes += bytes;
    return 'queued';
  }

  async #run(): Promise<void> {
    let failures = 0; // failed connect() calls in a row
    let retries = 0; // waits since the last open connection (the backoff's exponent)
    let lastError: WebSocketError | undefined;
    let closeInfo: CloseInfo | undefined;
    while (!this.#ending) {
      this.#state = 'connecting';
      let conn: Conn<D>;
      try {
        conn = await connect<D>(this.#url, this.#connectOptions);
      } catch (err) {
        if (this.#ending) break;
        failures++;
        lastError = err instanceof WebSocketError ? err : new WebSocketError(ErrorCode.HandshakeFailed, String(err), { cause: err });
        const max = this.#backoff.maxAttempts;
        if ((max !== undefined && failures >= max) || !this.#shouldReconnect(lastError)) return this.#finish('gave-up', failures, lastError, closeInfo);
        if (!(await this.#wait(++retries, lastError))) break;
        continue;
      }
      if (this.#ending) {
        conn.terminate();
        break;
      }
      failures = 0;
      retries = 0;
      lastError = undefined;
      this.connections++;
      this.#conn = conn;
      await this.#open(conn);
      closeInfo = await conn.closed;
      this.#conn = undefined;
      if (this.#ending) break;
      if (!this.#shouldReconnect(closeInfo)) return this.#finish('gave-up', 0, closeInfo.error, closeInfo);
      if (!(await this.#wait(++retries, closeInfo))) break;
    }
    // close() or the signal ended the loop; #stop reports the end.
  }

  #shouldReconnect(cause: CloseInfo | WebSocketError): boolean {
    try {
      return (this.#options.shouldReconnect ?? defaultShouldReconnect)(cause);
    } catch {
      return false;
    }
  }

  /** The new connection's handleOpen (resubscribe there), then what was held, in order. */
  async #open(conn: Conn<D>): Promise<void> {
    const open = this.#options.handleOpen;
    if (open !== undefined) {
      try {
        await open(conn);
      } catch (err) {
        failOpen(conn, this.#options, err);
        return;
      }
    }
    if (conn.state !== 'open') return;
    for (const h of this.#held.splice(0)) void conn.write(h.data, h.isBinary);
    this.#heldBytes = 0;
    for (const w of this.#waiting.splice(0)) conn.write(w.data, w.isBinary).then(w.resolve, w.reject);
    this.#state = 'open';
    const opened = this.#opened;
    this.#opened = undefined;
    opened?.resolve(conn);
  }

  /** Wait out the backoff before retry `n` (1, 2, …); false when the client was stopped meanwhile. */
  async #wait(n: number, cause: CloseInfo | WebSocketError): Promise<boolean> {
    const b = this.#backoff;
    const base = Math.min(b.maxDelay, b.initialDelay * b.factor ** (n - 1));
    const delay = Math.round(base * (1 - b.jitter * Math.random()));
    this.#state = 'waiting';
    try {
      this.#options.handleReconnecting?.({ attempt: n, delay, cause });
    } catch {
      // a logging hook that throws must not stop the reconnecting
    }
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, delay);
    });
    this.#timer = undefined;
    this.#wake = undefined;
    return !this.#ending;
  }

  async #stop(reason: 'closed' | 'aborted', code = 1000, closeReason = ''): Promise<ReconnectEnd> {
    if (this.#ending) return this.ended;
    this.#ending = true;
    clearTimeout(this.#timer);
    this.#wake?.();
    this.#abort.abort();
    const conn = this.#conn;
    let closeInfo: CloseInfo | undefined;
    if (conn !== undefined) closeInfo = await conn.close(code, closeReason);
    this.#finish(reason, 0, undefined, closeInfo);
    return this.ended;
  }

  #finish(reason: ReconnectEnd['reason'], attempts: number, error: WebSocketError | undefined, closeInfo: CloseInfo | undefined): void {
    if (this.#end !== undefined) return;
    this.#ending = true;
    this.#state = 'closed';
    const unsent = this.#held.length + this.#waiting.length;
    this.#held = [];
    this.#heldBytes = 0;
    const err = this.#endedError();
    for (const w of this.#waiting.splice(0)) w.reject(err);
    this.#end = { reason, attempts, error, closeInfo, unsent };
    this.#opened?.reject(err);
    this.#opened?.promise.catch(() => {});
    this.#opened = undefined;
    this.#resolveEnded(this.#end);
  }

  #endedError(): ConnectionError {
    return new ConnectionError(ErrorCode.ConnectionClosed, 'the reconnecting client has ended');
  }
}

function byteLength(data: string | Uint8Array): number {
  return typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
}

/** Try again, except after a refusal that will not change by itself (a 4xx other than 408 and 429) or a bad argument. */
function defaultShouldReconnect(cause: CloseInfo | WebSocketError): boolean {
  if (!(cause instanceof WebSocketError)) return true;
  if (cause.code === ErrorCode.InvalidArgument || cause.code === ErrorCode.InvalidOptions) return false;
  const s = cause instanceof HandshakeError ? cause.status : undefined;
  return s === undefined || s < 400 || s >= 500 || s === 408 || s === 429;
}

/**
 * Connect to `url` and keep connecting: after a lost connection (or a failed attempt) wait with
 * exponential backoff and jitter (`initialDelay` × `factor`^(n−1), capped at `maxDelay`, drawn
 * from [d × (1 − jitter), d]) and try again, until `close()`, the `signal`, `maxAttempts` failed
 * attempts in a row, or `shouldReconnect` says no. `ended` says which. The connection options
 * and handlers apply to every connection; `handleOpen` runs on each one (resubscribe there).
 */
export function reconnect<D = undefined>(url: string | URL, options: ReconnectOptions<D> = {}): ReconnectingClient<D> {
  return new ReconnectingClient<D>(url, options);
}
