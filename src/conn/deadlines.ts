import { performance } from 'node:perf_hooks';

/** What a `Deadlines` list holds: it links the node and stamps its deadline. */
export interface DeadlineNode<N> {
  prev: N | undefined;
  next: N | undefined;
  /** performance.now() at which it expires (set by `add`). */
  at: number;
}

export interface DeadlinesOptions<N> {
  /** The shortest sweep interval in ms (default 10). */
  minGranularity?: number;
  /**
   * Checked at each sweep for every node before its deadline: true takes it out silently (no
   * `onExpire`). Without it a sweep stops at the first node not yet due.
   */
  drop?: (node: N) => boolean;
}

/**
 * Nodes that expire `timeout` ms after they were added, all with the same timeout, so the list is
 * in deadline order by construction. It is intrusive: the nodes carry the links, so add and delete
 * are a few field writes (no Map, Set or timer per node). One unref'd interval serves the whole
 * list, running only while it holds something: every `granularity` ms it hands the expired nodes
 * to `onExpire`, so a node expires between `timeout` and `timeout + granularity` ms after it was
 * added.
 *
 * Used for the closing handshake (closeTimeout, one list per timeout value shared by every Conn)
 * and for handshakes in progress (the server's handshakeTimeout); a timer per connection showed
 * in the profile of connections that open and close at a high rate.
 */
export class Deadlines<N extends DeadlineNode<N>> {
  readonly timeout: number;
  /** max(minGranularity, timeout / 4) ms. */
  readonly granularity: number;
  readonly #onExpire: (node: N) => void;
  readonly #drop: ((node: N) => boolean) | undefined;
  #first: N | undefined;
  #last: N | undefined;
  #size = 0;
  #timer: NodeJS.Timeout | undefined;

  /** `onExpire` is called for each node past its deadline, after it has left the list. */
  constructor(timeout: number, onExpire: (node: N) => void, options: DeadlinesOptions<N> = {}) {
    this.timeout = timeout;
    this.granularity = Math.max(options.minGranularity ?? 10, Math.floor(timeout / 4));
    this.#onExpire = onExpire;
    this.#drop = options.drop;
  }

  get size(): number {
    return this.#size;
  }

  /** Start the clock of `node` now. */
  add(node: N): void {
    node.at = performance.now() + this.timeout;
    node.prev = this.#last;
    node.next = undefined;
    if (this.#last === undefined) this.#first = node;
    else this.#last.next = node;
    this.#last = node;
    this.#size++;
    if (this.#timer === undefined) {
      this.#timer = setInterval(this.#sweep, this.granularity);
      this.#timer.unref();
    }
  }

  /** Take `node` out; a no-op if it is not in the list (expired, deleted, or never added). */
  delete(node: N): void {
    if (node.prev === undefined && this.#first !== node) return;
    if (node.prev === undefined) this.#first = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) this.#last = node.prev;
    else node.next.prev = node.prev;
    node.prev = node.next = undefined;
    if (--this.#size === 0) this.#stop();
  }

  /** Take every node out, calling `fn` on each, and stop the interval. */
  clear(fn: (node: N) => void): void {
    let node = this.#first;
    this.#first = this.#last = undefined;
    this.#size = 0;
    this.#stop();
    while (node !== undefined) {
      const next = node.next;
      node.prev = node.next = undefined;
      fn(node);
      node = next;
    }
  }

  readonly #sweep = (): void => {
    const now = performance.now();
    const drop = this.#drop;
    let node = this.#first;
    while (node !== undefined) {
      const next = node.next;
      if (node.at <= now) {
        this.delete(node);
        this.#onExpire(node);
      } else if (drop === undefined) {
        break; // in deadline order: nothing after this one is due either
      } else if (drop(node)) {
        this.delete(node);
      }
      node = next;
    }
  };

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
