/**
 * Fan-out across machines through Redis pub/sub: a `TopicBus` (src/server/bus.ts) that publishes
 * what this node publishes to Redis and delivers what other nodes publish to this node's
 * subscribers. Imported as `wschan/redis`; the main entry never loads it, and it loads the
 * optional peer dependency `redis` (node-redis) only when `RedisAdapter.connect` is called.
 *
 * - Interest: a node SUBSCRIBEs to a topic's channel on the topic's first local subscriber and
 *   UNSUBSCRIBEs after its last, so traffic follows interest, not the number of topics.
 * - Bytes: every message travels in an envelope (src/scale/redis-envelope.ts) carrying the origin
 *   node, binary/text and the conflation key; the receiving node frames once and fans out with
 *   `server.deliver`, so the overflow policies and conflation apply as for a local publish. A node
 *   skips its own messages (it delivered them locally when they were published).
 * - Faults: node-redis reconnects with our backoff; the adapter resubscribes every live topic,
 *   reports the outage (`handleOutage`, `handleRecovered`, `stats.outages`) and counts what could
 *   not be sent. Publishing never waits for Redis: at most `maxQueue` publishes (`maxQueueBytes`)
 *   are in flight; past that, and during an outage, a publish is counted and not sent. Local
 *   subscribers are served by the server itself, Redis or not.
 * - Cluster (`cluster: { rootNodes }`): node-redis's cluster client sends each SSUBSCRIBE and
 *   SPUBLISH (Redis 7 sharded pub/sub) to the shard owning the channel's hash slot; the adapter is
 *   up only while every master's connection is ready.
 * Redis pub/sub is at-most-once: see docs/scaling.md for what that means for users.
 */
import { randomBytes } from 'node:crypto';
import type { PublishOptions } from '../server/server.js';
import type { BusAttachment, TopicBus } from '../server/bus.js';
import { ErrorCode, WebSocketError } from '../protocol/errors.js';
import { decodeEnvelope, encodeEnvelope, isFromNode, MAX_KEY_BYTES, NODE_ID_BYTES } from './redis-envelope.js';
import { backoffDelay, parseRedisOptions, type RedisAdapterOptions, type RedisAdapterSettings } from './redis-options.js';

export { RedisAdapterOptionsSchema } from './redis-options.js';
export type { RedisAdapterOptions, RedisAdapterSettings } from './redis-options.js';

/** Counters since the adapter connected. published = sent + unsent + failed + dropped + queued. */
export interface RedisAdapterStats {
  /** Messages this node handed to the adapter for Redis (publish and broadcast). */
  published: number;
  /** Acknowledged by Redis. */
  sent: number;
  /**
   * Σ of Redis's replies to those: how many subscriber connections each reached (this node's own
   * included when it has a subscriber of the topic). 0 for a message nobody else listens to.
   */
  reached: number;
  /** Not sent: Redis was down when it was published (counted at once, never queued). */
  unsent: number;
  /**
   * Handed to Redis but never acknowledged (the connection dropped with it in flight): it may or
   * may not have reached the other nodes.
   */
  failed: number;
  /** Refused because `maxQueue`/`maxQueueBytes` publishes were already in flight, or unencodable. */
  dropped: number;
  /** In flight now: handed to Redis, not yet acknowledged (and their bytes). */
  queued: number;
  queuedBytes: number;
  /** Messages from other nodes delivered to this node's subscribers. */
  received: number;
  /** Our own messages coming back from Redis, skipped (delivered locally when published). */
  skippedOwn: number;
  /** Messages on our channels that were not a valid envelope (or invalid UTF-8 sent as text). */
  malformed: number;
  /** Times the connection to Redis was lost. */
  outages: number;
  /** Topics subscribed in Redis now (plus the broadcast channel). */
  subscribedTopics: number;
}

export interface RedisOutage {
  /** Date.now() when it began. */
  since: number;
  /** What node-redis reported, when it said. */
  error: Error | undefined;
}
export interface RedisRecovery {
  since: number;
  /** How long Redis was unreachable. */
  downMs: number;
  /** Publishes counted in `unsent` or `failed` during that time. */
  unsent: number;
}
export type RedisAdapterState = 'up' | 'down' | 'closed';

/**
 * What the adapter needs of a server: the topic-bus seam (src/server/bus.ts). A `Server` has it; so
 * can anything else that fans out locally (one `Server` per worker thread, for instance).
 */
export interface RedisAdapterHost {
  attachBus(bus: TopicBus): BusAttachment;
  deliver(topic: string | undefined, data: string | Uint8Array, options: PublishOptions | undefined, from: TopicBus | undefined, relay?: boolean): unknown;
}

/** The part of a node-redis client the adapter uses. */
interface PubSubClient {
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  on(event: string, fn: (...args: any[]) => void): unknown;
  publish(channel: string, message: Buffer): Promise<number>;
  sPublish(channel: string, message: Buffer): Promise<number>;
  subscribe(channels: string | string[], listener: Listener, bufferMode: true): Promise<void>;
  unsubscribe(channels: string | string[], listener: Listener, bufferMode: true): Promise<void>;
  sSubscribe(channels: string | string[], listener: Listener, bufferMode: true): Promise<void>;
  sUnsubscribe(channels: string | string[], listener: Listener, bufferMode: true): Promise<void>;
  close(): Promise<void>;
  destroy(): void;
}
/**
 * The part of node-redis's cluster client the adapter uses besides PubSubClient: its masters, whose
 * connections (commands, and sharded pub/sub when a channel of theirs is subscribed) must all be
 * ready for the adapter to be up. The cluster's own `isReady` only says that it found its slots.
 */
interface ClusterClient extends PubSubClient {
  readonly masters: ReadonlyArray<{ client?: { readonly isReady: boolean } | undefined; pubSub?: { client: { readonly isReady: boolean } } | undefined }>;
}
type Listener = (message: Buffer, channel: Buffer) => void;
interface RedisModule {
  createClient(options: Record<string, unknown>): PubSubClient;
  createCluster(options: Record<string, unknown>): ClusterClient;
}

async function loadRedis(): Promise<RedisModule> {
  try {
    return (await import('redis')) as unknown as RedisModule;
  } catch (cause) {
    throw new WebSocketError(ErrorCode.MissingPeerDependency, 'wschan/redis needs the optional peer dependency `redis` (node-redis 5 or later): npm install redis', { cause });
  }
}

export class RedisAdapter implements TopicBus {
  /** This node's id (8 random bytes), in the header of every message it publishes. */
  readonly nodeId: Buffer = randomBytes(NODE_ID_BYTES);
  readonly options: Readonly<RedisAdapterSettings>;
  readonly #server: RedisAdapterHost;
  readonly #pub: PubSubClient;
  readonly #sub: PubSubClient;
  /** With `cluster`: the one cluster client (it is #pub and #sub: it keeps per-shard pub/sub connections). */
  readonly #cluster: ClusterClient | undefined;
  /** Where Redis is, for messages: the URL or the cluster's root nodes, without passwords. */
  readonly #where: string;
  readonly #broadcastChannel: string;
  readonly #topicPrefix: string;
  /** Topics with a local subscriber: what must be subscribed in Redis whenever it is up. */
  readonly #wanted = new Set<string>();
  /** Topics whose UNSUBSCRIBE could not be sent: node-redis would resubscribe them on reconnect. */
  readonly #stale = new Set<string>();
  #attachment: BusAttachment | undefined;
  #state: RedisAdapterState = 'down';
  #outage: RedisOutage | undefined;
  #unsentAtOutage = 0;
  #closing: Promise<void> | undefined;
  #onOutage: ((outage: RedisOutage) => void) | undefined;
  #onRecovered: ((recovery: RedisRecovery) => void) | undefined;
  #onError: ((error: Error) => void) | undefined;
  readonly #stats: Omit<RedisAdapterStats, 'subscribedTopics'> = {
    published: 0, sent: 0, reached: 0, unsent: 0, failed: 0, dropped: 0, queued: 0, queuedBytes: 0, received: 0, skippedOwn: 0, malformed: 0, outages: 0,
  };

  /**
   * Connect to Redis (two connections: one publishes, one subscribes), attach to `server` and
   * resolve once both are ready and the live topics are subscribed. Rejects with
   * `WS_ERR_REDIS_UNAVAILABLE` when Redis cannot be reached within `connectTimeoutMs`, and with
   * `WS_ERR_MISSING_PEER_DEPENDENCY` when `redis` is not installed.
   */
  static async connect(server: RedisAdapterHost, options?: RedisAdapterOptions): Promise<RedisAdapter> {
    const settings = parseRedisOptions(options);
    const adapter = new RedisAdapter(server, settings, await loadRedis());
    await adapter.#start();
    return adapter;
  }

  private constructor(server: RedisAdapterHost, settings: ReturnType<typeof parseRedisOptions>, redis: RedisModule) {
    const { clientOptions, ...options } = settings;
    this.options = Object.freeze(options);
    this.#server = server;
    this.#broadcastChannel = `${options.prefix}*`;
    this.#topicPrefix = `${options.prefix}t:`;
    const socket = {
      connectTimeout: options.connectTimeoutMs,
      reconnectStrategy: (retries: number) => backoffDelay(retries, options.minDelayMs, options.maxDelayMs),
      ...(clientOptions['socket'] as Record<string, unknown> | undefined),
    };
    // No offline queue: a command while Redis is down fails at once instead of piling up; the
    // adapter counts it and resubscribes from its own list when Redis is back.
    const defaults = { disableOfflineQueue: true, ...clientOptions, socket };
    if (options.cluster === undefined) {
      this.#where = `Redis at ${redactUrl(options.url)}`;
      this.#pub = redis.createClient({ url: options.url, ...defaults });
      this.#sub = redis.createClient({ url: options.url, ...defaults });
      for (const client of [this.#pub, this.#sub]) {
        client.on('error', this.#onClientError);
        client.on('end', this.#checkHealth);
        client.on('reconnecting', this.#checkHealth);
        client.on('ready', this.#checkHealth);
      }
      return;
    }
    // The cluster client routes SPUBLISH to the owner of the channel's hash slot and keeps one
    // SSUBSCRIBE connection per shard that owns a subscribed channel (Redis 7 sharded pub/sub).
    this.#where = `the Redis Cluster at ${options.cluster.rootNodes.map(redactUrl).join(', ')}`;
    const cluster = redis.createCluster({ rootNodes: options.cluster.rootNodes.map((url) => ({ url })), defaults });
    this.#cluster = cluster;
    this.#pub = cluster;
    this.#sub = cluster;
    cluster.on('error', this.#onClientError);
    cluster.on('node-error', this.#onClientError);
    for (const event of ['node-reconnecting', 'node-ready', 'node-disconnect', 'connect', 'disconnect']) cluster.on(event, this.#checkHealth);
    // A slot moved and node-redis could not follow the channel to its new shard: say so.
    cluster.on('sharded-channel-moved-error', (error: Error) => this.#onError?.(error));
  }

  /** Distinct connections (one cluster client, or the publishing and the subscribing client). */
  get #clients(): PubSubClient[] {
    return this.#cluster === undefined ? [this.#pub, this.#sub] : [this.#cluster];
  }

  /** Every connection the adapter relies on is ready (in a cluster: every master's). */
  #isReady(): boolean {
    const cluster = this.#cluster;
    if (cluster === undefined) return this.#pub.isReady && this.#sub.isReady;
    return cluster.isReady && cluster.masters.every((m) => (m.client === undefined || m.client.isReady) && (m.pubSub === undefined || m.pubSub.client.isReady));
  }

  async #start(): Promise<void> {
    const timeout = new Promise<never>((_, reject) => {
      const t = setTimeout(() => reject(new WebSocketError(ErrorCode.RedisUnavailable, `${this.#where} did not answer within ${this.options.connectTimeoutMs} ms`, { cause: this.#outage?.error })), this.options.connectTimeoutMs);
      t.unref();
    });
    try {
      await Promise.race([Promise.all(this.#clients.map((c) => c.connect())), timeout]);
      await Promise.race([this.#subscribe([this.#broadcastChannel]), timeout]);
    } catch (error) {
      for (const client of this.#clients) destroyQuietly(client);
      this.#state = 'closed';
      if (error instanceof WebSocketError) throw error;
      throw new WebSocketError(ErrorCode.RedisUnavailable, `cannot connect to ${this.#where}: ${(error as Error).message}`, { cause: error });
    }
    this.#state = 'up';
    this.#outage = undefined;
    // attachBus calls topicAdded for every live topic, which subscribes them.
    this.#attachment = this.#server.attachBus(this);
  }

  /** 'up' when both connections are ready; 'down' during an outage; 'closed' after close(). */
  get state(): RedisAdapterState {
    return this.#state;
  }

  get stats(): RedisAdapterStats {
    return { ...this.#stats, subscribedTopics: this.#wanted.size };
  }

  /** Called once when Redis becomes unreachable (either connection), with what node-redis said. */
  handleOutage(fn: (outage: RedisOutage) => void): this {
    this.#onOutage = fn;
    return this;
  }

  /** Called when both connections are back and every live topic is subscribed again. */
  handleRecovered(fn: (recovery: RedisRecovery) => void): this {
    this.#onRecovered = fn;
    return this;
  }

  /** Errors that are not an outage: a failed (un)subscribe, a malformed message. */
  handleError(fn: (error: Error) => void): this {
    this.#onError = fn;
    return this;
  }

  // ------------------------------------------------------------ TopicBus

  topicAdded(topic: string): void {
    if (this.#state === 'closed') return;
    this.#wanted.add(topic);
    this.#stale.delete(topic);
    if (this.#state === 'up') void this.#subscribe([this.#topicPrefix + topic]).catch(this.#onCommandError);
  }

  topicRemoved(topic: string): void {
    if (this.#state === 'closed') return;
    this.#wanted.delete(topic);
    if (this.#state !== 'up') {
      this.#stale.add(topic);
      return;
    }
    void this.#unsubscribe([this.#topicPrefix + topic]).catch(() => {
      if (!this.#wanted.has(topic)) this.#stale.add(topic);
    });
  }

  forward(topic: string | undefined, data: string | Uint8Array, isBinary: boolean, key: string | undefined, from: TopicBus | undefined): void {
    if (this.#state === 'closed') return;
    // Not relaying: what came in on another bus (another thread) reached Redis from its origin.
    if (!this.options.relay && from !== undefined) return;
    const stats = this.#stats;
    stats.published++;
    if (this.#state !== 'up') {
      stats.unsent++;
      return;
    }
    const bytes = (typeof data === 'string' ? data.length * 3 : data.byteLength) + 12 + (key === undefined ? 0 : key.length * 3);
    if (stats.queued >= this.options.maxQueue || stats.queuedBytes + bytes > this.options.maxQueueBytes || (key !== undefined && Buffer.byteLength(key) > MAX_KEY_BYTES)) {
      stats.dropped++;
      return;
    }
    const message = encodeEnvelope(this.nodeId, topic === undefined, data, isBinary, key);
    const channel = topic === undefined ? this.#broadcastChannel : this.#topicPrefix + topic;
    const size = message.length;
    stats.queued++;
    stats.queuedBytes += size;
    // One promise per publish is node-redis's API; per message, not per subscriber.
    (this.options.sharded ? this.#pub.sPublish(channel, message) : this.#pub.publish(channel, message)).then(
      (receivers) => {
        stats.queued--;
        stats.queuedBytes -= size;
        stats.sent++;
        stats.reached += receivers;
      },
      () => {
        stats.queued--;
        stats.queuedBytes -= size;
        stats.failed++;
      },
    );
  }

  // ------------------------------------------------------------ from Redis

  readonly #onMessage = (message: Buffer, channel: Buffer): void => {
    if (isFromNode(message, this.nodeId)) {
      this.#stats.skippedOwn++;
      return;
    }
    const env = decodeEnvelope(message);
    const name = channel.toString();
    const topic = name === this.#broadcastChannel ? undefined : name.startsWith(this.#topicPrefix) ? name.slice(this.#topicPrefix.length) : null;
    if (env === undefined || topic === null || env.broadcast !== (topic === undefined)) {
      this.#malformed(new Error(`message on Redis channel ${name} is not a wschan envelope`));
      return;
    }
    const options: PublishOptions = { isBinary: env.isBinary, key: env.key };
    try {
      this.#server.deliver(topic, env.payload, options, this, this.options.relay);
      this.#stats.received++;
    } catch (error) {
      // Bytes sent as text that are not UTF-8: publishTo refuses them before any subscriber sees them.
      this.#malformed(error as Error);
    }
  };

  #malformed(error: Error): void {
    this.#stats.malformed++;
    this.#onError?.(error);
  }

  #subscribe(channels: string[]): Promise<void> {
    // In a cluster the channels of one SSUBSCRIBE must share a slot: one command per channel.
    if (this.#cluster !== undefined) return perChannel(channels, (c) => this.#sub.sSubscribe(c, this.#onMessage, true));
    return this.options.sharded ? this.#sub.sSubscribe(channels, this.#onMessage, true) : this.#sub.subscribe(channels, this.#onMessage, true);
  }

  #unsubscribe(channels: string[]): Promise<void> {
    if (this.#cluster !== undefined) return perChannel(channels, (c) => this.#sub.sUnsubscribe(c, this.#onMessage, true));
    return this.options.sharded ? this.#sub.sUnsubscribe(channels, this.#onMessage, true) : this.#sub.unsubscribe(channels, this.#onMessage, true);
  }

  // ------------------------------------------------------------ health

  readonly #onClientError = (error: Error): void => {
    if (this.#outage !== undefined && this.#outage.error === undefined) this.#outage.error = error;
    this.#checkHealth(error);
  };

  readonly #onCommandError = (error: Error): void => {
    // A subscribe that fails because Redis just went down is redone on recovery.
    if (this.#state === 'up') this.#onError?.(error);
  };

  readonly #checkHealth = (error?: unknown): void => {
    if (this.#state === 'closed' || this.#attachment === undefined) return;
    const ready = this.#isReady();
    if (!ready && this.#state === 'up') {
      this.#state = 'down';
      this.#stats.outages++;
      this.#unsentAtOutage = this.#stats.unsent + this.#stats.failed;
      this.#outage = { since: Date.now(), error: error instanceof Error ? error : undefined };
      this.#onOutage?.(this.#outage);
    } else if (ready && this.#state === 'down' && this.#outage !== undefined) {
      void this.#recover(this.#outage);
    }
  };

  /** Both connections are ready again: restore the subscriptions, then report the recovery. */
  async #recover(outage: RedisOutage): Promise<void> {
    try {
      const stale = [...this.#stale].filter((t) => !this.#wanted.has(t)).map((t) => this.#topicPrefix + t);
      this.#stale.clear();
      if (stale.length > 0) await this.#unsubscribe(stale);
      // node-redis resubscribes the channels it knew; this adds what was wanted while it was down
      // (a channel it already has costs nothing: it only adds our listener to its set again).
      await this.#subscribe([this.#broadcastChannel, ...[...this.#wanted].map((t) => this.#topicPrefix + t)]);
    } catch {
      // Down again before it finished: the next 'ready' retries.
      return;
    }
    if (this.#state === 'closed' || this.#outage !== outage || !this.#isReady()) return;
    this.#state = 'up';
    this.#outage = undefined;
    this.#onRecovered?.({ since: outage.since, downMs: Date.now() - outage.since, unsent: this.#stats.unsent + this.#stats.failed - this.#unsentAtOutage });
  }

  // ------------------------------------------------------------ shutdown

  /**
   * Detach from the server, wait for the publishes in flight (when Redis is up), and close both
   * connections. Idempotent: every call returns the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const wasUp = this.#state === 'up';
    this.#state = 'closed';
    this.#attachment?.detach();
    this.#wanted.clear();
    for (const client of this.#clients) {
      if (wasUp && client.isReady) await client.close().catch(() => destroyQuietly(client));
      else destroyQuietly(client);
    }
  }
}

/** Run `fn` for each channel; resolves when all did, rejects with the first failure. */
async function perChannel(channels: string[], fn: (channel: string) => Promise<void>): Promise<void> {
  await Promise.all(channels.map(fn));
}

/** The URL without its password, for messages. */
function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/** Drop a connection whatever its state (destroy() throws on a client that is already closed). */
function destroyQuietly(client: PubSubClient): void {
  try {
    client.destroy();
  } catch {
    // already closed
  }
}
