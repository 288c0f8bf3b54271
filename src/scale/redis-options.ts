import { Type, type Static } from '@sinclair/typebox';
import { parseOptions } from '../server/options.js';
import { OptionsError } from '../protocol/errors.js';

/** Options of `RedisAdapter.connect` (validated; see the README's "Redis" section). */
export const RedisAdapterOptionsSchema = Type.Object(
  {
    /** Where Redis is: `redis://[user:password@]host:port[/db]` or `rediss://` for TLS. */
    url: Type.String({ default: 'redis://127.0.0.1:6379', minLength: 1 }),
    /** Prefix of the Redis channel names, so several applications can share one Redis. */
    prefix: Type.String({ default: 'wschan:' }),
    /**
     * Sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis 7): the commands that keep a channel on one shard
     * of a cluster. Without `cluster` the connections go to `url` (one Redis); with it, to the
     * shard that owns each channel's hash slot. `true` by default when `cluster` is given.
     */
    sharded: Type.Optional(Type.Boolean()),
    /**
     * A Redis Cluster (node-redis's cluster client): `rootNodes` are `redis://host:port` URLs of some
     * of its nodes, from which the client discovers the others and the slot map. Every channel is
     * then subscribed on, and published to, the shard that owns it (sharded pub/sub only).
     */
    cluster: Type.Optional(
      Type.Object(
        {
          rootNodes: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
        },
        { additionalProperties: false },
      ),
    ),
    /**
     * Whether a message from Redis is also handed to the server's other buses (and a message that
     * came in on another bus is published to Redis). `false` when the adapter is attached in every
     * worker thread beside the thread bus: then every thread talks to Redis for itself.
     */
    relay: Type.Boolean({ default: true }),
    /** Publishes handed to Redis and not yet acknowledged, at most; past it a publish is dropped and counted. */
    maxQueue: Type.Integer({ minimum: 1, default: 4096 }),
    /** The same bound in bytes (header + payload). */
    maxQueueBytes: Type.Integer({ minimum: 1, default: 8 * 1024 * 1024 }),
    /** Reconnect backoff: the first retry after `minDelayMs`, doubling up to `maxDelayMs`, with jitter. */
    minDelayMs: Type.Integer({ minimum: 1, default: 50 }),
    maxDelayMs: Type.Integer({ minimum: 1, default: 2000 }),
    /** How long `connect` waits for the first connection before it fails. */
    connectTimeoutMs: Type.Integer({ minimum: 1, default: 5000 }),
  },
  { additionalProperties: false },
);
type ParsedSettings = Static<typeof RedisAdapterOptionsSchema>;
export type RedisAdapterSettings = Omit<ParsedSettings, 'sharded'> & { sharded: boolean };
export type RedisAdapterOptions = Partial<RedisAdapterSettings> & {
  /**
   * Passed to node-redis's `createClient` as they are (with `cluster`: as the `defaults` of every
   * node's client), for what the adapter does not set itself (TLS, credentials, a
   * `socket.reconnectStrategy` of your own). Not validated here.
   */
  clientOptions?: Record<string, unknown> | undefined;
};

export function parseRedisOptions(input: RedisAdapterOptions | undefined): RedisAdapterSettings & { clientOptions: Record<string, unknown> } {
  const { clientOptions, ...rest } = input ?? {};
  const parsed = parseOptions(RedisAdapterOptionsSchema, rest, 'Redis adapter options');
  if (parsed.cluster !== undefined) {
    // Classic PUBLISH in a cluster reaches every shard (no scaling), and one URL is not a cluster.
    if (parsed.sharded === false) throw new OptionsError('invalid Redis adapter options: /cluster needs sharded pub/sub (leave /sharded unset or true)');
    if (rest.url !== undefined) throw new OptionsError('invalid Redis adapter options: give either /url (one Redis) or /cluster (its rootNodes), not both');
  }
  const settings: RedisAdapterSettings = { ...parsed, sharded: parsed.sharded ?? parsed.cluster !== undefined };
  if (settings.maxDelayMs < settings.minDelayMs) settings.maxDelayMs = settings.minDelayMs;
  return { ...settings, clientOptions: clientOptions ?? {} };
}

/** Delay before reconnect attempt `retries` (0-based): doubling from `min` up to `max`, ±20% jitter. */
export function backoffDelay(retries: number, min: number, max: number): number {
  const base = Math.min(max, min * 2 ** Math.min(retries, 20));
  return Math.max(1, Math.round(base * (0.8 + Math.random() * 0.4)));
}
