/**
 * One thread's place on the bus of a threaded server: a link (src/scale/bus-link.ts) to every
 * other thread and to the main thread. It tells every peer which topics have subscribers here, and
 * sends each published message only to the peers that want it (a broadcast to every peer that runs
 * a server). Messages queued in one turn of the event loop leave in one batch per peer.
 */
import type { MessagePort } from 'node:worker_threads';
import type { BatchVisitor } from './batch.js';
import { BusLink, type BusLimits, type LinkEvents, type LinkStats } from './bus-link.js';

export interface BusNodeOptions {
  limits: BusLimits;
  /** This node runs a Server (its peers send it broadcasts). */
  server: boolean;
  /** A message from a peer. */
  deliver: BatchVisitor;
  /** The main thread: a topic got its first interested peer (added) or lost its last. */
  onPeerInterest?: ((topic: string, added: boolean) => void) | undefined;
}

/** Counters of the bus at one node: totals and per peer. */
export interface BusStats {
  sent: number;
  received: number;
  dropped: number;
  droppedBytes: number;
  /** Bytes queued for peers now, and the largest queue any one peer ever had. */
  queuedBytes: number;
  peakQueuedBytes: number;
  links: LinkStats[];
}

export class BusNode {
  readonly #links = new Map<number, BusLink>();
  readonly #options: BusNodeOptions;
  readonly #topics = new Set<string>();
  #all = false;
  /** Peers interested in each topic (kept for onPeerInterest). */
  readonly #peerCount = new Map<string, number>();
  readonly #dirty = new Set<BusLink>();
  #scheduled = false;
  /** Counters of links that were replaced or closed (a thread that was replaced). */
  #gone = { sent: 0, received: 0, dropped: 0, droppedBytes: 0, peak: 0 };
  readonly #events: LinkEvents;

  constructor(options: BusNodeOptions) {
    this.#options = options;
    this.#events = {
      interest: this.#onInterest,
      message: options.deliver,
      dirty: this.#onDirty,
    };
  }

  /** Connect to peer `id` over `port` (replacing the link to a thread that was replaced). */
  addPeer(id: number, port: MessagePort): void {
    this.removePeer(id);
    const link = new BusLink(id, port, this.#options.limits, this.#events);
    this.#links.set(id, link);
    link.send({ k: 'hello', server: this.#options.server, all: this.#all, topics: [...this.#topics] });
  }

  removePeer(id: number): void {
    const link = this.#links.get(id);
    if (link === undefined) return;
    this.#links.delete(id);
    this.#dirty.delete(link);
    link.close();
    const g = this.#gone;
    g.sent += link.sent;
    g.received += link.received;
    g.dropped += link.dropped;
    g.droppedBytes += link.droppedBytes;
    g.peak = Math.max(g.peak, link.peakQueuedBytes);
    for (const t of link.remoteTopics) this.#onInterest(link, t, false);
  }

  /** Local interest: `topic` got its first subscriber here. */
  addTopic(topic: string): void {
    if (this.#topics.has(topic)) return;
    this.#topics.add(topic);
    for (const link of this.#links.values()) link.send({ k: 'add', t: topic });
  }

  removeTopic(topic: string): void {
    if (!this.#topics.delete(topic)) return;
    for (const link of this.#links.values()) link.send({ k: 'del', t: topic });
  }

  /** Want every message (the main thread, when a bus of its own is attached). */
  setAll(on: boolean): void {
    if (this.#all === on) return;
    this.#all = on;
    for (const link of this.#links.values()) link.send({ k: 'all', on });
  }

  /** Topics some peer is interested in. */
  peerTopics(): IterableIterator<string> {
    return this.#peerCount.keys();
  }

  /**
   * Send a message to every peer that wants it. Returns how many peers it was queued for and how
   * many dropped it (their bound was full).
   */
  forward(topic: string | undefined, data: string | Uint8Array, isBinary: boolean, key: string | undefined): { peers: number; dropped: number } {
    let peers = 0;
    let dropped = 0;
    for (const link of this.#links.values()) {
      if (!link.wants(topic)) continue;
      if (link.enqueue(topic, data, isBinary, key)) {
        peers++;
        // A large batch leaves at once (bounding the batch buffer); otherwise at the end of the turn.
        if (link.pendingBytes >= FLUSH_BYTES) link.flush();
      } else dropped++;
    }
    return { peers, dropped };
  }

  stats(): BusStats {
    const g = this.#gone;
    const s: BusStats = { sent: g.sent, received: g.received, dropped: g.dropped, droppedBytes: g.droppedBytes, queuedBytes: 0, peakQueuedBytes: g.peak, links: [] };
    for (const link of this.#links.values()) {
      const l = link.stats();
      s.sent += l.sent;
      s.received += l.received;
      s.dropped += l.dropped;
      s.droppedBytes += l.droppedBytes;
      s.queuedBytes += l.queuedBytes;
      s.peakQueuedBytes = Math.max(s.peakQueuedBytes, l.peakQueuedBytes);
      s.links.push(l);
    }
    return s;
  }

  /** Send what is queued now (close() calls it before the ports close). */
  flush(): void {
    for (const link of this.#dirty) link.flush();
    this.#dirty.clear();
  }

  close(): void {
    this.flush();
    for (const id of [...this.#links.keys()]) this.removePeer(id);
  }

  readonly #onDirty = (link: BusLink): void => {
    this.#dirty.add(link);
    if (this.#scheduled) return;
    this.#scheduled = true;
    // One batch per peer per turn of the event loop: every publish made in this turn (a burst in
    // one handleData, many handleData calls for one socket read) shares one postMessage.
    setImmediate(this.#flushScheduled);
  };

  readonly #flushScheduled = (): void => {
    this.#scheduled = false;
    this.flush();
  };

  readonly #onInterest = (_link: BusLink, topic: string, added: boolean): void => {
    const cb = this.#options.onPeerInterest;
    const n = (this.#peerCount.get(topic) ?? 0) + (added ? 1 : -1);
    if (n <= 0) {
      this.#peerCount.delete(topic);
      if (!added) cb?.(topic, false);
    } else {
      this.#peerCount.set(topic, n);
      if (added && n === 1) cb?.(topic, true);
    }
  };
}

/**
 * A batch this large is sent without waiting for the end of the turn. Not sooner: flushing every
 * 64 messages let the peer thread start its fan-out earlier in a burst, but it then wrote each
 * socket in 64-message pieces, and its CPU per delivered message rose from 0.45 to 0.70 µs
 * (bench/threads.mjs, bench/RESULTS.md, issue 12). One batch per turn keeps the threaded fan-out
 * as batched as the single thread's.
 */
const FLUSH_BYTES = 256 * 1024;
