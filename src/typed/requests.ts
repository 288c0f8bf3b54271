/**
 * The requests one connection has made and not yet seen answered: bounded in number, each ended
 * by its reply, its timeout, its AbortSignal or the connection's close, whichever comes first.
 * A timer per request (not per message): requests are the rare path.
 */
import { ConnectionError, ErrorCode } from '../protocol/errors.js';
import type { CompiledKind } from './protocol.js';
import { TypedMessageError } from './errors.js';

interface Pending {
  readonly reply: CompiledKind;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: (() => void) | undefined;
}

export class PendingRequests {
  readonly #max: number;
  readonly #onTimeout: () => void;
  readonly #map = new Map<number, Pending>();
  #next = 1;
  /** Set once the connection closed: every later request fails at once with it. */
  #closed: Error | undefined;

  constructor(max: number, onTimeout: () => void) {
    this.#max = max;
    this.#onTimeout = onTimeout;
  }

  get size(): number {
    return this.#map.size;
  }

  /** A new id and the Promise of its reply; refused (rejected) when `max` are outstanding. */
  open(reply: CompiledKind, kind: string, timeout: number, signal: AbortSignal | undefined): { id: number; promise: Promise<unknown> } | Error {
    if (this.#closed !== undefined) return this.#closed;
    if (signal?.aborted) return new ConnectionError(ErrorCode.Aborted, `request ${kind}: aborted`, { cause: signal.reason });
    if (this.#map.size >= this.#max) return new TypedMessageError(ErrorCode.TooManyRequests, `request ${kind}: ${this.#max} requests are already waiting for their reply (maxPendingRequests)`, { kind });
    const id = this.#next;
    this.#next = id >= 0x7fffffff ? 1 : id + 1;
    let resolve!: (v: unknown) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const timer = setTimeout(() => {
      if (this.take(id) === undefined) return;
      this.#onTimeout();
      reject(new TypedMessageError(ErrorCode.RequestTimeout, `request ${kind}: no reply within ${timeout} ms`, { kind }));
    }, timeout);
    const onAbort = signal === undefined ? undefined : () => this.take(id)?.reject(new ConnectionError(ErrorCode.Aborted, `request ${kind}: aborted`, { cause: signal.reason }));
    if (signal !== undefined) signal.addEventListener('abort', onAbort!, { once: true });
    this.#map.set(id, { reply, resolve, reject, timer, signal, onAbort });
    return { id, promise };
  }

  /** Remove request `id` (its timer and abort listener too); undefined when it is not waiting. */
  take(id: number): Pending | undefined {
    const p = this.#map.get(id);
    if (p === undefined) return undefined;
    this.#map.delete(id);
    clearTimeout(p.timer);
    if (p.onAbort !== undefined) p.signal!.removeEventListener('abort', p.onAbort);
    return p;
  }

  /** The connection closed: fail every waiting request, and every later one, with `err`. */
  close(err: Error): void {
    this.#closed ??= err;
    for (const id of [...this.#map.keys()]) this.take(id)!.reject(err);
  }
}
