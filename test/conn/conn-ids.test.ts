/** Connection ids are counted per side: a process that is also a client numbers its server connections 1, 2, 3... */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { Server, connect, type Conn } from '../../src/index.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe('Conn.id', () => {
  it('server connections count on, unmoved by client connections made in between', async () => {
    const server = new Server();
    const opened: Conn[] = [];
    server.handleOpen((c) => void opened.push(c));
    const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
    cleanup.push(() => server.close());
    // Another peer's server, so that the client connections below make no server connection here.
    const other = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => other.once('listening', r));
    cleanup.push(() => new Promise((r) => other.close(r)));
    const otherUrl = `ws://127.0.0.1:${(other.address() as { port: number }).port}/`;

    const a = await connect(`ws://127.0.0.1:${port}/`);
    const elsewhere = [await connect(otherUrl), await connect(otherUrl), await connect(otherUrl)];
    const b = await connect(`ws://127.0.0.1:${port}/`);
    await new Promise((r) => setTimeout(r, 20));
    expect(opened).toHaveLength(2);
    expect(opened[1]!.id).toBe(opened[0]!.id + 1);
    // The client side has its own sequence: a, three elsewhere, b.
    expect([a, ...elsewhere, b].map((c) => c.id - a.id)).toEqual([0, 1, 2, 3, 4]);
    for (const c of [a, b, ...elsewhere]) await c.close();
  });
});
