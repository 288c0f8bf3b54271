import { Type, type Static } from '@sinclair/typebox';
import { parseOptions } from '../server/options.js';

/** Options of `RedisAdapter.connect` (validated; see the README's "Redis" section). */
export const RedisAdapterOptionsSchema = Type.Object(
  {
    /** Where Redis is: `redis://[user:password@]host:port[/db]` or `rediss://` for TLS. */
    url: Type.String({ default: 'redis://127.0.0.1:6379', minLength: 1 }),
    /** Prefix of the Redis channel names, so several applications can share one Redis. */
    prefix: Type.String({ default: 'wschan:' }),
    /**
     * Sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis 7): the commands that keep a channel on one shard
     * of a cluster. The connections go to `url` (one Redis): no cluster routing yet.
     */
    sharded: Type.Boolean({ default: false }),
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
export type RedisAdapterSettings = Static<typeof RedisAdapterOptionsSchema>;
export type RedisAdapterOptions = Partial<RedisAdapterSettings> & {
  /**
   * Passed to node-redis's `createClient` as they are, for what the adapter does not set itself
   * (TLS, credentials, a `socket.reconnectStrategy` of your own). Not validated here.
   */
  clientOptions?: Record<string, unknown> | undefined;
};

export function parseRedisOptions(input: RedisAdapterOptions | undefined): RedisAdapterSettings & { clientOptions: Record<string, unknown> } {
  const { clientOptions, ...rest } = input ?? {};
  const settings = parseOptions(RedisAdapterOptionsSchema, rest, 'Redis adapter options');
  if (settings.maxDelayMs < settings.minDelayMs) settings.maxDelayMs = settings.minDelayMs;
  return { ...settings, clientOptions: clientOptions ?? {} };
}

/** Delay before reconnect attempt `retries` (0-based): doubling from `min` up to `max`, ±20% jitter. */
export function backoffDelay(retries: number, min: number, max: number): number {
  const base = Math.min(max, min * 2 ** Math.min(retries, 20));
  return Math.max(1, Math.round(base * (0.8 + Math.random() * 0.4)));
}
