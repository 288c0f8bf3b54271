import { ConnectionError, ErrorCode } from '../protocol/errors.js';

interface Waiter<T> {
  value: T | undefined;
  resolve: (v: T | undefined) => void;
  reject: (e: Error) => void;
}

export interface ChannelOptions {
  /** How many callers may wait at once in `send` and in `receive` (each side). Default 1024. */
  maxWaiters?: number;
}

/**
 * A bounded FIFO between async tasks, in the manner of a Go channel with a buffer.
 *
 * - `trySend`/`tryReceive` are synchronous and allocate nothing on the fast path (a ring buffer).
 * - `send` waits for room and `receive` for a value; both can be ended by `close()` (and by an
 *   AbortSignal), which rejects every waiter with a ConnectionError.
 * - The lists of waiters are bounded as well: a caller that never awaits cannot grow memory; the
 *   waiter past `maxWaiters` is refused at once (WS_ERR_TOO_MANY_WAITERS).
 * - After `close()`, values already inside can still be received; then `receive` rejects and
 *   async iteration ends.
 */
export class Channel<T> implements AsyncIterable<T> {
  readonly capacity: number;
  readonly #maxWaiters: number;
  readonly #ring: (T | undefined)[];
  #head = 0;
  #count = 0;
  #senders: Waiter<T>[] = [];
  #receivers: Waiter<T>[] = [];
  #closed: Error | undefined;

  constructor(capacity: number, options: ChannelOptions = {}) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('channel capacity must be a positive integer');
    this.capacity = capacity;
    this.#maxWaiters = options.maxWaiters ?? 1024;
    this.#ring = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.#count;
  }
  get closed(): boolean {
    return this.#closed !== undefined;
  }
  get full(): boolean {
    return this.#count >= this.capacity;
  }
  /** Senders waiting for room. */
  get waitingSenders(): number {
    return this.#senders.length;
  }

  /** Put `value` in if there is room and nobody is queued ahead; false otherwise (or when closed). */
  trySend(value: T): boolean {
    if (this.#closed !== undefined) return false;
    if (this.#receivers.length > 0) {
      this.#receivers.shift()!.resolve(value);
      return true;
    }
    if (this.#count >= this.capacity || this.#senders.length > 0) return false;
    this.#ring[(this.#head + this.#count) % this.capacity] = value;
    this.#count++;
    return true;
  }

  /**
   * Wait for room, then put `value` in. Rejects when the channel closes or `signal` aborts; with a
   * signal already aborted it rejects at once and sends nothing, even when there is room.
   */
  send(value: T, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    if (this.trySend(value)) return Promise.resolve();
    return this.#wait(this.#senders, value, signal) as Promise<unknown> as Promise<void>;
  }

  /** Take the oldest value, or `undefined` when empty. */
  tryReceive(): T | undefined {
    if (this.#count === 0) return undefined;
    const value = this.#ring[this.#head]!;
    this.#ring[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.capacity;
    this.#count--;
    this.#admitSender();
    return value;
  }

  /**
   * Wait for a value. Rejects when the channel is closed and empty, or `signal` aborts; with a
   * signal already aborted it rejects at once and takes nothing, even when a value is waiting.
   */
  receive(signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.#count > 0) return Promise.resolve(this.tryReceive()!);
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    return this.#wait(this.#receivers, undefined, signal) as Promise<T>;
  }

  /** Close; every waiter is rejected with `reason`. Idempotent. Returns the values still inside. */
  close(reason?: Error): T[] {
    if (this.#closed !== undefined) return [];
    const error = reason ?? new ConnectionError(ErrorCode.ChannelClosed, 'channel closed');
    this.#closed = error;
    const senders = this.#senders;
    const receivers = this.#receivers;
    this.#senders = [];
    this.#receivers = [];
    for (const w of senders) w.reject(error);
    for (const w of receivers) w.reject(error);
    const left: T[] = [];
    for (let i = 0; i < this.#count; i++) left.push(this.#ring[(this.#head + i) % this.capacity]!);
    return left;
  }

  /** Empty the buffer (the caller has other plans for what was inside). */
  drain(): T[] {
    const out: T[] = [];
    let v: T | undefined;
    while (this.#count > 0 && (v = this.tryReceive()) !== undefined) out.push(v);
    return out;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.#count > 0) {
        yield this.tryReceive()!;
        continue;
      }
      if (this.#closed !== undefined) return;
      try {
        yield await this.receive();
      } catch (err) {
        if (err === this.#closed) return;
        throw err;
      }
    }
  }

  #admitSender(): void {
    while (this.#senders.length > 0 && this.#count < this.capacity) {
      const w = this.#senders.shift()!;
      this.#ring[(this.#head + this.#count) % this.capacity] = w.value;
      this.#count++;
      w.resolve(undefined);
    }
  }

  #wait(list: Waiter<T>[], value: T | undefined, signal: AbortSignal | undefined): Promise<T | undefined> {
    if (list.length >= this.#maxWaiters) {
      return Promise.reject(new ConnectionError(ErrorCode.TooManyWaiters, `more than ${this.#maxWaiters} callers waiting on one channel`));
    }
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<T | undefined>((resolve, reject) => {
      const waiter: Waiter<T> = { value, resolve, reject };
      list.push(waiter);
      if (signal !== undefined) {
        const onAbort = (): void => {
          const i = list.indexOf(waiter);
          if (i >= 0) list.splice(i, 1);
          reject(abortError(signal));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        waiter.resolve = (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        };
        waiter.reject = (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        };
      }
    });
  }
}

function abortError(signal: AbortSignal): Error {
  return new ConnectionError(ErrorCode.Aborted, 'aborted', { cause: signal.reason });
}
