import { performance } from 'node:perf_hooks';

/** An entry of a `Deadlines` list (made by `add`, given back to `delete`). */
export interface Deadline<T> {
  readonly item: T;
  /** performance.now() at which it expires. */
  readonly at: number;
  prev: Deadline<T> | undefined;
  next: Deadline<T> | undefined;
  /** Still in the list. */
  live: boolean;
}

/**
 * Items that expire `timeout` ms after they were added, all with the same timeout, so the list is
 * in deadline order by construction (add appends, delete unlinks: a few field writes). One unref'd
 * interval serves the whole list, running only while it holds something: every `granularity` ms
 * it hands the expired items to `onExpire`. An item expires between `timeout` and
 * `timeout + granularity` ms after it was added.
 *
 * This replaces a `setTimeout` per item (a Timeout object, a closure, an async id and a timer-list
 * insert and removal each), which showed in the profile of connections that open and close at a
 * high rate.
 */
export class Deadlines<T> {
  readonly timeout: number;
  /** max(10, timeout / 4) ms. */
  readonly granularity: number;
  readonly #onExpire: (item: T) => void;
  #first: Deadline<T> | undefined;
  #last: Deadline<T> | undefined;
  #size = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(timeout: number, onExpire: (item: T) => void) {
    this.timeout = timeout;
    this.granularity = Math.max(10, Math.floor(timeout / 4));
    this.#onExpire = onExpire;
  }

  get size(): number {
    return this.#size;
  }

  add(item: T): Deadline<T> {
    const d: Deadline<T> = { item, at: performance.now() + this.timeout, prev: this.#last, next: undefined, live: true };
    if (this.#last === undefined) this.#first = d;
    else this.#last.next = d;
    this.#last = d;
    if (++this.#size === 1 && this.#timer === undefined) {
      this.#timer = setInterval(this.#sweep, this.granularity);
      this.#timer.unref();
    }
    return d;
  }

  /** Take `d` out of the list (nothing if it has left already). */
  delete(d: Deadline<T>): void {
    if (!d.live) return;
    d.live = false;
    if (d.prev === undefined) this.#first = d.next;
    else d.prev.next = d.next;
    if (d.next === undefined) this.#last = d.prev;
    else d.next.prev = d.prev;
    d.prev = undefined;
    d.next = undefined;
    if (--this.#size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  readonly #sweep = (): void => {
    const now = performance.now();
    for (let d = this.#first; d !== undefined && d.at <= now; d = this.#first) {
      this.delete(d);
      this.#onExpire(d.item);
    }
  };
}
