/**
 * Leaving `for await (const m of conn)` early closes the connection with 1000, as leaving the
 * loop over a Node Readable destroys the stream: nobody is left to read.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type CloseInfo, type Conn } from '../../src/index.js';
import { closeAll, deferred, guardProcess, startServer, withTimeout } from '../helpers/net.js';

guardProcess();
afterEach(closeAll);

/** A server that sends `count` messages on open and reports how each connection closed. */
async function sender(count: number) {
  const closes = deferred<CloseInfo>();
  const { url } = await startServer(undefined, (s) =>
    s.handleOpen((c) => {
      for (let i = 0; i < count; i++) void c.write(`m${i}`);
    }).handleClose((_c, info) => closes.resolve(info)),
  );
  return { url, serverClosed: closes.promise };
}

async function expectClosedNormally(conn: Conn, serverClosed: Promise<CloseInfo>): Promise<void> {
  const info = await withTimeout(conn.closed, 3000, 'the client connection to close');
  expect(info).toMatchObject({ code: 1000, wasClean: true });
  expect((await withTimeout(serverClosed, 3000, 'the server to see the close')).code).toBe(1000);
}

describe('for await over a Conn', () => {
  it('break closes the connection with 1000 (the server sees a clean close)', async () => {
    const { url, serverClosed } = await sender(5);
    const conn = await connect(url);
    const got: string[] = [];
    for await (const m of conn) {
      got.push(m.data.toString());
      if (got.length === 2) break;
    }
    expect(got).toEqual(['m0', 'm1']);
    expect(conn.state).not.toBe('open');
    await expectClosedNormally(conn, serverClosed);
  });

  it('return from inside the loop closes it with 1000', async () => {
    const { url, serverClosed } = await sender(3);
    const conn = await connect(url);
    const first = await (async () => {
      for await (const m of conn) return m.data.toString();
      return undefined;
    })();
    expect(first).toBe('m0');
    await expectClosedNormally(conn, serverClosed);
  });

  it('a throw inside the loop closes it with 1000 and the error reaches the caller', async () => {
    const { url, serverClosed } = await sender(3);
    const conn = await connect(url);
    const err = await (async () => {
      for await (const m of conn) throw new Error(`bad ${m.data.toString()}`);
    })().catch((e: unknown) => e);
    expect((err as Error).message).toBe('bad m0');
    await expectClosedNormally(conn, serverClosed);
  });

  it('the iterator\'s own throw() closes it too', async () => {
    const { url, serverClosed } = await sender(3);
    const conn = await connect(url);
    const it = conn[Symbol.asyncIterator]();
    expect((await it.next()).value?.data.toString()).toBe('m0');
    await expect(it.throw!(new Error('stop'))).rejects.toThrow('stop');
    await expectClosedNormally(conn, serverClosed);
  });

  it('a loop that ends because the peer closed leaves the close as the peer made it', async () => {
    const { url } = await startServer(undefined, (s) => s.handleOpen((c) => void c.write('bye').then(() => c.close(4001, 'done'))));
    const conn = await connect(url);
    const got: string[] = [];
    for await (const m of conn) got.push(m.data.toString());
    expect(got).toEqual(['bye']);
    expect((await conn.closed).code).toBe(4001);
  });
});
