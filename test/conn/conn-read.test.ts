/**
 * Conn, reading: delivery to handleData, fragmented messages, one message at a time with an async
 * handler, inbound backpressure (a full inbox pauses the socket, TCP pushes back on the peer),
 * async iteration, and handlers that fail.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Conn, defaultConnOptions, type Message } from '../../src/conn/conn.js';
import { ErrorCode, Opcode, WebSocketError, encodeFrame } from '../../src/protocol/index.js';
import {
  KEY,
  closeBody,
  destroyAll,
  expectError,
  memoryPair,
  open,
  record,
  sleep,
  tcpPair,
  waitUntil,
  withTimeout,
} from './helpers.js';

afterEach(destroyAll);

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('handleData', () => {
  it('handleData gets (conn, data, isBinary) for text and binary messages', async () => {
    const seen: [unknown, string, boolean][] = [];
    const { conn, peer } = await open({
      handlers: { handleData: (c, data, isBinary) => void seen.push([c, data.toString(), isBinary]) },
    });
    peer.send(Opcode.Text, 'héllo');
    peer.send(Opcode.Binary, Buffer.from('bytes'));
    await waitUntil(() => seen.length === 2, 'two messages');
    expect(seen).toEqual([
      [conn, 'héllo', false],
      [conn, 'bytes', true],
    ]);
    expect(conn.messagesIn).toBe(2);
  });

  it('empty text and empty binary messages are delivered (never dropped), also when fragmented', async () => {
    const { rec, peer } = await open();
    peer.send(Opcode.Text, '');
    peer.send(Opcode.Binary, Buffer.alloc(0));
    peer.send(Opcode.Text, '', { fin: false });
    peer.send(Opcode.Continuation, '', { fin: true });
    await waitUntil(() => rec.messages.length === 3, 'three empty messages');
    expect(rec.messages.map((m) => [m.data.length, m.isBinary])).toEqual([
      [0, false],
      [0, true],
      [0, false],
    ]);
  });

  it('a fragmented message is assembled from its frames, with a control frame between fragments', async () => {
    const { rec, peer } = await open();
    peer.send(Opcode.Text, 'Hel', { fin: false });
    peer.send(Opcode.Ping, 'between');
    peer.send(Opcode.Continuation, 'lo, ', { fin: false });
    peer.send(Opcode.Continuation, 'wörld', { fin: true });
    peer.send(Opcode.Binary, Buffer.from([1, 2]), { fin: false });
    peer.send(Opcode.Continuation, Buffer.from([3]), { fin: true });
    await waitUntil(() => rec.messages.length === 2, 'two messages');
    expect(rec.messages[0]).toEqual({ data: Buffer.from('Hello, wörld'), isBinary: false });
    expect(rec.messages[1]).toEqual({ data: Buffer.from([1, 2, 3]), isBinary: true });
    expect(rec.pings.map(String)).toEqual(['between']);
    expect((await peer.waitFrame(Opcode.Pong)).payload.toString()).toBe('between');
  });

  it('messages split across TCP chunks at every byte are delivered whole', async () => {
    const { rec, peer } = await open();
    const bytes = Buffer.concat([peer.frame(Opcode.Text, 'split me'), peer.frame(Opcode.Binary, Buffer.alloc(300, 7))]);
    for (let i = 0; i < bytes.length; i += 1) {
      peer.sendRaw(bytes.subarray(i, i + 1));
      if (i % 50 === 0) await sleep(1);
    }
    await waitUntil(() => rec.messages.length === 2, 'two messages');
    expect(rec.messages[0]!.data.toString()).toBe('split me');
    expect(rec.messages[1]!.data.equals(Buffer.alloc(300, 7))).toBe(true);
  });

  it('a large message (1 MiB, masked) arrives intact and bytesIn counts the wire bytes', async () => {
    const { conn, rec, peer } = await open();
    const payload = Buffer.alloc(1 << 20);
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
    const frame = peer.frame(Opcode.Binary, payload);
    peer.sendRaw(frame);
    await waitUntil(() => rec.messages.length === 1, 'the message');
    expect(rec.messages[0]!.data.equals(payload)).toBe(true);
    expect(conn.bytesIn).toBe(frame.length);
  });

  it('an async handleData makes later messages wait: they are handled one at a time, in order', async () => {
    const order: string[] = [];
    const gates = [deferred(), deferred(), deferred()];
    let calls = 0;
    const { peer } = await open({
      handlers: {
        handleData: (_c, data) => {
          const i = calls++;
          order.push(`start ${data.toString()}`);
          const gate = gates[i];
          if (gate === undefined) return undefined;
          return gate.promise.then(() => void order.push(`end ${data.toString()}`));
        },
      },
    });
    for (const m of ['a', 'b', 'c', 'd']) peer.send(Opcode.Text, m);
    await waitUntil(() => order.length === 1, 'the first message');
    await sleep(30);
    expect(order).toEqual(['start a']);
    gates[0]!.resolve();
    await waitUntil(() => order.length === 3, 'the second message');
    expect(order).toEqual(['start a', 'end a', 'start b']);
    gates[1]!.resolve();
    gates[2]!.resolve();
    await waitUntil(() => order.length === 7, 'every message');
    expect(order).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c', 'start d']);
  });

  it('a handler that never resolves with a small inbox pauses the socket: the peer backs up and bytesIn stops growing; resolving resumes it in order', async () => {
    const gate = deferred();
    const got: number[] = [];
    let first = true;
    const { conn, peer } = await open({
      options: { inboxSize: 2 },
      handlers: {
        handleData: (_c, data) => {
          got.push(data.readUInt32BE(0));
          if (first) {
            first = false;
            return gate.promise;
          }
          return undefined;
        },
      },
    });
    const payload = Buffer.alloc(16 * 1024);
    let sent = 0;
    const start = Date.now();
    // Write until the peer's own socket keeps bytes the kernel will not take.
    while ((peer.socket.writableLength ?? 0) < 1 << 20) {
      if (Date.now() - start > 10_000) throw new Error('the peer never backed up');
      for (let i = 0; i < 64; i++) {
        payload.writeUInt32BE(sent++, 0);
        peer.send(Opcode.Binary, payload);
      }
      await sleep(1);
    }
    await sleep(50);
    const before = conn.bytesIn;
    await sleep(150);
    expect(conn.bytesIn).toBe(before);
    expect(got).toEqual([0]);
    expect(conn.messagesIn).toBeLessThan(sent);

    gate.resolve();
    await waitUntil(() => got.length === sent, `all ${sent} messages`, 15_000);
    expect(got).toEqual(Array.from({ length: sent }, (_, i) => i));
    expect(conn.bytesIn).toBeGreaterThan(before);
    expect(conn.state).toBe('open');
  });
});

describe('async iteration', () => {
  it('without handleData, for await (const m of conn) yields every message in order and ends when the connection closes', async () => {
    const { conn, peer } = await open({ handlers: { handleData: null } });
    const got: Message[] = [];
    const reader = (async () => {
      for await (const m of conn) got.push({ data: Buffer.from(m.data), isBinary: m.isBinary });
    })();
    peer.send(Opcode.Text, 'one');
    peer.send(Opcode.Binary, Buffer.from([2]));
    peer.send(Opcode.Text, '');
    await waitUntil(() => got.length === 3, 'three messages');
    peer.sendClose(1000);
    await withTimeout(reader, 'the iteration to end');
    expect(got).toEqual([
      { data: Buffer.from('one'), isBinary: false },
      { data: Buffer.from([2]), isBinary: true },
      { data: Buffer.alloc(0), isBinary: false },
    ]);
  });

  it('messages that arrive before iteration starts are kept (up to inboxSize) and yielded, in order', async () => {
    const { conn, peer } = await open({ handlers: { handleData: null } });
    for (let i = 0; i < 5; i++) peer.send(Opcode.Text, `m${i}`);
    await waitUntil(() => conn.messagesIn === 5, 'five messages in');
    const got: string[] = [];
    for await (const m of conn) {
      got.push(m.data.toString());
      if (got.length === 5) break;
    }
    expect(got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
  });

  it('a slow iterator pauses the socket at inboxSize and resumes it as it consumes, losing nothing', async () => {
    const { conn, peer } = await open({ options: { inboxSize: 4 }, handlers: { handleData: null } });
    const total = 3000;
    const payload = Buffer.alloc(8 * 1024);
    for (let i = 0; i < total; i++) {
      payload.writeUInt32BE(i, 0);
      peer.send(Opcode.Binary, payload);
    }
    await sleep(100);
    expect(conn.messagesIn).toBeLessThan(total);
    const got: number[] = [];
    for await (const m of conn) {
      got.push(m.data.readUInt32BE(0));
      if (got.length % 500 === 0) await sleep(5);
      if (got.length === total) break;
    }
    expect(got).toEqual(Array.from({ length: total }, (_, i) => i));
  });

  it('messages left in the inbox when the peer closes are still yielded before iteration ends', async () => {
    const { conn, peer } = await open({ handlers: { handleData: null } });
    peer.send(Opcode.Text, 'x');
    peer.send(Opcode.Text, 'y');
    peer.sendClose(1000);
    await withTimeout(conn.closed, 'closed');
    const got: string[] = [];
    for await (const m of conn) got.push(m.data.toString());
    expect(got).toEqual(['x', 'y']);
  });

  it('iterating a connection that has handleData throws WS_ERR_INVALID_ARGUMENT', async () => {
    const { conn } = await open();
    const it = conn[Symbol.asyncIterator]();
    const err = await it.next().then(
      () => undefined,
      (e: unknown) => e,
    );
    expectError(err, WebSocketError, ErrorCode.InvalidArgument, undefined, 'cannot also be iterated');
  });
});

describe('failing handlers', () => {
  it('a handleData that throws: handleError gets WS_ERR_HANDLER_FAILED (cause kept) and the connection closes with 1011', async () => {
    const boom = new Error('boom');
    const { conn, peer, rec } = await open({
      handlers: {
        handleData: () => {
          throw boom;
        },
      },
    });
    peer.send(Opcode.Text, 'hi');
    const close = await peer.waitFrame(Opcode.Close);
    expect(closeBody(close)).toEqual({ code: 1011, reason: 'internal error' });
    await peer.waitEnd();
    const info = await withTimeout(conn.closed, 'closed');
    expect(rec.errors.length).toBe(1);
    expectError(rec.errors[0], WebSocketError, ErrorCode.HandlerFailed, 1011, 'a handler threw: boom');
    expect(rec.errors[0]!.cause).toBe(boom);
    expect(info).toMatchObject({ code: 1011, wasClean: false });
    expect(info.error).toBe(rec.errors[0]);
  });

  it('an async handleData that rejects also closes with 1011 and WS_ERR_HANDLER_FAILED', async () => {
    const { conn, peer, rec } = await open({
      handlers: { handleData: async () => Promise.reject(new Error('async boom')) },
    });
    peer.send(Opcode.Binary, Buffer.from([1]));
    const close = await peer.waitFrame(Opcode.Close);
    expect(closeBody(close).code).toBe(1011);
    await withTimeout(conn.closed, 'closed');
    expectError(rec.errors[0], WebSocketError, ErrorCode.HandlerFailed, 1011, 'a handler threw: async boom');
  });

  it('a handler that throws stops delivery: messages after the failing one are not handed to handleData', async () => {
    let calls = 0;
    const { conn, peer } = await open({
      handlers: {
        handleData: () => {
          calls++;
          throw new Error('first fails');
        },
      },
    });
    peer.sendRaw(Buffer.concat([peer.frame(Opcode.Text, 'a'), peer.frame(Opcode.Text, 'b'), peer.frame(Opcode.Text, 'c')]));
    await withTimeout(conn.closed, 'closed');
    expect(calls).toBe(1);
  });
});

describe('handlers whose writes fail', () => {
  it('a handler whose own write fails because this connection is closing is no failure: later messages are still handled and the closing handshake completes', async () => {
    const calls: string[] = [];
    let first = true;
    const { conn, peer, rec } = await open({
      options: { inboxSize: 2, closeTimeout: 2000 },
      handlers: {
        handleData: async (c, data) => {
          calls.push(data.toString());
          if (first) {
            first = false;
            await sleep(30);
          }
          await c.write(`reply ${data.toString()}`);
        },
      },
    });
    for (let i = 0; i < 6; i++) peer.send(Opcode.Text, `m${i}`);
    await waitUntil(() => calls.length === 1, 'the first message');
    conn.close(1000); // while m0's handler is still running, with the inbox full and reading paused
    await peer.waitFrame(Opcode.Close);
    peer.sendClose(1000);
    const info = await withTimeout(conn.closed, 'closed');
    expect(info).toMatchObject({ code: 1000, wasClean: true, error: undefined });
    expect(calls).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    expect(rec.errors).toEqual([]);
  });

  it("a handler rejecting with another connection's WS_ERR_CONNECTION_CLOSED is a handler failure (1011), never a silent stall", async () => {
    const other = await open();
    other.conn.terminate();
    await withTimeout(other.conn.closed, 'the other connection closed');
    const calls: string[] = [];
    const { conn, peer, rec } = await open({
      handlers: {
        handleData: async (_c, data) => {
          calls.push(data.toString());
          await sleep(10);
          await other.conn.write('forwarded');
        },
      },
    });
    peer.send(Opcode.Text, 'm1');
    peer.send(Opcode.Text, 'm2');
    const close = await peer.waitFrame(Opcode.Close);
    expect(closeBody(close)).toEqual({ code: 1011, reason: 'internal error' });
    const info = await withTimeout(conn.closed, 'closed');
    expectError(rec.errors[0], WebSocketError, ErrorCode.HandlerFailed, 1011, 'a handler threw: connection is closed');
    expect((rec.errors[0]!.cause as WebSocketError).code).toBe(ErrorCode.ConnectionClosed);
    expect(info.code).toBe(1011);
    expect(calls).toEqual(['m1']);
  });
});

describe('bytes read past the handshake (head)', () => {
  const frame = (s: string | Buffer): Buffer => encodeFrame(Opcode.Text, Buffer.from(s), { maskKey: KEY });

  for (const transport of ['tcp', 'memory'] as const) {
    it(`head is parsed before the bytes the socket already holds, so messages keep their order (${transport})`, async () => {
      const { local, remote } = transport === 'tcp' ? await tcpPair() : memoryPair();
      remote.write(Buffer.concat([frame('second'), frame('third')]));
      await waitUntil(() => local.readableLength > 0, 'bytes buffered in the socket');
      const rec = record();
      const conn = new Conn({ socket: local, role: 'server', options: defaultConnOptions, handlers: rec.handlers, data: undefined, head: frame('first') });
      expect(rec.messages).toEqual([]); // nothing before the caller has the conn
      await waitUntil(() => rec.messages.length === 3, 'three messages');
      expect(rec.messages.map((m) => m.data.toString())).toEqual(['first', 'second', 'third']);
      expect(conn.state).toBe('open');
    });
  }

  it('a frame split between head and the socket buffer is assembled, not read as garbage', async () => {
    const { local, remote } = await tcpPair();
    const bytes = Buffer.concat([frame('one'), frame('x'.repeat(300)), frame('three')]);
    const cut = 20; // inside the second frame's payload
    remote.write(bytes.subarray(cut));
    await waitUntil(() => local.readableLength > 0, 'bytes buffered in the socket');
    const rec = record();
    new Conn({ socket: local, role: 'server', options: defaultConnOptions, handlers: rec.handlers, data: undefined, head: bytes.subarray(0, cut) });
    await waitUntil(() => rec.messages.length === 3 || rec.errors.length > 0, 'three messages');
    expect(rec.errors).toEqual([]);
    expect(rec.messages.map((m) => m.data.toString())).toEqual(['one', 'x'.repeat(300), 'three']);
  });

  it('head alone is delivered after the constructor returns, and later socket bytes follow it', async () => {
    const { local, remote } = await tcpPair();
    const rec = record();
    new Conn({ socket: local, role: 'server', options: defaultConnOptions, handlers: rec.handlers, data: undefined, head: frame('early') });
    expect(rec.messages).toEqual([]);
    remote.write(frame('late'));
    await waitUntil(() => rec.messages.length === 2, 'two messages');
    expect(rec.messages.map((m) => m.data.toString())).toEqual(['early', 'late']);
  });
});

describe('handleFrame', () => {
  it('handleFrame sees every frame before assembly, control frames included', async () => {
    const frames: [number, boolean, string][] = [];
    const { rec, peer } = await open({
      handlers: { handleFrame: (_c, f) => void frames.push([f.opcode, f.fin, f.payload.toString()]) },
    });
    peer.send(Opcode.Text, 'a', { fin: false });
    peer.send(Opcode.Ping, 'p');
    peer.send(Opcode.Continuation, 'b');
    await waitUntil(() => rec.messages.length === 1, 'the message');
    expect(frames).toEqual([
      [Opcode.Text, false, 'a'],
      [Opcode.Ping, true, 'p'],
      [Opcode.Continuation, true, 'b'],
    ]);
  });
});
