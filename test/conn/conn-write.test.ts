/**
 * Conn, writing: what each write() becomes on the wire, batching into one socket write per turn,
 * large payloads, masking on the client side, and the write-side counters.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConnectionError, ErrorCode, Opcode, WebSocketError, encodeFrame } from '../../src/protocol/index.js';
import { KEY, destroyAll, expectError, open, rejectionOf, waitUntil } from './helpers.js';

afterEach(destroyAll);

describe('message types', () => {
  it('write(string) sends one unmasked text frame from a server', async () => {
    const { conn, peer } = await open();
    expect(await conn.write('héllo')).toBe('queued');
    const [f] = await peer.waitFrames(1);
    expect(f).toEqual({ fin: true, rsv1: false, opcode: Opcode.Text, masked: false, payload: Buffer.from('héllo') });
  });

  it('write(Buffer) and write(Uint8Array) send binary frames', async () => {
    const { conn, peer } = await open();
    conn.write(Buffer.from([1, 2, 3]));
    const backing = new Uint8Array([9, 9, 4, 5, 6, 9]);
    conn.write(backing.subarray(2, 5)); // a view with a byteOffset
    const frames = await peer.waitFrames(2);
    expect(frames.map((f) => [f.opcode, [...f.payload]])).toEqual([
      [Opcode.Binary, [1, 2, 3]],
      [Opcode.Binary, [4, 5, 6]],
    ]);
  });

  it('write(bytes, false) sends text and write(string, true) sends binary; writeText/writeBinary force the type', async () => {
    const { conn, peer } = await open();
    conn.write(Buffer.from('as text'), false);
    conn.write('as binary', true);
    conn.writeText(Buffer.from('text bytes'));
    conn.writeBinary('binary string');
    const frames = await peer.waitFrames(4);
    expect(frames.map((f) => [f.opcode, f.payload.toString()])).toEqual([
      [Opcode.Text, 'as text'],
      [Opcode.Binary, 'as binary'],
      [Opcode.Text, 'text bytes'],
      [Opcode.Binary, 'binary string'],
    ]);
  });

  it('bytes that are not UTF-8 are refused as text: write rejects WS_ERR_INVALID_UTF8 and nothing is sent', async () => {
    const { conn, peer } = await open();
    const bad = Buffer.from([0x68, 0xff, 0x69]);
    const err = await rejectionOf(conn.write(bad, false));
    expectError(err, WebSocketError, ErrorCode.InvalidUtf8, 1007, 'text message is not valid UTF-8');
    expectError(await rejectionOf(conn.writeText(bad)), WebSocketError, ErrorCode.InvalidUtf8, 1007, 'not valid UTF-8');
    expect(() => conn.tryWrite(bad, false)).toThrow('text message is not valid UTF-8');
    // The connection is unharmed: the next message goes out alone.
    await conn.write('ok');
    const frames = await peer.waitFrames(1);
    await new Promise((r) => setTimeout(r, 20));
    expect(peer.frames).toEqual([frames[0]]);
    expect(frames[0]!.payload.toString()).toBe('ok');
    expect(conn.state).toBe('open');
  });

  it('a string with a lone surrogate is sent as valid UTF-8 (U+FFFD), small or large', async () => {
    const { conn, peer } = await open();
    conn.write('a\ud800b');
    conn.write('x'.repeat(20_000) + '\udc00');
    const frames = await peer.waitFrames(2);
    expect(frames[0]!.payload).toEqual(Buffer.from([0x61, 0xef, 0xbf, 0xbd, 0x62]));
    expect(frames[1]!.payload.length).toBe(20_003);
    expect(frames[1]!.payload.subarray(20_000)).toEqual(Buffer.from([0xef, 0xbf, 0xbd]));
    expect(peer.failure).toBeUndefined();
  });

  it('write() of something that is neither a string nor bytes rejects WS_ERR_INVALID_ARGUMENT', async () => {
    const { conn } = await open();
    const err = await rejectionOf(conn.write(42 as unknown as string));
    expectError(err, WebSocketError, ErrorCode.InvalidArgument, undefined, 'write() takes a string, a Buffer or a Uint8Array');
  });

  it('empty text and empty binary messages are sent as frames with no payload (never dropped)', async () => {
    const { conn, peer } = await open();
    conn.write('');
    conn.write(Buffer.alloc(0));
    conn.write(new Uint8Array(0), false);
    const frames = await peer.waitFrames(3);
    expect(frames.map((f) => [f.opcode, f.fin, f.payload.length])).toEqual([
      [Opcode.Text, true, 0],
      [Opcode.Binary, true, 0],
      [Opcode.Text, true, 0],
    ]);
    expect(peer.raw).toEqual(Buffer.from([0x81, 0x00, 0x82, 0x00, 0x81, 0x00]));
  });
});

describe('batching', () => {
  it('many writes in one tick reach the socket as one write, in order', async () => {
    const { conn, peer, socket } = await open();
    const spy = vi.spyOn(socket, 'write');
    for (let i = 0; i < 100; i++) {
      if (i % 2 === 0) conn.write(`m${i}`);
      else conn.write(Buffer.from(`b${i}`));
    }
    const frames = await peer.waitFrames(100);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(frames.map((f) => f.payload.toString())).toEqual(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? `m${i}` : `b${i}`)));
    expect(frames.map((f) => f.opcode)).toEqual(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? Opcode.Text : Opcode.Binary)));
  });

  it('writes made in later ticks are sent in later batches, still in order', async () => {
    const { conn, peer, socket } = await open();
    const spy = vi.spyOn(socket, 'write');
    conn.write('a');
    conn.write('b');
    await new Promise((r) => setImmediate(r));
    conn.write('c');
    const frames = await peer.waitFrames(3);
    expect(spy).toHaveBeenCalledTimes(2);
    expect(frames.map((f) => f.payload.toString())).toEqual(['a', 'b', 'c']);
  });

  it('writes from concurrent async tasks each arrive whole and in each task\'s order', async () => {
    const { conn, peer } = await open();
    const task = async (name: string): Promise<void> => {
      for (let i = 0; i < 20; i++) {
        await conn.write(`${name}${i}`);
        if (i % 3 === 0) await new Promise((r) => setImmediate(r));
      }
    };
    await Promise.all([task('x'), task('y'), task('z')]);
    const frames = await peer.waitFrames(60);
    for (const name of ['x', 'y', 'z']) {
      const mine = frames.map((f) => f.payload.toString()).filter((p) => p.startsWith(name));
      expect(mine).toEqual(Array.from({ length: 20 }, (_, i) => `${name}${i}`));
    }
  });

  it('the queue counters count frames and payload bytes until the batch is written, then return to 0', async () => {
    const { conn, peer } = await open();
    conn.write('é'); // 2 bytes
    conn.write(Buffer.alloc(10));
    conn.write('');
    expect(conn.queuedFrames).toBe(3);
    expect(conn.queuedBytes).toBe(12);
    expect(conn.oldestQueuedAge).toBe(0);
    await peer.waitFrames(3);
    expect(conn.queuedFrames).toBe(0);
    expect(conn.queuedBytes).toBe(0);
    expect(conn.messagesOut).toBe(3);
    expect(conn.bytesOut).toBe(peer.bytesReceived);
    expect(conn.bytesOut).toBe(2 + 2 + 2 + 10 + 2);
  });
});

describe('large payloads', () => {
  it('payloads of 16 KiB and more (each length encoding) arrive exactly, in order with small ones', async () => {
    const { conn, peer } = await open();
    const sizes = [125, 126, 16 * 1024 - 1, 16 * 1024, 65535, 65536, 1 << 20];
    const payloads = sizes.map((n, i) => Buffer.alloc(n, i + 1));
    const expected: Buffer[] = [];
    for (const p of payloads) {
      conn.write(p);
      conn.write('s');
      expected.push(encodeFrame(Opcode.Binary, p), encodeFrame(Opcode.Text, Buffer.from('s')));
    }
    const big = 'x'.repeat(40_000) + 'é';
    conn.write(big);
    expected.push(encodeFrame(Opcode.Text, Buffer.from(big)));
    await peer.waitFrames(expected.length);
    // Byte for byte what the encoder makes: minimal length encodings, no mask, nothing between.
    expect(peer.raw.equals(Buffer.concat(expected))).toBe(true);
  });

  it('a large Buffer is sent byte for byte and the caller\'s Buffer is not modified', async () => {
    const { conn, peer } = await open();
    const payload = Buffer.alloc(100_000, 0x5a);
    conn.write(payload);
    const [f] = await peer.waitFrames(1);
    expect(f!.payload.equals(Buffer.alloc(100_000, 0x5a))).toBe(true);
    expect(payload.equals(Buffer.alloc(100_000, 0x5a))).toBe(true);
  });
});

describe('client role', () => {
  it('a client masks every frame it sends (data, empty, large, ping, close) with the key from maskKeys', async () => {
    const { conn, peer } = await open({ role: 'client' });
    const big = Buffer.alloc(70_000, 0x33);
    const small = Buffer.from('hello');
    conn.write(small);
    conn.write('text é');
    conn.write('');
    conn.write(big);
    conn.ping('p');
    await peer.waitFrames(5);
    conn.close(1000, 'bye');
    await peer.waitFrames(6);
    const frames = peer.frames;
    expect(frames.every((f) => f.masked)).toBe(true);
    // The pong/ping lane goes first in its batch; the close frame comes last.
    const expected = Buffer.concat([
      encodeFrame(Opcode.Ping, Buffer.from('p'), { maskKey: KEY }),
      encodeFrame(Opcode.Binary, Buffer.from('hello'), { maskKey: KEY }),
      encodeFrame(Opcode.Text, Buffer.from('text é'), { maskKey: KEY }),
      encodeFrame(Opcode.Text, Buffer.alloc(0), { maskKey: KEY }),
      encodeFrame(Opcode.Binary, Buffer.alloc(70_000, 0x33), { maskKey: KEY }),
      encodeFrame(Opcode.Close, Buffer.from([0x03, 0xe8, ...Buffer.from('bye')]), { maskKey: KEY }),
    ]);
    expect(peer.raw.equals(expected)).toBe(true);
    // Masking happens in the outgoing batch, never in the caller's buffers.
    expect(small.toString()).toBe('hello');
    expect(big.equals(Buffer.alloc(70_000, 0x33))).toBe(true);
  });

  it('a server never masks (RFC 6455 §5.1)', async () => {
    const { conn, peer } = await open();
    conn.write('a');
    conn.write(Buffer.alloc(20_000));
    conn.ping('x');
    const frames = await peer.waitFrames(3);
    expect(frames.map((f) => f.masked)).toEqual([false, false, false]);
  });
});

describe('after close', () => {
  it('write() on a closing or closed connection rejects WS_ERR_CONNECTION_CLOSED and tryWrite answers closed', async () => {
    const { conn, peer } = await open();
    conn.close();
    expect(conn.state).toBe('closing');
    expectError(await rejectionOf(conn.write('late')), ConnectionError, ErrorCode.ConnectionClosed, undefined, 'connection is closing');
    expect(conn.tryWrite('late')).toBe('closed');
    await peer.waitFrame(Opcode.Close);
    peer.sendClose(1000);
    await conn.closed;
    expectError(await rejectionOf(conn.write('later')), ConnectionError, ErrorCode.ConnectionClosed, 1000, 'connection is closed');
    expect(conn.tryWrite(Buffer.from('x'))).toBe('closed');
    await waitUntil(() => peer.gotEnd, 'TCP end');
    expect(peer.dataFrames).toEqual([]);
  });
});

describe('replies written while a read is handled', () => {
  it('go out in one socket write before the data event returns (no nextTick per message)', async () => {
    const { conn, socket, peer } = await open({ transport: 'memory', handlers: { handleData: (c, d, isBinary) => void c.write(d, isBinary) } });
    const writes = vi.spyOn(socket, 'write');
    // Three messages in one chunk, as one TCP read would bring them.
    const chunk = Buffer.concat([peer.frame(Opcode.Text, 'a'), peer.frame(Opcode.Text, 'bb'), peer.frame(Opcode.Binary, Buffer.from([1, 2, 3]))]);
    socket.emit('data', chunk);
    expect(writes).toHaveBeenCalledTimes(1);
    const echoes = await peer.waitFrames(3);
    expect(echoes.map((f) => [f.opcode, f.payload.toString('hex')])).toEqual([
      [Opcode.Text, Buffer.from('a').toString('hex')],
      [Opcode.Text, Buffer.from('bb').toString('hex')],
      [Opcode.Binary, '010203'],
    ]);
    // A write from outside a read still waits for the end of the turn, batched with the next ones.
    conn.write('x');
    conn.write('y');
    expect(writes).toHaveBeenCalledTimes(1);
    await peer.waitFrames(5);
    expect(writes).toHaveBeenCalledTimes(2);
  });
});

describe('writing back the text message being handled', () => {
  it('is checked once (on arrival); the same bytes changed and written after the handler returned are checked again', async () => {
    let kept: Buffer | undefined;
    let other: Buffer | undefined;
    let refused: unknown;
    const { conn, peer } = await open({
      handlers: {
        handleData: (c, d, isBinary) => {
          if (other === undefined) {
            kept = d;
            void c.write(d, isBinary); // the echo: the message's own Buffer, as text
            return;
          }
          // Inside a later handler call: another Buffer is checked as any write is.
          try {
            c.tryWrite(other, false);
            refused = 'queued';
          } catch (err) {
            refused = err;
          }
        },
      },
    });
    peer.send(Opcode.Text, 'héllo');
    const [echo] = await peer.waitFrames(1);
    expect(echo).toMatchObject({ opcode: Opcode.Text, payload: Buffer.from('héllo') });
    // After the handler returned, the Buffer is no longer the message being handled: bytes made
    // invalid in place are refused like any other.
    kept![1] = 0xff;
    expectError(await rejectionOf(conn.write(kept!, false)), WebSocketError, ErrorCode.InvalidUtf8, 1007, 'not valid UTF-8');
    other = Buffer.from(kept!);
    peer.send(Opcode.Text, 'again');
    await waitUntil(() => refused !== undefined, 'the refusal of the changed copy');
    expectError(refused, WebSocketError, ErrorCode.InvalidUtf8, 1007, 'not valid UTF-8');
    expect(conn.state).toBe('open');
  });
});

describe('the outbox across turns', () => {
  it('small and big batches in turn: every message once, in order, nothing left behind or sent twice', async () => {
    const { conn, peer } = await open();
    const sent: string[] = [];
    let n = 0;
    // 3, then 100 (a big batch gives its slots back), then 2, then 5 (reusing slots of earlier turns).
    for (const batch of [3, 100, 2, 5, 1]) {
      for (let i = 0; i < batch; i++) {
        const m = `m${n++}`;
        sent.push(m);
        expect(conn.tryWrite(m)).toBe('queued');
      }
      expect(conn.queuedFrames).toBe(batch);
      await peer.waitFrames(sent.length);
      expect(conn.queuedFrames).toBe(0);
    }
    await new Promise((r) => setTimeout(r, 30));
    expect(peer.dataFrames.map((f) => f.payload.toString())).toEqual(sent);
  });

  it('big batches in a row keep the slots: a shorter one after a longer one sends only its own messages', async () => {
    const { conn, peer } = await open();
    const sent: string[] = [];
    let n = 0;
    // 300 then 200 then 90 (big after big: the slots of the 300 are reused), then 4 (small: given
    // back), then 150 and 70 (big again), then 1.
    for (const batch of [300, 200, 90, 4, 150, 70, 1]) {
      for (let i = 0; i < batch; i++) {
        const m = `b${n++}`;
        sent.push(m);
        expect(conn.tryWrite(m)).toBe('queued');
      }
      expect(conn.queuedFrames).toBe(batch);
      expect(conn.queuedBytes).toBe(sent.slice(-batch).reduce((a, m) => a + m.length, 0));
      await peer.waitFrames(sent.length);
      expect(conn.queuedFrames).toBe(0);
      expect(conn.queuedBytes).toBe(0);
    }
    await new Promise((r) => setTimeout(r, 30));
    expect(peer.dataFrames.map((f) => f.payload.toString())).toEqual(sent);
    expect(conn.delivered).toBe(sent.length);
  });
});
