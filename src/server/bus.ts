import { ErrorCode, WebSocketError } from '../protocol/errors.js';

/**
 * The seam through which a `Server`'s topics reach beyond this process: a thread bus
 * (`src/scale/`) or a Redis adapter attaches a `TopicBus` to a server, and the server tells it
 * which topics have local interest and what was published here. What a bus brings in from
 * elsewhere is handed to `server.deliver(...)`, which fans out locally and forwards to the other
 * buses, never back to the one it came from.
 */
export interface TopicBus {
  /** `topic` got its first local subscriber (also called on attach for every live topic). */
  topicAdded(topic: string): void;
  /** `topic` lost its last local subscriber. */
  topicRemoved(topic: string): void;
  /**
   * A message was published (`topic` a string) or broadcast (`topic` undefined) on this server,
   * by the application or by another bus. It must not block and must not throw; what it cannot
   * forward it counts. `data` is the caller's value: copy it if you keep it past the call.
   * `from` is the bus the message came in on (undefined: published by the application here), so a
   * bus whose peers already hear of it another way (a Redis adapter per thread, beside the thread
   * bus) can leave it alone.
   */
  forward(topic: string | undefined, data: string | Uint8Array, isBinary: boolean, key: string | undefined, from: TopicBus | undefined): void;
}

/** What `server.attachBus(bus)` returns. */
export interface BusAttachment {
  /** Stop telling the bus anything (idempotent). */
  detach(): void;
}

/**
 * The buses attached to one server (a `Server`, or a threaded server's main thread): attach and
 * detach, and telling them of topic interest and of messages. One implementation for both, so the
 * two keep the same rules (a bus attached twice is refused; detach is idempotent).
 */
export class BusList {
  #buses: TopicBus[] = [];

  get size(): number {
    return this.#buses.length;
  }

  /**
   * Attach `bus`, telling it at once of the `live` topics. `onEmpty(false)` runs when the first bus
   * is attached, `onEmpty(true)` when the last is detached.
   */
  add(bus: TopicBus, live: Iterable<string>, onEmpty: (empty: boolean) => void): BusAttachment {
    if (this.#buses.includes(bus)) throw new WebSocketError(ErrorCode.InvalidArgument, 'this bus is already attached to the server');
    // A new array on each change: a forward() in progress keeps iterating the one it started with.
    this.#buses = [...this.#buses, bus];
    if (this.#buses.length === 1) onEmpty(false);
    for (const topic of live) bus.topicAdded(topic);
    let attached = true;
    return {
      detach: () => {
        if (!attached) return;
        attached = false;
        this.#buses = this.#buses.filter((b) => b !== bus);
        if (this.#buses.length === 0) onEmpty(true);
      },
    };
  }

  topicChanged(topic: string, added: boolean): void {
    for (const bus of this.#buses) {
      if (added) bus.topicAdded(topic);
      else bus.topicRemoved(topic);
    }
  }

  /** Forward a message to every bus but `except` (the one it came from). */
  forward(topic: string | undefined, data: string | Uint8Array, isBinary: boolean, key: string | undefined, except: TopicBus | undefined): void {
    for (const bus of this.#buses) if (bus !== except) bus.forward(topic, data, isBinary, key, except);
  }
}

/** `isBinary` and `key` of a publish's options (`isBinary` defaults to the type of `data`). */
export function publishFlags(data: string | Uint8Array, options: boolean | { isBinary?: boolean | undefined; key?: string | undefined } | undefined): [boolean, string | undefined] {
  if (typeof options === 'object' && options !== null) return [options.isBinary ?? typeof data !== 'string', options.key];
  return [options ?? typeof data !== 'string', undefined];
}
