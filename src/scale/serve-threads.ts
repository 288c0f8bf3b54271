/**
 * A server on every core: `serveThreads(appUrl, options)` starts `threads` worker threads, each
 * running the application's setup function on its own `Server` and listening on the same port with
 * SO_REUSEPORT, so the kernel spreads connections among them with no hand-off. The threads are
 * joined by a bounded bus (src/scale/bus-node.ts) so that a publish on any thread, or from the main
 * thread through the returned handle, reaches the subscribers on every thread.
 *
 * A thread that crashes is reported and replaced (its connections are lost; the others are not
 * touched). `close()` closes every thread's server as `Server.close()` does.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { ErrorCode, WebSocketError } from '../protocol/errors.js';
import { ServerOptionsSchema, parseOptions, type ServerOptionsInput } from '../server/options.js';
import { BusList, publishFlags, type BusAttachment, type TopicBus } from '../server/bus.js';
import type { PublishOptions } from '../server/server.js';
import { reusePortMissing } from '../server/reuse-port.js';
import { BusNode, type BusStats } from './bus-node.js';
import type { BusLimits } from './bus-link.js';
import { MAIN_PEER, type FromThread, type ThreadData, type ThreadStats, type ToThread } from './thread-types.js';
import { THREAD_MAIN } from './thread-main-url.js';

export interface ThreadsOptions {
  /** Threads to run. Default: `os.availableParallelism()`. More than 1 needs SO_REUSEPORT. */
  threads?: number | undefined;
  /** Port for every thread (0: the first thread picks one, the others join it). Default 0. */
  port?: number | undefined;
  host?: string | undefined;
  /** Handed to every thread's setup function as `thread.data` (structured-cloned). */
  appData?: unknown;
  /** Bound of the bus towards one thread, in messages. Default 16384. */
  busMaxQueuedMessages?: number | undefined;
  /** Bound of the bus towards one thread, in bytes. Default 16 MiB. */
  busMaxQueuedBytes?: number | undefined;
  /** A thread ended without close() (crashed or exited): it is replaced. Default: a line on stderr. */
  onThreadExit?: ((info: ThreadExit) => void) | undefined;
  /** Milliseconds before a crashed thread is replaced. Default 100. */
  restartDelay?: number | undefined;
}

/** serveThreads' options: the thread options and every `Server` option (see ServerOptions). */
export type ServeThreadsOptions = ThreadsOptions & ServerOptionsInput;

export interface ThreadExit {
  index: number;
  threadId: number;
  exitCode: number;
  /** The uncaught exception that ended it, if any. */
  error: unknown;
}

/** Counters of the whole threaded server: per thread and summed. */
export interface ThreadedStats {
  threads: ThreadStats[];
  total: { connections: number; published: number; delivered: number; dropped: number; busSent: number; busDropped: number };
  /** Threads replaced after a crash, since the start. */
  restarts: number;
  /** The main thread's end of the bus (what `publish` from the main thread sent). */
  main: BusStats;
}

/** What a publish from the main thread did: threads it was queued for, threads that dropped it. */
export interface ThreadPublishResult {
  threads: number;
  dropped: number;
}


interface Slot {
  index: number;
  worker: Worker | undefined;
  /** Ports to this slot's thread from each peer (kept by the peer side). */
  listening: boolean;
}

/**
 * Start a threaded server. `app` is the URL (or path) of a module whose default export (or export
 * `setup`) sets up a `Server`: `export default function (server, thread) { server.handleData(...) }`.
 * Resolves once every thread listens.
 */
export async function serveThreads(app: URL | string, options: ServeThreadsOptions = {}): Promise<ThreadedServer> {
  const {
    threads = availableParallelism(),
    port = 0,
    host,
    appData,
    busMaxQueuedMessages = 16_384,
    busMaxQueuedBytes = 16 * 1024 * 1024,
    onThreadExit,
    restartDelay = 100,
    ...serverOptions
  } = options;
  if (!Number.isInteger(threads) || threads < 1) throw new WebSocketError(ErrorCode.InvalidArgument, `threads must be a whole number >= 1, got ${threads}`);
  for (const [name, v] of [['busMaxQueuedMessages', busMaxQueuedMessages], ['busMaxQueuedBytes', busMaxQueuedBytes]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new WebSocketError(ErrorCode.InvalidArgument, `${name} must be a whole number >= 1, got ${v}`);
  }
  if (threads > 1) {
    const missing = reusePortMissing();
    if (missing !== undefined) {
      throw new WebSocketError(ErrorCode.Unsupported, `serveThreads with ${threads} threads needs ${missing}; run with threads: 1, or on a newer Node`);
    }
  }
  // Checked here, once, so a bad option fails the call rather than every thread.
  parseOptions(ServerOptionsSchema, serverOptions, 'server options');
  const url = typeof app === 'string' && !/^[a-z][a-z0-9+.-]*:/i.test(app) ? new URL(app, `file://${process.cwd()}/`).href : String(app);
  const server = new ThreadedServer({
    app: url,
    threads,
    port,
    host,
    appData,
    serverOptions,
    limits: { maxQueuedMessages: busMaxQueuedMessages, maxQueuedBytes: busMaxQueuedBytes },
    onThreadExit: onThreadExit ?? ((i) => console.error(`wschan: thread ${i.index} (threadId ${i.threadId}) exited with code ${i.exitCode}${i.error === undefined ? '' : `: ${String(i.error)}`}; replacing it`)),
    restartDelay,
  });
  await server.start();
  return server;
}

interface Config {
  app: string;
  threads: number;
  port: number;
  host: string | undefined;
  appData: unknown;
  serverOptions: ServerOptionsInput;
  limits: BusLimits;
  onThreadExit: (info: ThreadExit) => void;
  restartDelay: number;
}

/** The handle of a threaded server, in the main thread. */
export class ThreadedServer {
  readonly #config: Config;
  readonly #slots: Slot[] = [];
  readonly #node: BusNode;
  #port = 0;
  #address = '';
  #restarts = 0;
  #closing: Promise<void> | undefined;
  /** close() was called, or the start failed: no thread is replaced any more. */
  #stopping = false;
  #started = false;
  #nextAsk = 0;
  readonly #asks = new Map<number, (v: unknown) => void>();
  readonly #buses = new BusList();
  readonly #timers = new Set<NodeJS.Timeout>();

  /** @internal use serveThreads() */
  constructor(config: Config) {
    this.#config = config;
    this.#node = new BusNode({
      limits: config.limits,
      server: false,
      // Only with a bus attached here (setAll): a thread's publish goes on to the main thread's buses.
      deliver: (topic, data, isBinary, key) => this.#buses.forward(topic, data, isBinary, key, undefined),
      onPeerInterest: (topic, added) => this.#buses.topicChanged(topic, added),
    });
    for (let i = 0; i < config.threads; i++) this.#slots.push({ index: i, worker: undefined, listening: false });
  }

  /** The port every thread listens on. */
  get port(): number {
    return this.#port;
  }
  /** The address the threads listen on. */
  get address(): string {
    return this.#address;
  }
  get threads(): number {
    return this.#config.threads;
  }

  /** @internal */
  async start(): Promise<void> {
    try {
      // The first thread picks the port (port 0); the others then bind the same one.
      await this.#spawn(this.#slots[0]!, this.#config.port);
      await Promise.all(this.#slots.slice(1).map((s) => this.#spawn(s, this.#port)));
      this.#started = true;
    } catch (err) {
      await this.#stopAll();
      throw err;
    }
  }

  /**
   * Send a message to the subscribers of `topic` on every thread (to the threads with a subscriber;
   * each frames it once for its own). Never waits: a thread whose bus is full drops it, counted.
   */
  publish(topic: string, data: string | Uint8Array, options?: PublishOptions): ThreadPublishResult {
    return this.deliver(topic, data, options, undefined);
  }

  /** Send a message to every connection on every thread. */
  broadcast(data: string | Uint8Array, options?: boolean | PublishOptions): ThreadPublishResult {
    return this.deliver(undefined, data, options, undefined);
  }

  /**
   * For a bus attached here (`attachBus`, e.g. a Redis adapter run once for all threads): hand a
   * message that arrived on `from` to every thread, and (unless `relay` is false) to the other
   * buses attached here. The same signature as `Server.deliver`, so a `RedisAdapter` takes this
   * handle as its host.
   */
  deliver(topic: string | undefined, data: string | Uint8Array, options: boolean | PublishOptions | undefined, from: TopicBus | undefined, relay = true): ThreadPublishResult {
    if (this.#stopping) return { threads: 0, dropped: 0 };
    const [isBinary, key] = publishFlags(data, options);
    const r = this.#node.forward(topic, data, isBinary, key);
    if (relay) this.#buses.forward(topic, data, isBinary, key, from);
    return { threads: r.peers, dropped: r.dropped };
  }

  /**
   * Attach a topic bus to the whole threaded server (the same seam as `Server.attachBus`): it hears
   * of every topic that gets its first subscriber on any thread or loses its last on all, and of
   * every publish on any thread; what it brings in goes to `deliver(..., bus)`. A Redis adapter
   * attached here runs once for all threads, so no message is delivered twice.
   */
  attachBus(bus: TopicBus): BusAttachment {
    // With a bus here, the threads send the main thread every publish (setAll).
    return this.#buses.add(bus, this.#node.peerTopics(), (empty) => this.#node.setAll(!empty));
  }

  /** Subscribers of `topic` on every thread. */
  async subscriberCount(topic: string): Promise<number> {
    const counts = await this.#askAll((id) => ({ k: 'count', id, topic }));
    return (counts as number[]).reduce((a, b) => a + b, 0);
  }

  /** Counters per thread and summed (connections, delivered, dropped, the bus). */
  async stats(): Promise<ThreadedStats> {
    const threads = (await this.#askAll((id) => ({ k: 'stats', id }))) as ThreadStats[];
    const total = { connections: 0, published: 0, delivered: 0, dropped: 0, busSent: 0, busDropped: 0 };
    for (const t of threads) {
      total.connections += t.connections;
      total.published += t.published;
      total.delivered += t.delivered;
      total.dropped += t.dropped;
      total.busSent += t.bus.sent;
      total.busDropped += t.bus.dropped;
    }
    const main = this.#node.stats();
    total.busSent += main.sent;
    total.busDropped += main.dropped;
    return { threads, total, restarts: this.#restarts, main };
  }

  /**
   * Close every thread's server (1001 Going Away to every connection, `shutdownTimeout` for the
   * closing handshakes, as `Server.close()`), then the threads. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#stopAll();
    return this.#closing;
  }

  async #stopAll(): Promise<void> {
    this.#stopping = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#node.flush();
    const exits: Promise<unknown>[] = [];
    for (const slot of this.#slots) {
      const w = slot.worker;
      if (w === undefined) continue;
      const exited = new Promise((resolve) => w.once('exit', resolve));
      w.postMessage({ k: 'close' } satisfies ToThread);
      // A thread that does not finish in time (its setup blocked, say) is ended.
      const grace = setTimeout(() => void w.terminate(), this.#shutdownTimeout() + 2000);
      exits.push(exited.finally(() => clearTimeout(grace)));
    }
    await Promise.all(exits);
    this.#node.close();
    for (const resolve of this.#asks.values()) resolve(undefined);
    this.#asks.clear();
  }

  #shutdownTimeout(): number {
    const t = (this.#config.serverOptions as { shutdownTimeout?: unknown }).shutdownTimeout;
    return typeof t === 'number' ? t : 5000;
  }

  async #askAll(make: (id: number) => ToThread): Promise<unknown[]> {
    const live = this.#slots.filter((s) => s.worker !== undefined && s.listening);
    const answers = await Promise.all(
      live.map(
        (s) =>
          new Promise<unknown>((resolve) => {
            const id = this.#nextAsk++;
            this.#asks.set(id, resolve);
            const w = s.worker!;
            // A thread that exits before it answers answers nothing.
            const gone = (): void => {
              this.#asks.delete(id);
              resolve(undefined);
            };
            w.once('exit', gone);
            this.#asks.set(id, (v) => {
              w.off('exit', gone);
              resolve(v);
            });
            w.postMessage(make(id));
          }),
      ),
    );
    return answers.filter((a) => a !== undefined);
  }

  /** Start the thread of `slot`, connected to every other live thread and to us. */
  #spawn(slot: Slot, port: number): Promise<void> {
    const c = this.#config;
    const links: Array<{ peer: number; port: MessagePort }> = [];
    const transfer: MessagePort[] = [];
    const pair = (peer: number): MessagePort => {
      const ch = new MessageChannel();
      links.push({ peer, port: ch.port1 });
      transfer.push(ch.port1);
      return ch.port2;
    };
    this.#node.addPeer(slot.index, pair(MAIN_PEER));
    const others: Array<[Worker, MessagePort]> = [];
    for (const other of this.#slots) {
      // Threads not started yet get their link to this one when they start.
      if (other === slot || other.worker === undefined) continue;
      others.push([other.worker, pair(other.index)]);
    }
    const data: ThreadData = {
      app: c.app,
      index: slot.index,
      threads: c.threads,
      data: c.appData,
      serverOptions: c.serverOptions,
      port,
      host: c.host,
      reusePort: c.threads > 1,
      limits: c.limits,
      links,
    };
    const worker = new Worker(THREAD_MAIN, { workerData: data, transferList: transfer });
    const threadId = worker.threadId;
    slot.worker = worker;
    slot.listening = false;
    for (const [w, p] of others) w.postMessage({ k: 'link', peer: slot.index, port: p } satisfies ToThread, [p]);
    let error: unknown;
    return new Promise<void>((resolve, reject) => {
      worker.on('error', (err) => (error = err));
      worker.on('message', (msg: FromThread) => {
        if (msg.k === 'listening') {
          this.#port = msg.port;
          this.#address = msg.address;
          slot.listening = true;
          resolve();
        } else if (msg.k === 'reply') {
          const r = this.#asks.get(msg.id);
          this.#asks.delete(msg.id);
          r?.(msg.value);
        } else if (msg.k === 'count') {
          void this.subscriberCount(msg.topic).then((value) => worker.postMessage({ k: 'counted', id: msg.id, value } satisfies ToThread));
        }
      });
      worker.on('exit', (exitCode) => {
        const wasListening = slot.listening;
        slot.worker = undefined;
        slot.listening = false;
        this.#node.removePeer(slot.index);
        for (const other of this.#slots) other.worker?.postMessage({ k: 'unlink', peer: slot.index } satisfies ToThread);
        if (!wasListening) reject(error ?? new WebSocketError(ErrorCode.HandlerFailed, `thread ${slot.index} exited with code ${exitCode} before it listened`));
        // A thread that fails while the server starts fails serveThreads (start() stops the rest).
        if (this.#stopping || !this.#started) return;
        try {
          c.onThreadExit({ index: slot.index, threadId, exitCode, error });
        } catch {
          // the report must not stop the replacement
        }
        const t = setTimeout(() => {
          this.#timers.delete(t);
          if (this.#stopping) return;
          this.#restarts++;
          // A replacement that fails before it listens is reported by its own exit, and replaced.
          this.#spawn(slot, this.#port).catch(() => undefined);
        }, c.restartDelay);
        this.#timers.add(t);
      });
    });
  }
}
