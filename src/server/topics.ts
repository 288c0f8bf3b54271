import type { Conn, TopicHost } from '../conn/conn.js';

const NONE: ReadonlySet<never> = new Set<never>();

/**
 * The server's topics: who is subscribed to what, both ways, so that a publish finds its
 * subscribers in one lookup and a closing connection leaves every topic in one pass over its own.
 * A topic with no subscriber left is deleted, so connections that come and go leave nothing behind.
 */
export class TopicRegistry<C extends Conn<any> = Conn<any>> implements TopicHost {
  readonly #subscribers = new Map<string, Set<C>>();
  readonly #topicsOf = new Map<C, Set<string>>();
  /** Told when a topic gets its first subscriber (`added` true) or loses its last. */
  onTopicChange: ((topic: string, added: boolean) => void) | undefined;

  subscribe(conn: C, topic: string): boolean {
    let subs = this.#subscribers.get(topic);
    if (subs === undefined) {
      subs = new Set();
      this.#subscribers.set(topic, subs);
      this.onTopicChange?.(topic, true);
    } else if (subs.has(conn)) {
      return false;
    }
    subs.add(conn);
    let mine = this.#topicsOf.get(conn);
    if (mine === undefined) {
      mine = new Set();
      this.#topicsOf.set(conn, mine);
    }
    mine.add(topic);
    return true;
  }

  unsubscribe(conn: C, topic: string): boolean {
    const subs = this.#subscribers.get(topic);
    if (subs === undefined || !subs.delete(conn)) return false;
    if (subs.size === 0) {
      this.#subscribers.delete(topic);
      this.onTopicChange?.(topic, false);
    }
    const mine = this.#topicsOf.get(conn)!;
    mine.delete(topic);
    if (mine.size === 0) this.#topicsOf.delete(conn);
    return true;
  }

  /** Leave every topic (the connection has closed). */
  unsubscribeAll(conn: C): void {
    const mine = this.#topicsOf.get(conn);
    if (mine === undefined) return;
    this.#topicsOf.delete(conn);
    for (const topic of mine) {
      const subs = this.#subscribers.get(topic)!;
      subs.delete(conn);
      if (subs.size === 0) {
        this.#subscribers.delete(topic);
        this.onTopicChange?.(topic, false);
      }
    }
  }

  topicsOf(conn: C): ReadonlySet<string> {
    return this.#topicsOf.get(conn) ?? NONE;
  }

  /** The live set of subscribers of `topic` (empty when nobody is). */
  subscribers(topic: string): ReadonlySet<C> {
    return this.#subscribers.get(topic) ?? NONE;
  }

  /** Topics with at least one subscriber. */
  get size(): number {
    return this.#subscribers.size;
  }

  /** Connections with at least one subscription. */
  get subscribedConns(): number {
    return this.#topicsOf.size;
  }

  topics(): IterableIterator<string> {
    return this.#subscribers.keys();
  }
}
