/**
 * One end of the bus between two threads of a threaded server (or a thread and the main thread):
 * a MessagePort that carries batches of published messages one way and acknowledgements back, and
 * the peer's topic interest. MessagePort delivers in order, so a publisher's messages arrive in the
 * order it published them.
 *
 * Bounded: what this end has sent and the peer has not yet acknowledged (in flight), plus what
 * waits for the next batch, stays under `maxQueuedMessages` and `maxQueuedBytes`. A stalled peer
 * stops acknowledging, the bound fills, and further messages for it are dropped and counted
 * (`dropped`, `droppedBytes`): the publisher's memory does not grow with the peer's delay.
 */
import type { MessagePort } from 'node:worker_threads';
import { BatchWriter, readBatch, type BatchVisitor } from './batch.js';

export interface BusLimits {
  /** Messages queued for one peer thread (waiting or in flight, unacknowledged). */
  maxQueuedMessages: number;
  /** Bytes queued for one peer thread (waiting or in flight, unacknowledged). */
  maxQueuedBytes: number;
}

/** What crosses a link. */
export type LinkWire =
  | { k: 'hello'; server: boolean; all: boolean; topics: string[] }
  | { k: 'add'; t: string }
  | { k: 'del'; t: string }
  | { k: 'all'; on: boolean }
  | { k: 'batch'; b: ArrayBuffer; len: number; n: number }
  | { k: 'ack'; n: number; b: number };

/** Counters of one link (sender side and receiver side). */
export interface LinkStats {
  peer: number;
  /** Messages handed to the peer. */
  sent: number;
  /** Messages dropped because the peer's bound was full. */
  dropped: number;
  droppedBytes: number;
  /** Bytes queued for the peer now (waiting + unacknowledged), and the most ever. */
  queuedBytes: number;
  peakQueuedBytes: number;
  queuedMessages: number;
  /** Messages received from the peer. */
  received: number;
  /** Topics the peer has told us it has subscribers for. */
  peerTopics: number;
}

export interface LinkEvents {
  /** The peer's interest in `topic` started (added) or ended. */
  interest(link: BusLink, topic: string, added: boolean): void;
  /** A message from the peer. */
  message: BatchVisitor;
  /** This link has something to flush or acknowledge (the node schedules one flush for all). */
  dirty(link: BusLink): void;
}

export class BusLink {
  readonly peer: number;
  readonly #port: MessagePort;
  readonly #limits: BusLimits;
  readonly #events: LinkEvents;
  /** The peer runs a Server (gets broadcasts). */
  remoteServer = false;
  /** The peer wants every message (the main thread with a bus of its own attached). */
  remoteAll = false;
  readonly remoteTopics = new Set<string>();
  readonly #writer = new BatchWriter();
  #inflightMessages = 0;
  #inflightBytes = 0;
  #ackMessages = 0;
  #ackBytes = 0;
  #closed = false;
  sent = 0;
  dropped = 0;
  droppedBytes = 0;
  peakQueuedBytes = 0;
  received = 0;

  constructor(peer: number, port: MessagePort, limits: BusLimits, events: LinkEvents) {
    this.peer = peer;
    this.#port = port;
    this.#limits = limits;
    this.#events = events;
    port.on('message', this.#onMessage);
  }

  /** Whether the peer wants a message for `topic` (undefined: a broadcast). */
  wants(topic: string | undefined): boolean {
    if (this.remoteAll) return true;
    return topic === undefined ? this.remoteServer : this.remoteTopics.has(topic);
  }

  /** Queue a message for the next batch; false (and counted) when the bound is full. */
  enqueue(topic: string | undefined, data: string | Uint8Array, isBinary: boolean, key: string | undefined): boolean {
    if (this.#closed) return false;
    const size = BatchWriter.sizeOf(topic, data, key);
    const w = this.#writer;
    const bytes = this.#inflightBytes + w.byteLength + size;
    if (this.#inflightMessages + w.count + 1 > this.#limits.maxQueuedMessages || bytes > this.#limits.maxQueuedBytes) {
      this.dropped++;
      this.droppedBytes += size;
      return false;
    }
    if (w.count === 0) this.#events.dirty(this);
    w.append(topic, data, isBinary, key, size);
    if (bytes > this.peakQueuedBytes) this.peakQueuedBytes = bytes;
    return true;
  }

  /** Bytes and messages waiting for the next batch. */
  get pendingBytes(): number {
    return this.#writer.byteLength;
  }
  get pendingCount(): number {
    return this.#writer.count;
  }

  /** Send the waiting batch and the acknowledgements owed to the peer. */
  flush(): void {
    if (this.#closed) return;
    const w = this.#writer;
    if (w.count !== 0) {
      const { buffer, byteLength, count } = w.take();
      this.#inflightMessages += count;
      this.#inflightBytes += byteLength;
      this.sent += count;
      this.#post({ k: 'batch', b: buffer, len: byteLength, n: count }, [buffer]);
    }
    if (this.#ackMessages !== 0) {
      this.#post({ k: 'ack', n: this.#ackMessages, b: this.#ackBytes });
      this.#ackMessages = 0;
      this.#ackBytes = 0;
    }
  }

  /** Tell the peer (interest changes, hello). */
  send(msg: LinkWire): void {
    if (!this.#closed) this.#post(msg);
  }

  #post(msg: LinkWire, transfer?: ArrayBuffer[]): void {
    try {
      this.#port.postMessage(msg, transfer);
    } catch {
      // The port is closed (the peer thread is gone): what was for it is lost with its connections.
    }
  }

  stats(): LinkStats {
    return {
      peer: this.peer,
      sent: this.sent,
      dropped: this.dropped,
      droppedBytes: this.droppedBytes,
      queuedBytes: this.#inflightBytes + this.#writer.byteLength,
      peakQueuedBytes: this.peakQueuedBytes,
      queuedMessages: this.#inflightMessages + this.#writer.count,
      received: this.received,
      peerTopics: this.remoteTopics.size,
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#port.off('message', this.#onMessage);
    this.#port.close();
  }

  readonly #onMessage = (msg: LinkWire): void => {
    switch (msg.k) {
      case 'batch':
        this.received += msg.n;
        readBatch(msg.b, msg.len, this.#events.message);
        // Acknowledged once the messages are in the local outboxes: the credit comes back to the
        // publisher only when this thread has done the work.
        if (this.#ackMessages === 0 && this.#writer.count === 0) this.#events.dirty(this);
        this.#ackMessages += msg.n;
        this.#ackBytes += msg.len;
        break;
      case 'ack':
        this.#inflightMessages -= msg.n;
        this.#inflightBytes -= msg.b;
        break;
      case 'hello':
        this.remoteServer = msg.server;
        this.remoteAll = msg.all;
        for (const t of msg.topics) this.#addRemote(t);
        break;
      case 'add':
        this.#addRemote(msg.t);
        break;
      case 'del':
        if (this.remoteTopics.delete(msg.t)) this.#events.interest(this, msg.t, false);
        break;
      case 'all':
        this.remoteAll = msg.on;
        break;
    }
  };

  #addRemote(t: string): void {
    if (this.remoteTopics.has(t)) return;
    this.remoteTopics.add(t);
    this.#events.interest(this, t, true);
  }
}
