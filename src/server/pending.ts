import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { RequestHeadReader } from '../protocol/http-request.js';
import type { UpgradeRequest } from '../protocol/handshake.js';

/**
 * A handshake in progress: a listen() socket whose request head is still arriving, or a request
 * whose async `handleUpgrade` has not decided yet. It is a node of `PendingHandshakes`' list.
 */
export class PendingHandshake {
  prev: PendingHandshake | undefined = undefined;
  next: PendingHandshake | undefined = undefined;
  /** When it started (performance.now(), ms): for listen(), when the TCP connection was accepted. */
  since = 0;
  /** listen(): the request head being read, and the socket's 'data' listener feeding it. */
  reader: RequestHeadReader | undefined;
  onData: ((p: PendingHandshake, chunk: Buffer) => void) | undefined = undefined;
  /** listen(): the server reading the head (the 'data' listener is shared by all sockets). */
  owner: unknown = undefined;
  /** Set once the request is read, while handleUpgrade decides. */
  req: UpgradeRequest | undefined = undefined;
  /** listen(): the socket was paused while handleUpgrade decides (it must be resumed after). */
  paused = false;
  /** The deadline passed, or close() ended it: whatever is decided later is ignored. */
  over = false;

  /** listen(): the socket's data while the head is read (see listenEarly in conn.ts). */
  receive(_socket: Duplex, chunk: Buffer): void {
    this.onData?.(this, chunk);
  }

  constructor(
    readonly socket: Duplex,
    reader?: RequestHeadReader,
  ) {
    this.reader = reader;
  }
}

/**
 * The handshakes in progress and their one deadline, `timeout` ms after each started. One
 * interval for all of them (a timer per handshake cost 1.2% of a churn profile), running only
 * while there is one, unref'd: every `granularity` ms it ends those past their deadline, so a
 * handshake ends between `timeout` and `timeout + granularity` ms after it started. The list is
 * intrusive (add and delete are a few field writes, no Map or Set traffic per connection).
 */
export class PendingHandshakes {
  readonly timeout: number;
  /** max(100, timeout / 4) ms. */
  readonly granularity: number;
  readonly #onExpire: (p: PendingHandshake) => void;
  #first: PendingHandshake | undefined;
  #last: PendingHandshake | undefined;
  #size = 0;
  #timer: NodeJS.Timeout | undefined;

  /** `onExpire` is called for each handshake past its deadline, after it has left the list. */
  constructor(timeout: number, onExpire: (p: PendingHandshake) => void) {
    this.timeout = timeout;
    this.granularity = Math.max(100, Math.floor(timeout / 4));
    this.#onExpire = onExpire;
  }

  get size(): number {
    return this.#size;
  }

  /** Start the clock of `p` now. */
  add(p: PendingHandshake): void {
    p.since = performance.now();
    p.prev = this.#last;
    p.next = undefined;
    if (this.#last === undefined) this.#first = p;
    else this.#last.next = p;
    this.#last = p;
    this.#size++;
    if (this.#timer === undefined) {
      this.#timer = setInterval(this.#sweep, this.granularity);
      this.#timer.unref();
    }
  }

  /** Take `p` out (it finished); a no-op if it is not in the list. */
  delete(p: PendingHandshake): void {
    if (p.prev === undefined && this.#first !== p) return;
    if (p.prev === undefined) this.#first = p.next;
    else p.prev.next = p.next;
    if (p.next === undefined) this.#last = p.prev;
    else p.next.prev = p.prev;
    p.prev = p.next = undefined;
    this.#size--;
  }

  /** Take every handshake out, calling `fn` on each, and stop the interval. */
  clear(fn: (p: PendingHandshake) => void): void {
    let p = this.#first;
    this.#first = this.#last = undefined;
    this.#size = 0;
    this.#stop();
    while (p !== undefined) {
      const next = p.next;
      p.prev = p.next = undefined;
      fn(p);
      p = next;
    }
  }

  /**
   * End what is past its deadline. Sockets that closed while their head was still arriving leave
   * too (silently): they are not kept until their deadline.
   */
  readonly #sweep = (): void => {
    const now = performance.now();
    let p = this.#first;
    while (p !== undefined) {
      const next = p.next;
      if (now - p.since >= this.timeout) {
        this.delete(p);
        this.#onExpire(p);
      } else if (p.req === undefined && p.socket.destroyed) {
        this.delete(p);
      }
      p = next;
    }
    if (this.#size === 0) this.#stop();
  };

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
