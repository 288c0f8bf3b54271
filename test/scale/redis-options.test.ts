/** Options of the Redis adapter (src/scale/redis-options.ts) and its reconnect backoff. */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/index.js';
import { backoffDelay, parseRedisOptions } from '../../src/scale/redis-options.js';

describe('Redis adapter options', () => {
  it('fills the defaults and keeps clientOptions as given (functions included)', () => {
    const strategy = (): number => 1;
    const o = parseRedisOptions({ clientOptions: { socket: { reconnectStrategy: strategy } } });
    expect(o).toMatchObject({ url: 'redis://127.0.0.1:6379', prefix: 'wschan:', sharded: false, relay: true, maxQueue: 4096, maxQueueBytes: 8 * 1024 * 1024, minDelayMs: 50, maxDelayMs: 2000, connectTimeoutMs: 5000 });
    expect((o.clientOptions['socket'] as { reconnectStrategy: unknown }).reconnectStrategy).toBe(strategy);
  });

  it('names each bad path in an OptionsError', () => {
    expect(() => parseRedisOptions({ maxQueue: 0 })).toThrow(expect.objectContaining({ code: ErrorCode.InvalidOptions, message: expect.stringContaining('/maxQueue') }));
    expect(() => parseRedisOptions({ url: '' })).toThrow(expect.objectContaining({ code: ErrorCode.InvalidOptions, message: expect.stringContaining('/url') }));
    expect(() => parseRedisOptions({ sharded: 'yes' } as never)).toThrow(expect.objectContaining({ code: ErrorCode.InvalidOptions, message: expect.stringContaining('/sharded') }));
  });

  it('cluster: rootNodes are required and not empty; sharded defaults to true with it and stays false without it', () => {
    const o = parseRedisOptions({ cluster: { rootNodes: ['redis://127.0.0.1:7000'] } });
    expect(o.sharded).toBe(true);
    expect(o.cluster).toEqual({ rootNodes: ['redis://127.0.0.1:7000'] });
    expect(parseRedisOptions({ cluster: { rootNodes: ['redis://a:1'] }, sharded: true }).sharded).toBe(true);
    expect(parseRedisOptions({}).sharded).toBe(false);
    expect(parseRedisOptions({ sharded: true }).sharded).toBe(true);
    expect(() => parseRedisOptions({ cluster: { rootNodes: [] } })).toThrow(expect.objectContaining({ code: ErrorCode.InvalidOptions, message: expect.stringContaining('/cluster/rootNodes') }));
    expect(() => parseRedisOptions({ cluster: {} } as never)).toThrow(expect.objectContaining({ code: ErrorCode.InvalidOptions, message: expect.stringContaining('/cluster/rootNodes') }));
    expect(() => parseRedisOptions({ cluster: { rootNodes: ['redis://a:1'], nodes: [] } } as never)).toThrow(expect.objectContaining({ code: ErrorCode.InvalidOptions }));
  });

  it('cluster with sharded: false, or with url, is a clear OptionsError', () => {
    expect(() => parseRedisOptions({ cluster: { rootNodes: ['redis://a:1'] }, sharded: false })).toThrow(expect.objectContaining({ code: ErrorCode.InvalidOptions, message: expect.stringContaining('/cluster needs sharded pub/sub') }));
    expect(() => parseRedisOptions({ cluster: { rootNodes: ['redis://a:1'] }, url: 'redis://b:2' })).toThrow(expect.objectContaining({ code: ErrorCode.InvalidOptions, message: expect.stringContaining('either /url') }));
  });

  it('a maxDelayMs under minDelayMs is raised to it', () => {
    expect(parseRedisOptions({ minDelayMs: 500, maxDelayMs: 100 }).maxDelayMs).toBe(500);
  });

  it('backoff doubles from min to max, within ±20% jitter', () => {
    for (let retries = 0; retries < 30; retries++) {
      const base = Math.min(1000, 10 * 2 ** retries);
      for (let k = 0; k < 20; k++) {
        const d = backoffDelay(retries, 10, 1000);
        expect(d).toBeGreaterThanOrEqual(Math.floor(base * 0.8));
        expect(d).toBeLessThanOrEqual(Math.ceil(base * 1.2));
      }
    }
  });
});
