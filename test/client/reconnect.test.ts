/**
 * reconnect(): a client connection that comes back after its server is killed and restarted,
 * with backoff, resubscription in handleOpen, a bounded hold buffer while disconnected, and a
 * clear end.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConnectionError,
  HandshakeError,
  reconnect,
  Server,
  type ReconnectAttempt,
  type ReconnectingClient,
  type ServerOptionsInput,
} from '../../src/index.js';
import { guardProcess, waitUntil, withTimeout } from '../helpers/net.js';

guardProcess();
const servers: Server<any>[] = [];
const clients: ReconnectingClient<any>[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A server on `port` (0: any) that records every message and every subscription per connection. */
async function start(port = 0, options: ServerOptionsInput = {}) {
  const got: string[] = [];
  const server = new Server(options).handleData((c, data) => {
    const text = data.toString();
    got.push(text);
    if (text.startsWith('subscribe:')) c.subscribe(text.slice(10));
  });
  const addr = await server.listen({ port, host: '127.0.0.1' });
  servers.push(server);
  return { server, port: addr.port, got, url: `ws://127.0.0.1:${addr.port}/` };
}

async function kill(server: Server<any>): Promise<void> {
  servers.splice(servers.indexOf(server), 1);
  await server.close();
}

function track<T extends ReconnectingClient<any>>(c: T): T {
  clients.push(c);
  return c;
}

describe('reconnect() after the server is killed and restarted', () => {
  it('comes back, runs handleOpen again (resubscribes), then sends what was written while down, in order', async () => {
    const first = await start();
    const opens: number[] = [];
    const attempts: ReconnectAttempt[] = [];
    const rc = track(
      reconnect(first.url, {
        initialDelay: 20,
        maxDelay: 100,
        handleOpen: (conn) => {
          opens.push(conn.id);
          return conn.write('subscribe:news').then(() => undefined);
        },
        handleReconnecting: (a) => attempts.push(a),
      }),
    );
    await withTimeout(rc.connected(), 3000, 'the first connection');
    await waitUntil(() => first.server.subscriberCount('news') === 1, 3000, 'the first subscription');
    await rc.write('before');
    await waitUntil(() => first.got.includes('before'), 3000, 'the first message');

    await kill(first.server);
    await waitUntil(() => rc.state !== 'open', 3000, 'the client to see the loss');
    expect(await rc.write('while-down-1')).toBe('queued');
    expect(rc.tryWrite('while-down-2')).toBe('queued');
    expect(rc.heldMessages).toBe(2);

    const second = await start(first.port);
    const conn = await withTimeout(rc.connected(), 5000, 'the reconnection');
    await waitUntil(() => second.got.length === 3, 3000, 'the held messages');
    expect(second.got).toEqual(['subscribe:news', 'while-down-1', 'while-down-2']);
    expect(second.server.subscriberCount('news')).toBe(1);
    expect(opens).toHaveLength(2);
    expect(opens[1]).toBe(conn.id);
    expect(rc.connections).toBe(2);
    expect(rc.heldMessages).toBe(0);
    // The loss was reported with the CloseInfo of the lost connection (the server's 1001).
    expect(attempts[0]!.attempt).toBe(1);
    expect(attempts[0]!.cause).toMatchObject({ code: 1001 });

    const end = await rc.close();
    expect(end).toMatchObject({ reason: 'closed', unsent: 0 });
    expect(rc.state).toBe('closed');
  });

  it('backs off exponentially with jitter up to the cap while the server stays down', async () => {
    const { server, url } = await start();
    const attempts: ReconnectAttempt[] = [];
    const rc = track(reconnect(url, { initialDelay: 8, factor: 2, maxDelay: 40, jitter: 0.5, handleReconnecting: (a) => attempts.push(a) }));
    await rc.connected();
    await kill(server);
    await waitUntil(() => attempts.length >= 6, 5000, 'six attempts');
    await rc.close();
    const bases = [8, 16, 32, 40, 40, 40];
    attempts.slice(0, 6).forEach((a, i) => {
      expect(a.attempt).toBe(i + 1);
      expect(a.delay).toBeGreaterThanOrEqual(Math.floor(bases[i]! / 2));
      expect(a.delay).toBeLessThanOrEqual(bases[i]!);
    });
    // Every failed attempt after the first wait is reported with its error.
    expect(attempts[1]!.cause).toBeInstanceOf(HandshakeError);
  });

  it('gives up after maxAttempts failed attempts in a row, with the reason, the last error and what was never sent', async () => {
    const { server, url } = await start();
    const rc = track(reconnect(url, { initialDelay: 1, maxDelay: 5, maxAttempts: 3 }));
    await rc.connected();
    await kill(server);
    await waitUntil(() => rc.state !== 'open', 3000, 'the loss');
    void rc.write('never sent');
    const end = await withTimeout(rc.ended, 5000, 'giving up');
    expect(end.reason).toBe('gave-up');
    expect(end.attempts).toBe(3);
    expect(end.error).toBeInstanceOf(HandshakeError);
    expect(end.error!.message).toMatch(/ECONNREFUSED/);
    expect(end.closeInfo?.code).toBe(1001);
    expect(end.unsent).toBe(1);
    expect(rc.state).toBe('closed');
    await expect(rc.write('late')).rejects.toMatchObject({ code: 'WS_ERR_CONNECTION_CLOSED' });
    await expect(rc.connected()).rejects.toBeInstanceOf(ConnectionError);
  });

  it('gives up at once on a refusal that will not change by itself (403), unless shouldReconnect says otherwise', async () => {
    const server = new Server().handleUpgrade(() => ({ status: 403, reason: 'no' }));
    const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
    servers.push(server);
    const rc = track(reconnect(`ws://127.0.0.1:${port}/`, { initialDelay: 1 }));
    const end = await withTimeout(rc.ended, 3000, 'the end');
    expect(end).toMatchObject({ reason: 'gave-up', attempts: 1 });
    expect((end.error as HandshakeError).status).toBe(403);
    let asked = 0;
    const stubborn = track(reconnect(`ws://127.0.0.1:${port}/`, { initialDelay: 1, shouldReconnect: () => ++asked < 3 }));
    expect((await withTimeout(stubborn.ended, 3000, 'the end')).attempts).toBe(3);
  });

  it('close() while waiting to reconnect ends it at once; close() is idempotent; the server saw 1000 before', async () => {
    const { server, url } = await start();
    const closes: number[] = [];
    server.handleClose((_c, info) => closes.push(info.code));
    const rc = track(reconnect(url, { initialDelay: 60_000 }));
    const conn = await rc.connected();
    const end = await rc.close(1000, 'bye');
    expect(end).toMatchObject({ reason: 'closed', closeInfo: { code: 1000 } });
    expect(await rc.close()).toBe(end);
    await waitUntil(() => closes.length === 1, 3000, 'the server close');
    expect(closes).toEqual([1000]);
    expect(conn.state).toBe('closed');

    // Now one that is waiting out a long backoff.
    const other = await start();
    const waiting = track(reconnect(other.url, { initialDelay: 60_000 }));
    await waiting.connected();
    await kill(other.server);
    await waitUntil(() => waiting.state === 'waiting', 3000, 'the backoff');
    const e = await withTimeout(waiting.close(), 1000, 'close during backoff');
    expect(e.reason).toBe('closed');
  });

  it('an AbortSignal ends it with reason aborted', async () => {
    const { url } = await start();
    const ac = new AbortController();
    const rc = track(reconnect(url, { signal: ac.signal }));
    await rc.connected();
    ac.abort();
    const end = await withTimeout(rc.ended, 3000, 'the end');
    expect(end.reason).toBe('aborted');
  });
});

describe('writes while disconnected follow the overflow policy (bounded in count and bytes)', () => {
  async function down(options: Parameters<typeof reconnect>[1]) {
    const s = await start();
    const rc = track(reconnect(s.url, { initialDelay: 60_000, ...options }));
    await rc.connected();
    await kill(s.server);
    await waitUntil(() => rc.state === 'waiting', 3000, 'the loss');
    return rc;
  }

  it("'drop-oldest' keeps the newest maxQueuedFrames messages", async () => {
    const rc = await down({ overflow: 'drop-oldest', maxQueuedFrames: 3 });
    for (let i = 0; i < 5; i++) expect(await rc.write(`m${i}`)).toBe('queued');
    expect(rc.heldMessages).toBe(3);
    expect(rc.dropped).toBe(2);
  });

  it("'drop-newest' refuses what does not fit, counted in bytes too", async () => {
    const rc = await down({ overflow: 'drop-newest', maxQueuedBytes: 10 });
    expect(await rc.write('12345')).toBe('queued');
    expect(await rc.write('12345')).toBe('queued');
    expect(await rc.write('1')).toBe('dropped');
    expect(rc.tryWrite('1')).toBe('dropped');
    expect(rc.heldBytes).toBe(10);
    expect(rc.dropped).toBe(2);
  });

  it("'close' rejects a write that does not fit with WS_ERR_OUTBOX_FULL", async () => {
    const rc = await down({ overflow: 'close', maxQueuedFrames: 1 });
    expect(await rc.write('a')).toBe('queued');
    await expect(rc.write('b')).rejects.toMatchObject({ code: 'WS_ERR_OUTBOX_FULL' });
    expect(rc.tryWrite('b')).toBe('full');
  });

  it("'wait' (the default) makes a write wait for the next connection, at most maxWaiters of them; the end rejects them", async () => {
    const rc = await down({ maxQueuedFrames: 1, maxWaiters: 2 });
    expect(await rc.write('held')).toBe('queued');
    expect(rc.tryWrite('x')).toBe('full');
    const w1 = rc.write('w1');
    const w2 = rc.write('w2');
    await expect(rc.write('w3')).rejects.toMatchObject({ code: 'WS_ERR_TOO_MANY_WAITERS' });
    const end = await rc.close();
    expect(end.unsent).toBe(3);
    await expect(w1).rejects.toMatchObject({ code: 'WS_ERR_CONNECTION_CLOSED' });
    await expect(w2).rejects.toMatchObject({ code: 'WS_ERR_CONNECTION_CLOSED' });
  });

  it("'wait': the waiting writes go out after the held ones once the server is back", async () => {
    const first = await start();
    const rc = track(reconnect(first.url, { initialDelay: 10, maxDelay: 20, maxQueuedFrames: 1 }));
    await rc.connected();
    await kill(first.server);
    await waitUntil(() => rc.state !== 'open', 3000, 'the loss');
    void rc.write('held');
    const waiting = rc.write('waited');
    const second = await start(first.port);
    expect(await withTimeout(waiting, 5000, 'the waiting write')).toBe('queued');
    await waitUntil(() => second.got.length === 2, 3000, 'both messages');
    expect(second.got).toEqual(['held', 'waited']);
  });
});
