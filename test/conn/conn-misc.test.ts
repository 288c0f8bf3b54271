/**
 * Conn, the rest: socket errors, handlers that throw where nobody awaits them, random client mask
 * keys, limits at their exact edge, and writes from several tasks while messages are read.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionError, ErrorCode, Opcode, ProtocolError, WebSocketError } from '../../src/protocol/index.js';
import { blocked, closeBody, destroyAll, expectError, open, sleep, waitUntil, withTimeout } from './helpers.js';

afterEach(destroyAll);

describe('socket errors', () => {
  it('a TCP reset is reported to handleError as WS_ERR_SOCKET and closes with 1006', async () => {
    const { conn, peer, rec } = await open();
    conn.write('x'); // keep the connection busy in both directions
    await peer.waitFrames(1);
    (peer.socket as import('node:net').Socket).resetAndDestroy();
    const info = await withTimeout(conn.closed, 'closed');
    expect(info.code).toBe(1006);
    expect(info.wasClean).toBe(false);
    expect(rec.errors.length).toBe(1);
    expectError(rec.errors[0], ConnectionError, ErrorCode.SocketError, 1006, 'ECONNRESET');
    expect(info.error).toBe(rec.errors[0]);
    expect(rec.closes).toEqual([info]);
  });
});

describe('handlers that throw', () => {
  it('a handleClose that throws is reported to handleError as WS_ERR_HANDLER_FAILED, and closed still resolves', async () => {
    const boom = new Error('close handler broke');
    const { conn, peer, rec } = await open({
      handlers: {
        handleClose: () => {
          throw boom;
        },
      },
    });
    peer.sendClose(1000);
    const info = await withTimeout(conn.closed, 'closed');
    expect(info.code).toBe(1000);
    expectError(rec.errors[0], WebSocketError, ErrorCode.HandlerFailed, undefined, 'handleClose threw');
    expect(rec.errors[0]!.cause).toBe(boom);
  });

  it('a handlePing that throws fails the connection with 1011', async () => {
    const { conn, peer, rec } = await open({
      handlers: {
        handlePing: () => {
          throw new Error('ping handler broke');
        },
      },
    });
    peer.send(Opcode.Ping, 'x');
    const close = await peer.waitFrame(Opcode.Close);
    expect(closeBody(close).code).toBe(1011);
    await withTimeout(conn.closed, 'closed');
    expectError(rec.errors[0], WebSocketError, ErrorCode.HandlerFailed, 1011, 'a handler threw: ping handler broke');
  });

  it('a handleError that throws does not break the connection\'s close', async () => {
    const { conn, peer } = await open({
      handlers: {
        handleError: () => {
          throw new Error('error handler broke');
        },
      },
    });
    peer.send(Opcode.Text, 'naked', { mask: false });
    const info = await withTimeout(conn.closed, 'closed');
    expect(info.code).toBe(1002);
  });
});

describe('client masking keys', () => {
  it('without maskKeys a client masks every frame with a fresh random non-zero key', async () => {
    const { conn, peer } = await open({ role: 'client', maskKeys: null });
    for (let i = 0; i < 20; i++) conn.write(`m${i}`);
    await peer.waitFrames(20);
    const raw = peer.raw;
    const keys = new Set<number>();
    let off = 0;
    while (off < raw.length) {
      expect(raw[off + 1]! & 0x80).toBe(0x80);
      const len = raw[off + 1]! & 0x7f;
      keys.add(raw.readUInt32BE(off + 2));
      off += 6 + len;
    }
    expect(keys.has(0)).toBe(false);
    expect(keys.size).toBeGreaterThan(15);
    expect(peer.frames.map((f) => f.payload.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
  });
});

describe('limits at the edge', () => {
  it('a message of exactly maxMessageSize is delivered; one byte more fails with 1009', async () => {
    const ok = await open({ options: { maxMessageSize: 1000 } });
    ok.peer.send(Opcode.Binary, Buffer.alloc(600), { fin: false });
    ok.peer.send(Opcode.Continuation, Buffer.alloc(400));
    await waitUntil(() => ok.rec.messages.length === 1, 'the message');
    expect(ok.rec.messages[0]!.data.length).toBe(1000);
    expect(ok.conn.state).toBe('open');

    const over = await open({ options: { maxMessageSize: 1000 } });
    over.peer.send(Opcode.Binary, Buffer.alloc(600), { fin: false });
    over.peer.send(Opcode.Continuation, Buffer.alloc(401));
    const close = await over.peer.waitFrame(Opcode.Close);
    expect(closeBody(close).code).toBe(1009);
    expectError(over.rec.errors[0], ProtocolError, ErrorCode.PayloadTooBig, 1009, 'message exceeds the limit of 1000 bytes');
  });

  it('a frame over maxFrameSize fails with 1009 at its header, before its payload arrives', async () => {
    const { peer, rec } = await open({ options: { maxFrameSize: 100 } });
    peer.sendRaw(peer.frame(Opcode.Binary, Buffer.alloc(1000)).subarray(0, 8)); // header only
    const close = await peer.waitFrame(Opcode.Close);
    expect(closeBody(close).code).toBe(1009);
    expectError(rec.errors[0], ProtocolError, ErrorCode.PayloadTooBig, 1009, 'frame of 1000 bytes exceeds the limit of 100');
  });

  it('a Close frame whose reason is not UTF-8 fails the connection with 1007', async () => {
    const { conn, peer, rec } = await open();
    peer.send(Opcode.Close, Buffer.from([0x03, 0xe8, 0xff, 0xfe]));
    const close = await peer.waitFrame(Opcode.Close);
    expect(closeBody(close).code).toBe(1007);
    const info = await withTimeout(conn.closed, 'closed');
    expectError(rec.errors[0], ProtocolError, ErrorCode.InvalidUtf8, 1007, 'close reason is not valid UTF-8');
    expect(info).toMatchObject({ code: 1007, wasClean: false });
  });

  it('a client whose server never ends TCP after the closing handshake is destroyed after closeTimeout', async () => {
    const { conn, peer } = await open({ role: 'client', options: { closeTimeout: 80 } });
    conn.close(1000);
    await peer.waitFrame(Opcode.Close);
    peer.sendClose(1000);
    const info = await withTimeout(conn.closed, 'closed');
    expect(info.code).toBe(1000);
    expect(info.wasClean).toBe(false);
    expectError(info.error, ConnectionError, ErrorCode.CloseTimeout, 1006, 'closing handshake not completed within 80 ms');
  });
});

describe('writes from several tasks while reading', () => {
  it('an echo handler and a timer task write concurrently: every message arrives whole, each task in order', async () => {
    const { conn, peer } = await open({
      handlers: {
        handleData: async (c, data, isBinary) => {
          await c.write(Buffer.from(data), isBinary);
        },
      },
    });
    let ticks = 0;
    const timer = setInterval(() => void conn.write(`tick${ticks++}`).catch(() => {}), 1);
    const total = 2000;
    for (let i = 0; i < total; i++) {
      peer.send(Opcode.Binary, Buffer.from(`echo${i}`));
      if (i % 200 === 0) await sleep(1);
    }
    await peer.waitFrames(total, (f) => f.opcode === Opcode.Binary, 10_000);
    clearInterval(timer);
    const echoes = peer.frames.filter((f) => f.opcode === Opcode.Binary).map((f) => f.payload.toString());
    const tickMsgs = peer.frames.filter((f) => f.opcode === Opcode.Text).map((f) => f.payload.toString());
    expect(echoes).toEqual(Array.from({ length: total }, (_, i) => `echo${i}`));
    expect(tickMsgs).toEqual(Array.from({ length: tickMsgs.length }, (_, i) => `tick${i}`));
    expect(peer.failure).toBeUndefined();
  });
});

describe('queues belong to one connection', () => {
  it("a blocked connection's outbox, waiting writes, pings and pongs never show on another, and its discard leaves the other alone", async () => {
    const a = await blocked({ overflow: 'wait', maxQueuedFrames: 4 });
    const b = await open();
    // Fill every lane of a: outbox (full), a waiting write, a ping, a pong owed to its peer.
    for (let i = 0; i < 4; i++) expect(a.conn.tryWrite(`q${i}`)).toBe('queued');
    const waiting = a.conn.write('waits');
    expect(a.conn.waitingWrites).toBe(1);
    expect(a.conn.ping('from-a')).toBe(true);
    a.peer.send(Opcode.Ping, Buffer.from('to-a'));
    await waitUntil(() => a.rec.pings.length === 1, 'a to read the ping');
    expect([a.conn.queuedFrames, a.conn.waitingWrites]).toEqual([4, 1]);
    // b has none of it.
    expect([b.conn.queuedFrames, b.conn.waitingWrites]).toEqual([0, 0]);
    b.conn.write('only-b');
    await b.peer.waitFrames(1);
    await sleep(30);
    expect(b.peer.frames.map((f) => [f.opcode, f.payload.toString()])).toEqual([[Opcode.Text, 'only-b']]);
    // a fails and throws its backlog away; b keeps working with queues of its own.
    a.conn.terminate();
    await withTimeout(a.conn.closed, 'a closed');
    await expect(waiting).rejects.toBeInstanceOf(ConnectionError);
    b.conn.ping('from-b');
    b.conn.write('again');
    await b.peer.waitFrames(3);
    expect(b.peer.frames.map((f) => [f.opcode, f.payload.toString()])).toEqual([
      [Opcode.Text, 'only-b'],
      [Opcode.Ping, 'from-b'],
      [Opcode.Text, 'again'],
    ]);
    expect([b.conn.queuedFrames, b.conn.waitingWrites]).toEqual([0, 0]);
  });
});
