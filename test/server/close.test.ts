/** server.close(): 1001 to everyone, no new connections, one promise, and a bound on the wait. */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { connect, HandshakeError, type CloseInfo } from '../../src/index.js';
import { Opcode } from '../../src/protocol/constants.js';
import { parseClosePayload } from '../../src/protocol/close.js';
import { RawClient, closeAll, deferred, guardProcess, rawHandshake, startServer, upgradeRequest, waitUntil, withTimeout } from '../helpers/net.js';

guardProcess();
afterEach(closeAll);

describe('server.close()', () => {
  it('sends 1001 Going Away to every open connection and resolves once they have closed', async () => {
    const { server, url } = await startServer();
    const a = await connect(url);
    const b = await connect(url);
    const w = new WebSocket(url);
    const wClosed = new Promise<[number, string]>((r) => w.on('close', (code, reason) => r([code, reason.toString()])));
    await new Promise((r) => w.on('open', r));
    await waitUntil(() => server.clientCount === 3, 2000, 'three connections');
    await withTimeout(server.close(), 3000, 'server.close()');
    const [ia, ib] = await Promise.all([a.closed, b.closed]);
    for (const info of [ia, ib]) {
      expect(info.code).toBe(1001);
      expect(info.reason).toBe('server shutting down');
      expect(info.wasClean).toBe(true);
    }
    expect(await wClosed).toEqual([1001, 'server shutting down']);
    expect(server.clientCount).toBe(0);
  });

  it('reports each connection closed by close() to handleClose with 1001', async () => {
    const infos: CloseInfo[] = [];
    const { server, url } = await startServer(undefined, (s) => s.handleClose((_c, i) => infos.push(i)));
    await connect(url);
    await connect(url);
    await waitUntil(() => server.clientCount === 2, 2000, 'two connections');
    await server.close();
    expect(infos.map((i) => [i.code, i.wasClean])).toEqual([
      [1001, true],
      [1001, true],
    ]);
  });

  it('stops accepting new connections', async () => {
    const { server, url } = await startServer();
    await server.close();
    const err = await connect(url, { handshakeTimeout: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as HandshakeError).code).toBe('WS_ERR_HANDSHAKE_FAILED');
    expect((err as HandshakeError).message).toMatch(/^connection failed: connect ECONNREFUSED/);
  });

  it('is idempotent: every call returns the same promise', async () => {
    const { server, url } = await startServer();
    await connect(url);
    const p1 = server.close();
    const p2 = server.close();
    expect(p2).toBe(p1);
    await p1;
    expect(server.close()).toBe(p1);
  });

  it('resolves at once with no connections', async () => {
    const { server } = await startServer();
    const t0 = Date.now();
    await server.close();
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('terminates connections that never answer the Close frame after shutdownTimeout', async () => {
    const closed = deferred<CloseInfo>();
    const { server, port } = await startServer({ shutdownTimeout: 300, closeTimeout: 10_000 }, (s) => s.handleClose((_c, i) => closed.resolve(i)));
    const { client, res } = await rawHandshake(port, upgradeRequest());
    expect(res.status).toBe(101);
    await waitUntil(() => server.clientCount === 1, 2000, 'the connection');
    const t0 = Date.now();
    await withTimeout(server.close(), 3000, 'server.close()');
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2000);
    // The peer got the Close frame (1001) and nothing answered it, so TCP was cut.
    const frames = client.frames();
    expect(frames.map((f) => f.opcode)).toEqual([Opcode.Close]);
    expect(parseClosePayload(frames[0]!.payload)).toEqual({ code: 1001, reason: 'server shutting down' });
    await client.waitClosed();
    const info = await closed.promise;
    expect(info.code).toBe(1006);
    expect(info.wasClean).toBe(false);
  });

  it('a handshake cut short by close() is not reported as timed out afterwards', async () => {
    const reports: string[] = [];
    const { server, port } = await startServer({ handshakeTimeout: 200 }, (s) => {
      s.handleUpgrade(() => new Promise(() => {}));
      s.handleUpgradeError((_r, e) => reports.push(`${e.status} ${e.code}`));
    });
    const client = await RawClient.connect(port);
    client.write(upgradeRequest());
    await new Promise((r) => setTimeout(r, 50));
    await server.close();
    await client.waitClosed();
    await new Promise((r) => setTimeout(r, 400));
    expect(reports).toEqual([]);
  });

  it('destroys a handshake still in progress', async () => {
    const { server, port } = await startServer(undefined, (s) => s.handleUpgrade(() => new Promise(() => {})));
    const client = await RawClient.connect(port);
    client.write(upgradeRequest());
    await new Promise((r) => setTimeout(r, 50));
    await withTimeout(server.close(), 2000, 'server.close()');
    await client.waitClosed();
  });
});
