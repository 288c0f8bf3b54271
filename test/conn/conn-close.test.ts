/**
 * Conn, closing (RFC 6455 §7): exactly one Close frame, echoes, who ends TCP, closeTimeout, what
 * `closed` and handleClose report, and protocol violations failing one connection (and only it).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionError, ErrorCode, Opcode, ProtocolError, WebSocketError } from '../../src/protocol/index.js';
import {
  blockWriter,
  closeBody,
  destroyAll,
  expectError,
  open,
  rejectionOf,
  sleep,
  waitUntil,
  withTimeout,
} from './helpers.js';

afterEach(destroyAll);

describe('close() from our side', () => {
  it('close() is idempotent: called 3 times, exactly one Close frame goes out and every call returns the same promise', async () => {
    const { conn, peer, rec } = await open();
    const p1 = conn.close(1000, 'bye');
    const p2 = conn.close(4000, 'again');
    const p3 = conn.close();
    expect(p2).toBe(p1);
    expect(p3).toBe(p1);
    expect(p1).toBe(conn.closed);
    const close = await peer.waitFrame(Opcode.Close);
    expect(closeBody(close)).toEqual({ code: 1000, reason: 'bye' });
    peer.sendClose(1000);
    const info = await withTimeout(conn.closed, 'closed');
    conn.close();
    await sleep(20);
    expect(peer.count(Opcode.Close)).toBe(1);
    expect(info).toEqual({ code: 1000, reason: '', wasClean: true, error: undefined, unsent: 0 });
    expect(rec.closes).toEqual([info]);
  });

  it('close() while the peer closes at the same time still sends exactly one Close frame, and reports the peer\'s code', async () => {
    const { conn, peer, rec } = await open();
    peer.sendClose(1001, 'going');
    conn.close(1000, 'mine'); // before the peer's Close frame is read
    conn.close(1000, 'mine');
    await peer.waitEnd();
    const info = await withTimeout(conn.closed, 'closed');
    await sleep(20);
    expect(peer.count(Opcode.Close)).toBe(1);
    expect(closeBody(peer.frames.find((f) => f.opcode === Opcode.Close)!)).toEqual({ code: 1000, reason: 'mine' });
    expect(info).toMatchObject({ code: 1001, reason: 'going', wasClean: true });
    expect(rec.closes.length).toBe(1);
  });

  it('close() after the peer\'s Close frame was read sends only the echo', async () => {
    const { conn, peer, rec } = await open();
    peer.sendClose(4001, 'first');
    await peer.waitFrame(Opcode.Close);
    conn.close(1000);
    conn.close(1000);
    await withTimeout(conn.closed, 'closed');
    await sleep(20);
    expect(peer.count(Opcode.Close)).toBe(1);
    expect(closeBody(peer.frames.find((f) => f.opcode === Opcode.Close)!).code).toBe(4001);
    expect(rec.closes.length).toBe(1);
  });

  it('close() with a code that may not be sent throws WS_ERR_INVALID_ARGUMENT and leaves the connection open', async () => {
    const { conn, peer } = await open();
    for (const code of [999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 1000.5]) {
      let err: unknown;
      try {
        conn.close(code);
      } catch (e) {
        err = e;
      }
      expectError(err, WebSocketError, ErrorCode.InvalidArgument, undefined, `close code ${code} may not be sent (RFC 6455 §7.4)`);
    }
    expect(conn.state).toBe('open');
    await conn.write('still open');
    await peer.waitFrames(1);
    expect(peer.count(Opcode.Close)).toBe(0);
  });

  it('close() with a reason over 123 bytes throws WS_ERR_INVALID_ARGUMENT; 123 bytes are accepted', async () => {
    const { conn, peer } = await open();
    let err: unknown;
    try {
      conn.close(1000, 'é'.repeat(62)); // 124 bytes
    } catch (e) {
      err = e;
    }
    expectError(err, WebSocketError, ErrorCode.InvalidArgument, undefined, 'close reason is 124 bytes; at most 123 fit in a close frame');
    expect(conn.state).toBe('open');
    conn.close(3000, 'r'.repeat(123));
    const close = await peer.waitFrame(Opcode.Close);
    expect(close.payload.length).toBe(125);
    expect(closeBody(close)).toEqual({ code: 3000, reason: 'r'.repeat(123) });
  });

  it('data written before close() is delivered before the Close frame', async () => {
    const { conn, peer } = await open();
    conn.write('a');
    conn.write(Buffer.alloc(20_000, 1));
    conn.write('c');
    conn.close(1000);
    await peer.waitFrames(4);
    expect(peer.frames.map((f) => f.opcode)).toEqual([Opcode.Text, Opcode.Binary, Opcode.Text, Opcode.Close]);
  });

  it('data queued behind a blocked writer is still delivered before the Close frame, and nothing is counted unsent', async () => {
    const { conn, peer } = await open({ options: { closeTimeout: 5000 } });
    peer.pause();
    const fillers = await blockWriter(conn);
    conn.write('q0');
    conn.write('q1');
    conn.close(1000, 'done');
    expect(conn.queuedFrames).toBe(2);
    peer.resume();
    const frames = await peer.waitFrames(fillers + 3);
    const tail = frames.slice(fillers);
    expect(tail.map((f) => f.opcode)).toEqual([Opcode.Text, Opcode.Text, Opcode.Close]);
    expect(tail.slice(0, 2).map((f) => f.payload.toString())).toEqual(['q0', 'q1']);
    expect(closeBody(tail[2]!)).toEqual({ code: 1000, reason: 'done' });
    peer.sendClose(1000);
    const info = await withTimeout(conn.closed, 'closed');
    expect(info).toMatchObject({ code: 1000, wasClean: true, unsent: 0 });
  });

  it('the server ends TCP once both Close frames are exchanged (RFC 6455 §7.1.1)', async () => {
    const { conn, peer } = await open();
    conn.close(1000);
    await peer.waitFrame(Opcode.Close);
    await sleep(20);
    expect(peer.gotEnd).toBe(false); // still waiting for the peer's Close
    peer.sendClose(1000);
    await peer.waitEnd();
    expect((await withTimeout(conn.closed, 'closed')).wasClean).toBe(true);
    expect(conn.state).toBe('closed');
  });

  it('closeTimeout destroys a connection whose peer never answers: wasClean false, WS_ERR_CLOSE_TIMEOUT, 1006', async () => {
    const { conn, peer, rec } = await open({ options: { closeTimeout: 80 } });
    const started = Date.now();
    conn.close(1000);
    await peer.waitFrame(Opcode.Close);
    const info = await withTimeout(conn.closed, 'closed after closeTimeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(70);
    expect(info.code).toBe(1006);
    expect(info.wasClean).toBe(false);
    expectError(info.error, ConnectionError, ErrorCode.CloseTimeout, 1006, 'closing handshake not completed within 80 ms');
    expect(rec.closes).toEqual([info]);
    await waitUntil(() => peer.gotClose || peer.gotEnd, 'the TCP connection to go');
  });

  it('a client waits for the server to end TCP after the closing handshake, then reports a clean close', async () => {
    const { conn, peer } = await open({ role: 'client' });
    conn.close(1000, 'client done');
    const close = await peer.waitFrame(Opcode.Close);
    expect(close.masked).toBe(true);
    peer.sendClose(1000);
    await sleep(30);
    expect(peer.gotEnd).toBe(false); // the client does not end TCP first
    expect(conn.state).toBe('closing');
    peer.socket.end();
    const info = await withTimeout(conn.closed, 'closed');
    expect(info).toEqual({ code: 1000, reason: '', wasClean: true, error: undefined, unsent: 0 });
  });

  it('terminate() destroys the connection without a Close frame: 1006, not clean, handleClose once', async () => {
    const { conn, peer, rec } = await open();
    conn.terminate();
    conn.terminate();
    const info = await withTimeout(conn.closed, 'closed');
    expect(info).toEqual({ code: 1006, reason: '', wasClean: false, error: undefined, unsent: 0 });
    await waitUntil(() => peer.gotClose || peer.gotEnd, 'TCP to go');
    expect(peer.count(Opcode.Close)).toBe(0);
    expect(rec.closes.length).toBe(1);
  });
});

describe('close from the peer', () => {
  it('a peer Close is echoed with the same code, the server ends TCP, and closed reports the peer\'s code and reason', async () => {
    const { conn, peer, rec } = await open();
    peer.sendClose(4000, 'app says bye');
    const echo = await peer.waitFrame(Opcode.Close);
    expect(closeBody(echo).code).toBe(4000);
    await peer.waitEnd();
    const info = await withTimeout(conn.closed, 'closed');
    expect(info).toEqual({ code: 4000, reason: 'app says bye', wasClean: true, error: undefined, unsent: 0 });
    expect(rec.closes).toEqual([info]);
    expect(rec.errors).toEqual([]);
  });

  it('an empty Close body is answered with an empty body and reported as 1005', async () => {
    const { conn, peer } = await open();
    peer.send(Opcode.Close);
    const echo = await peer.waitFrame(Opcode.Close);
    expect(echo.payload.length).toBe(0);
    const info = await withTimeout(conn.closed, 'closed');
    expect(info).toMatchObject({ code: 1005, reason: '', wasClean: true });
  });

  it('a client echoes the server\'s Close masked and reports a clean close when the server ends TCP', async () => {
    const { conn, peer } = await open({ role: 'client' });
    peer.sendClose(1001, 'restart');
    const echo = await peer.waitFrame(Opcode.Close);
    expect(echo.masked).toBe(true);
    expect(closeBody(echo).code).toBe(1001);
    peer.socket.end();
    const info = await withTimeout(conn.closed, 'closed');
    expect(info).toEqual({ code: 1001, reason: 'restart', wasClean: true, error: undefined, unsent: 0 });
  });

  it('data after the peer\'s Close frame is not delivered (RFC 6455 §5.5.1)', async () => {
    const { conn, peer, rec } = await open();
    peer.sendRaw(Buffer.concat([peer.frame(Opcode.Text, 'before'), peer.frame(Opcode.Close, Buffer.from([0x03, 0xe8])), peer.frame(Opcode.Text, 'after')]));
    await withTimeout(conn.closed, 'closed');
    expect(rec.messages.map((m) => m.data.toString())).toEqual(['before']);
  });

  it('the peer ending TCP without a Close frame is an abnormal closure (1006)', async () => {
    const { conn, peer, rec } = await open();
    peer.socket.end();
    const info = await withTimeout(conn.closed, 'closed');
    expect(info).toEqual({ code: 1006, reason: '', wasClean: false, error: undefined, unsent: 0 });
    expect(rec.closes.length).toBe(1);
  });

  it('a write pending at close time is rejected, a write after is rejected, and handleClose runs once', async () => {
    const { conn, peer, rec } = await open({ options: { maxQueuedFrames: 1 } });
    peer.pause();
    await blockWriter(conn);
    conn.write('q');
    const pending = conn.write('w');
    peer.sendClose(1000);
    const err = await pending.then(
      () => undefined,
      (e: unknown) => e,
    );
    expectError(err, ConnectionError, ErrorCode.ConnectionClosed, 1000, 'connection is closing');
    expectError(await rejectionOf(conn.write('after')), ConnectionError, ErrorCode.ConnectionClosed, 1000, 'connection is closing');
    peer.resume();
    const info = await withTimeout(conn.closed, 'closed');
    expect(info).toMatchObject({ code: 1000, wasClean: true, unsent: 1 });
    expect(rec.closes).toEqual([info]);
  });
});

describe('protocol violations by the peer', () => {
  const cases: { rule: string; bytes: (frame: (op: number, p?: string | Uint8Array, o?: { fin?: boolean; mask?: boolean }) => Buffer) => Buffer; options?: object; code: string; close: number; message: string }[] = [
    {
      rule: 'an unmasked frame from a client fails the connection with 1002 (RFC 6455 §5.1)',
      bytes: (f) => f(Opcode.Text, 'naked', { mask: false }),
      code: ErrorCode.ExpectedMask,
      close: 1002,
      message: 'client frames must be masked',
    },
    {
      rule: 'a text message that is not UTF-8 fails the connection with 1007 (RFC 6455 §8.1)',
      bytes: (f) => f(Opcode.Text, Buffer.from([0x61, 0xc3, 0x28])),
      code: ErrorCode.InvalidUtf8,
      close: 1007,
      message: 'text message is not valid UTF-8',
    },
    {
      rule: 'a message over maxMessageSize fails the connection with 1009',
      bytes: (f) => f(Opcode.Binary, Buffer.alloc(101)),
      options: { maxMessageSize: 100 },
      code: ErrorCode.PayloadTooBig,
      close: 1009,
      message: 'exceeds the limit of 100',
    },
    {
      rule: 'fragments adding up to more than maxMessageSize fail the connection with 1009',
      bytes: (f) => Buffer.concat([f(Opcode.Binary, Buffer.alloc(60), { fin: false }), f(Opcode.Continuation, Buffer.alloc(60))]),
      options: { maxMessageSize: 100 },
      code: ErrorCode.PayloadTooBig,
      close: 1009,
      message: 'message exceeds the limit of 100 bytes',
    },
    {
      rule: 'a Close frame with a code not allowed on the wire fails the connection with 1002',
      bytes: (f) => f(Opcode.Close, Buffer.from([0x03, 0xed])), // 1005
      code: ErrorCode.InvalidCloseCode,
      close: 1002,
      message: 'invalid close code 1005',
    },
    {
      rule: 'a continuation frame without a message to continue fails the connection with 1002',
      bytes: (f) => f(Opcode.Continuation, 'x'),
      code: ErrorCode.UnexpectedContinuation,
      close: 1002,
      message: 'continuation frame without a message to continue',
    },
    {
      rule: 'a Ping over 125 bytes fails the connection with 1002',
      bytes: (f) => f(Opcode.Ping, Buffer.alloc(126)),
      code: ErrorCode.InvalidControlFrame,
      close: 1002,
      message: 'control frame payload over 125 bytes',
    },
  ];

  for (const c of cases) {
    it(`${c.rule}: handleError gets the ProtocolError and the Close frame carries its code`, async () => {
      const { conn, peer, rec } = await open({ options: c.options ?? {} });
      peer.sendRaw(c.bytes((op, p, o) => peer.frame(op, p, o)));
      const close = await peer.waitFrame(Opcode.Close);
      expect(closeBody(close).code).toBe(c.close);
      await peer.waitEnd();
      const info = await withTimeout(conn.closed, 'closed');
      expect(rec.errors.length).toBe(1);
      expectError(rec.errors[0], ProtocolError, c.code as ErrorCode, c.close, c.message);
      expect(info.code).toBe(c.close);
      expect(info.wasClean).toBe(false);
      expect(info.error).toBe(rec.errors[0]);
      expect(rec.closes).toEqual([info]);
      expect(rec.messages).toEqual([]);
    });
  }

  it('a masked frame from a server fails a client connection with 1002 (RFC 6455 §5.1)', async () => {
    const { conn, peer, rec } = await open({ role: 'client' });
    peer.send(Opcode.Text, 'masked', { mask: true });
    const close = await peer.waitFrame(Opcode.Close);
    expect(closeBody(close).code).toBe(1002);
    const info = await withTimeout(conn.closed, 'closed', 6000);
    expectError(rec.errors[0], ProtocolError, ErrorCode.UnexpectedMask, 1002, 'server frames must not be masked');
    expect(info.code).toBe(1002);
  });

  it('a violation sends exactly one Close frame, even when close() is called afterwards', async () => {
    const { conn, peer } = await open();
    peer.send(Opcode.Text, 'naked', { mask: false });
    await peer.waitFrame(Opcode.Close);
    conn.close(1000);
    conn.close(1000);
    await withTimeout(conn.closed, 'closed');
    await sleep(20);
    expect(peer.count(Opcode.Close)).toBe(1);
  });

  it('a message before the bad frame is delivered, and nothing after it', async () => {
    const { conn, peer, rec } = await open();
    peer.sendRaw(
      Buffer.concat([peer.frame(Opcode.Text, 'good'), peer.frame(Opcode.Text, Buffer.from([0xff])), peer.frame(Opcode.Text, 'never')]),
    );
    await withTimeout(conn.closed, 'closed');
    expect(rec.messages.map((m) => m.data.toString())).toEqual(['good']);
  });

  it('a handleError that calls close() cannot change the close code of a failure, and TCP ends without waiting for closeTimeout', async () => {
    const { conn, peer, rec } = await open({ options: { closeTimeout: 10_000 }, handlers: { handleError: (c) => void c.close(1000) } });
    const started = Date.now();
    peer.send(Opcode.Text, 'naked', { mask: false });
    const close = await peer.waitFrame(Opcode.Close);
    expect(closeBody(close).code).toBe(1002);
    await peer.waitEnd(4000);
    const info = await withTimeout(conn.closed, 'closed', 4000);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(info).toMatchObject({ code: 1002, wasClean: false });
    expectError(info.error, ProtocolError, ErrorCode.ExpectedMask, 1002, 'client frames must be masked');
    expect(rec.errors.length).toBe(1);
    expect(peer.count(Opcode.Close)).toBe(1);
  });

  it('a violation while our Close frame is out ends TCP at once (RFC 6455 §7.1.7), with no second Close frame', async () => {
    const { conn, peer, rec } = await open({ options: { closeTimeout: 10_000 } });
    const started = Date.now();
    conn.close(1000);
    await peer.waitFrame(Opcode.Close);
    peer.send(Opcode.Text, 'naked', { mask: false });
    peer.sendClose(1000);
    await peer.waitEnd(4000);
    const info = await withTimeout(conn.closed, 'closed', 4000);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(info).toMatchObject({ code: 1002, wasClean: false });
    expectError(rec.errors[0], ProtocolError, ErrorCode.ExpectedMask, 1002, 'client frames must be masked');
    expect(peer.count(Opcode.Close)).toBe(1);
  });

  it('a handler that throws while we are closing ends TCP at once too (no wait for closeTimeout)', async () => {
    const { conn, peer, rec } = await open({
      options: { closeTimeout: 10_000 },
      handlers: {
        handleData: () => {
          throw new Error('late failure');
        },
      },
    });
    conn.close(1000);
    await peer.waitFrame(Opcode.Close);
    peer.send(Opcode.Text, 'still talking');
    await peer.waitEnd(4000);
    const info = await withTimeout(conn.closed, 'closed', 4000);
    expect(info).toMatchObject({ code: 1011, wasClean: false });
    expectError(rec.errors[0], WebSocketError, ErrorCode.HandlerFailed, 1011, 'a handler threw: late failure');
    expect(peer.count(Opcode.Close)).toBe(1);
  });

  it('a violation on one connection does not affect another', async () => {
    const a = await open();
    const b = await open({ handlers: { handleData: (c, data) => void c.write(data, false) } });
    a.peer.send(Opcode.Text, 'naked', { mask: false });
    b.peer.send(Opcode.Text, 'echo 1');
    await withTimeout(a.conn.closed, 'a closed');
    b.peer.send(Opcode.Text, 'echo 2');
    const echoes = await b.peer.waitFrames(2);
    expect(echoes.map((f) => f.payload.toString())).toEqual(['echo 1', 'echo 2']);
    expect(b.conn.state).toBe('open');
    expect(b.rec.errors).toEqual([]);
    expect(b.rec.closes).toEqual([]);
    expect(a.rec.errors.length).toBe(1);
  });
});

