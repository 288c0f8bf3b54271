/**
 * Request and response over typed messages (the "ack"): a request gets its typed reply, the error
 * the handler threw, or a timeout; outstanding requests are bounded; every wait ends when the
 * connection closes. Also the client's mirror-image handlers and both sides' counters.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/index.js';
import { TypedClient, TypedMessageError, TypedServer } from '../../src/typed/index.js';
import { closeAll, deferred, guardProcess, startServer, waitUntil } from '../helpers/net.js';
import { testProtocol } from './fixtures-protocol.js';

guardProcess();
afterEach(closeAll);

async function setup(options: { requestTimeout?: number; maxPendingRequests?: number } = {}) {
  const release = deferred<void>();
  let typed!: TypedServer<typeof testProtocol>;
  const { server, url } = await startServer(undefined, (s) => {
    typed = new TypedServer(s, testProtocol)
      .handleMessage('join', (_conn, msg) => {
        if (msg.room === 'full') throw new TypedMessageError(ErrorCode.RequestFailed, 'room is full');
        return { room: msg.room, members: 3 };
      })
      .handleMessage('slow', async (_conn, msg) => {
        if (msg.ms > 0) await release.promise;
        return { room: 'slow', members: msg.ms };
      })
      .handleMessage('chat', (conn, msg) => conn.send('said', { from: conn.id, text: msg.text }));
  });
  const said: string[] = [];
  const client = new TypedClient(testProtocol, options).handleMessage('said', (_conn, msg) => void said.push(msg.text));
  const conn = await client.connect(url);
  return { server, typed, client, conn, said, release };
}

describe('typed messages: request and response', () => {
  it('a request resolves with the typed reply; the handler sees the payload; counters on both sides', async () => {
    const { typed, client, conn, said } = await setup();
    const r = await conn.request('join', { room: 'lobby' });
    expect(r).toEqual({ room: 'lobby', members: 3 });
    await conn.send('chat', { text: 'hi' });
    await waitUntil(() => said.length === 1, 2000, 'the said message');
    expect(said).toEqual(['hi']);
    expect(typed.stats.received).toMatchObject({ join: 1, chat: 1 });
    expect(typed.stats.sent).toMatchObject({ joined: 1, said: 1 });
    expect(client.stats.sent).toMatchObject({ join: 1, chat: 1 });
    expect(client.stats.received).toMatchObject({ joined: 1, said: 1 });
    expect(conn.pendingRequests).toBe(0);
    await conn.close();
  });

  it('requests run in order and each gets its own reply (ids match)', async () => {
    const { conn } = await setup();
    const replies = await Promise.all(['a', 'b', 'c', 'd'].map((room) => conn.request('join', { room })));
    expect(replies.map((r) => r.room)).toEqual(['a', 'b', 'c', 'd']);
    await conn.close();
  });

  it('a TypedMessageError thrown by the handler rejects the request with it; the connection stays open', async () => {
    const { conn } = await setup();
    const err = await conn.request('join', { room: 'full' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypedMessageError);
    expect(err).toMatchObject({ code: 'WS_ERR_REQUEST_FAILED', message: 'room is full' });
    expect(await conn.request('join', { room: 'ok' })).toEqual({ room: 'ok', members: 3 });
    await conn.close();
  });

  it('a request whose payload fails the server schema is rejected with the path and the rule', async () => {
    const { conn } = await setup();
    // The types forbid this payload; a JavaScript caller can still send it.
    const err = await conn.request('join', { room: 5 as unknown as string }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'WS_ERR_INVALID_MESSAGE', kind: 'join', path: '/room', rule: 'type' });
    await conn.close();
  });

  it('a request without a reply in time is rejected with WS_ERR_REQUEST_TIMEOUT, and the late reply is counted as stray', async () => {
    const { client, conn, release } = await setup({ requestTimeout: 50 });
    const err = await conn.request('slow', { ms: 1 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'WS_ERR_REQUEST_TIMEOUT', kind: 'slow' });
    expect(client.stats.requestsTimedOut).toBe(1);
    release.resolve();
    await waitUntil(() => client.stats.strayReplies === 1, 2000, 'the late reply');
    expect(conn.pendingRequests).toBe(0);
    await conn.close();
  });

  it('at most maxPendingRequests wait at once: one more is refused with WS_ERR_TOO_MANY_REQUESTS', async () => {
    const { conn, release } = await setup({ maxPendingRequests: 3 });
    const waiting = [1, 2, 3].map((ms) => conn.request('slow', { ms }));
    const err = await conn.request('slow', { ms: 4 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'WS_ERR_TOO_MANY_REQUESTS' });
    expect(conn.pendingRequests).toBe(3);
    release.resolve();
    expect((await Promise.all(waiting)).map((r) => r.members)).toEqual([1, 2, 3]);
    await conn.close();
  });

  it('closing the connection ends every wait with WS_ERR_CONNECTION_CLOSED, and later requests fail at once', async () => {
    const { conn } = await setup();
    const waiting = [1, 2].map((ms) => conn.request('slow', { ms }).catch((e: unknown) => e));
    void conn.close();
    for (const err of await Promise.all(waiting)) expect(err).toMatchObject({ code: 'WS_ERR_CONNECTION_CLOSED' });
    expect(await conn.request('join', { room: 'x' }).catch((e: unknown) => e)).toMatchObject({ code: 'WS_ERR_CONNECTION_CLOSED' });
    expect(conn.pendingRequests).toBe(0);
  });

  it('an AbortSignal ends the wait with WS_ERR_ABORTED', async () => {
    const { conn } = await setup();
    const ac = new AbortController();
    const p = conn.request('slow', { ms: 1 }, { signal: ac.signal }).catch((e: unknown) => e);
    ac.abort();
    expect(await p).toMatchObject({ code: 'WS_ERR_ABORTED' });
    expect(conn.pendingRequests).toBe(0);
    await conn.close();
  });

  it('a kind that is not a request is refused by request(); an unknown kind by send() (JavaScript callers)', async () => {
    const { conn } = await setup();
    expect(await (conn.request as (k: string, p: unknown) => Promise<unknown>)('chat', { text: 'x' }).catch((e: unknown) => e)).toMatchObject({ code: 'WS_ERR_INVALID_ARGUMENT' });
    expect(() => (conn.send as (k: string, p: unknown) => unknown)('nope', {})).toThrow(/not a kind this end sends/);
    await conn.close();
  });

  it('validateOutgoing: a payload that fails its own schema throws before anything is sent', async () => {
    const { url } = await startServer(undefined, (s) => void new TypedServer(s, testProtocol));
    const conn = await new TypedClient(testProtocol, { validateOutgoing: true }).connect(url);
    expect(() => conn.send('chat', { text: 'x'.repeat(21) })).toThrow(TypedMessageError);
    await conn.close();
  });
});
