/**
 * listen(): an error from the listening socket after it listens (a failed accept: ENFILE, ENOMEM,
 * EMFILE when libuv's reserve descriptor is gone) is reported to handleUpgradeError and does not
 * end the process; the server keeps accepting. (libuv absorbs a plain EMFILE itself by accepting
 * and closing, so the error is injected on the net.Server that listen() made.)
 */
import type { Server as NetServer } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connect, Server, type WebSocketError } from '../../src/index.js';
import { withTimeout } from '../helpers/net.js';

const made: NetServer[] = [];
vi.mock('node:net', async (importOriginal) => {
  const net = await importOriginal<typeof import('node:net')>();
  const createServer = ((...args: Parameters<typeof net.createServer>) => {
    const s = net.createServer(...args);
    made.push(s);
    return s;
  }) as typeof net.createServer;
  return { ...net, default: { ...net, createServer }, createServer };
});

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers.length = 0;
  made.length = 0;
});

function acceptError(): Error {
  return Object.assign(new Error('accept ENFILE'), { code: 'ENFILE', errno: -23, syscall: 'accept' });
}

describe('listen(): errors while accepting', () => {
  it('are reported as WS_ERR_SOCKET with req undefined, and the server keeps serving', async () => {
    const reports: Array<[unknown, WebSocketError]> = [];
    const server = new Server().handleUpgradeError((req, e) => reports.push([req, e]));
    servers.push(server);
    server.handleOpen((c) => void c.write('hello'));
    const { port } = await server.listen({ host: '127.0.0.1' });
    expect(made).toHaveLength(1);
    made[0]!.emit('error', acceptError());
    expect(reports).toHaveLength(1);
    const [req, error] = reports[0]!;
    expect(req).toBeUndefined();
    expect(error.code).toBe('WS_ERR_SOCKET');
    expect(error.status).toBeUndefined();
    expect(error.message).toBe('accepting a connection failed: accept ENFILE');
    expect((error.cause as Error).message).toBe('accept ENFILE');

    const conn = await connect(`ws://127.0.0.1:${port}`);
    const first = await withTimeout(conn[Symbol.asyncIterator]().next(), 3000, 'the first message');
    expect(first.value?.data.toString()).toBe('hello');
    await conn.close();
  });

  it('without handleUpgradeError, do not throw from the emit (no unhandled error event)', async () => {
    const server = new Server();
    servers.push(server);
    await server.listen({ host: '127.0.0.1' });
    expect(() => made[0]!.emit('error', acceptError())).not.toThrow();
  });
});
