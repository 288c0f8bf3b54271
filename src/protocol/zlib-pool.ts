/**
 * The bound on zlib work sent to libuv's thread pool by one server (issue 15: compression must
 * not stall the event loop). A large permessage-deflate message is compressed or inflated there
 * (deflate-codec.ts), off the event loop; this pool caps how many such jobs run at once
 * (libuv's pool has 4 threads by default, shared with fs and dns, and each running job holds
 * its output) and how many wait, in count and in input bytes.
 *
 * When the waiting room is full, `admit` says no and the codec runs that message on the event
 * loop in bounded slices instead (one ~1 ms slice per turn, src/conn/codec-scheduler.ts): the
 * message is neither lost nor refused, and no turn of the loop holds more than a slice.
 * Order per connection is the connection's job (one job per direction at a time); the pool
 * starts jobs in the order they were submitted.
 */

export interface ZlibPoolOptions {
  /** Jobs on the thread pool at once. */
  concurrency: number;
  /** Jobs that may wait for a free slot. */
  maxQueued: number;
  /** Input bytes of the waiting jobs, at most. */
  maxQueuedBytes: number;
}

interface Waiting {
  bytes: number;
  start: (release: () => void) => void;
}

export class ZlibPool {
  readonly options: ZlibPoolOptions;
  #running = 0;
  #queue: Waiting[] = [];
  #head = 0;
  #queuedBytes = 0;
  /** Jobs sent to the thread pool so far. */
  offloaded = 0;
  /** The most jobs that ran at once (never above `options.concurrency`). */
  peak = 0;
  /** Jobs refused by `admit` because the waiting room was full (they ran on the loop in slices). */
  refused = 0;

  constructor(options: ZlibPoolOptions) {
    this.options = options;
  }

  get running(): number {
    return this.#running;
  }

  get queued(): number {
    return this.#queue.length - this.#head;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Whether a job of `bytes` input can be taken now (a free slot, or room to wait). Counts a refusal. */
  admit(bytes: number): boolean {
    const o = this.options;
    if (this.#running < o.concurrency && this.queued === 0) return true;
    if (this.queued < o.maxQueued && this.#queuedBytes + bytes <= o.maxQueuedBytes) return true;
    this.refused++;
    return false;
  }

  /**
   * Run `start` when a slot is free (now, or when a running job releases its slot). `start`
   * must call `release` exactly once, when its work is over (done, failed or cancelled).
   * Call after `admit` said yes (or where nothing else can do the work: a Node without the
   * zlib handle internals, whose every message goes to the pool).
   */
  submit(bytes: number, start: (release: () => void) => void): void {
    if (this.#running < this.options.concurrency && this.queued === 0) {
      this.#start(start);
      return;
    }
    this.#queue.push({ bytes, start });
    this.#queuedBytes += bytes;
  }

  #start(start: (release: () => void) => void): void {
    this.#running++;
    this.offloaded++;
    if (this.#running > this.peak) this.peak = this.#running;
    let released = false;
    start(() => {
      if (released) return;
      released = true;
      this.#running--;
      this.#next();
    });
  }

  #next(): void {
    while (this.#running < this.options.concurrency && this.#head < this.#queue.length) {
      const w = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as unknown as Waiting;
      this.#queuedBytes -= w.bytes;
      if (this.#head > 64 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      this.#start(w.start);
    }
  }
}

export const defaultZlibPoolOptions: ZlibPoolOptions = {
  concurrency: 2,
  maxQueued: 1024,
  maxQueuedBytes: 256 * 1024 * 1024,
};
