/** permessage-deflate between our own client and server, in both server modes. */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Conn, type Message } from '../../src/index.js';
import { closeAll, guardProcess, startServer, waitUntil, withTimeout } from '../helpers/net.js';

guardProcess();
afterEach(closeAll);

const json = (i: number): string => JSON.stringify({ id: i, event: 'tick', payload: 'the same text in every message, again and again' });

async function echo(deflate: object | boolean) {
  let serverConn: Conn<undefined> | undefined;
  const rsv1: boolean[] = [];
  const s = await startServer({ deflate }, (srv) => {
    srv.handleOpen((c) => void (serverConn = c));
    srv.handleFrame((_c, f) => void rsv1.push(f.rsv1));
    srv.handleData((c, d, b) => c.write(Buffer.from(d), b));
  });
  return { ...s, rsv1, conn: () => serverConn };
}

async function roundTrip(conn: Conn<undefined>, n: number): Promise<number> {
  const it = conn[Symbol.asyncIterator]();
  let payload = 0;
  for (let i = 0; i < n; i++) {
    payload += json(i).length;
    await conn.write(json(i));
  }
  for (let i = 0; i < n; i++) {
    const r = await withTimeout(it.next(), 3000, `message ${i}`);
    expect((r.value as Message).data.toString()).toBe(json(i));
  }
  return payload;
}

describe('wschan client <-> wschan server with permessage-deflate', () => {
  it("mode 'dedicated' and client defaults: context takeover both ways, compresses over many messages", async () => {
    const s = await echo({ threshold: 0, mode: 'dedicated' });
    const conn = await connect(s.url, { deflate: { threshold: 0 } });
    expect(conn.extensions).toBe('permessage-deflate');
    const payload = await roundTrip(conn, 300);
    expect(s.rsv1.every(Boolean)).toBe(true);
    expect(conn.bytesOut).toBeLessThan(payload / 4);
    expect(conn.bytesIn).toBeLessThan(payload / 4);
    await conn.close();
  });

  it("deflate: true defaults to mode 'shared' (bench/deflate-modes.mjs: a third of the memory per connection)", async () => {
    const s = await echo(true);
    const conn = await connect(s.url, { deflate: true });
    expect(conn.extensions).toBe('permessage-deflate; server_no_context_takeover');
    await conn.close();
  });

  it("mode 'shared' imposes server_no_context_takeover and still round-trips", async () => {
    const s = await echo({ threshold: 0, mode: 'shared' });
    const conn = await connect(s.url, { deflate: { threshold: 0 } });
    expect(conn.extensions).toContain('server_no_context_takeover');
    await roundTrip(conn, 100);
    await waitUntil(() => s.conn() !== undefined, 1000, 'handleOpen');
    expect(s.conn()!.extensions).toContain('server_no_context_takeover');
    await conn.close();
  });

  it('messages under the threshold go uncompressed', async () => {
    const s = await echo({ threshold: 1024 });
    const conn = await connect(s.url, { deflate: { threshold: 1024 } });
    await roundTrip(conn, 3);
    await conn.write('y'.repeat(2000));
    await waitUntil(() => s.rsv1.length === 4, 2000, 'the big frame');
    expect(s.rsv1).toEqual([false, false, false, true]);
    await conn.close();
  });

  it('a client without deflate talks to a deflate server uncompressed', async () => {
    const s = await echo({ threshold: 0 });
    const conn = await connect(s.url);
    expect(conn.extensions).toBeUndefined();
    await roundTrip(conn, 5);
    expect(s.rsv1.some(Boolean)).toBe(false);
    await conn.close();
  });

  it('closes with 1009 when an inflated message exceeds maxMessageSize (a small bomb)', async () => {
    const s = await startServer({ deflate: { threshold: 0 }, maxMessageSize: 10_000 });
    const conn = await connect(s.url, { deflate: { threshold: 0 } });
    await conn.write(Buffer.alloc(1_000_000)); // compresses to about 1 KiB
    const info = await withTimeout(conn.closed, 2000, 'the close');
    expect(info.code).toBe(1009);
  });
});
