/** The client against hand-written server bytes: frames riding with the 101, masking, closing. */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type CloseInfo, type WebSocketError } from '../../src/index.js';
import { Opcode } from '../../src/protocol/constants.js';
import { encodeFrame } from '../../src/protocol/frame-encoder.js';
import { FrameParser, ParseStatus, type Frame } from '../../src/protocol/frame-parser.js';
import { computeAcceptKey, deferred, guardProcess, readRequestHead, startTcpServer, waitUntil, withTimeout } from '../helpers/net.js';

guardProcess();
const fakes: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of fakes.splice(0)) await f();
});

/** A fake server: answers 101 (plus `after101` bytes in the same write), then runs `then`. */
async function fake(after101: Buffer, then?: (socket: Socket, frames: Frame[]) => void): Promise<string> {
  const f = await startTcpServer((socket) => {
    void readRequestHead(socket)
      .then(({ headers }) => {
        const head = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${computeAcceptKey(headers['sec-websocket-key']!)}\r\n\r\n`;
        socket.write(Buffer.concat([Buffer.from(head), after101]));
        const frames: Frame[] = [];
        const p = new FrameParser({ role: 'server', maxFrameSize: 1 << 20, maxMessageSize: 1 << 20, allowRsv1: false });
        socket.on('data', (c: Buffer) => {
          p.push(Buffer.from(c));
          while (p.advance() === ParseStatus.Frame) {
            const fr = p.frame();
            frames.push({ ...fr, payload: Buffer.from(fr.payload) });
          }
        });
        then?.(socket, frames);
      })
      .catch(() => {});
  });
  fakes.push(f.close);
  return `ws://127.0.0.1:${f.port}/`;
}

describe('client on the wire', () => {
  it('delivers frames that arrive in the same TCP segment as the 101 response', async () => {
    const url = await fake(Buffer.concat([encodeFrame(Opcode.Text, Buffer.from('early')), encodeFrame(Opcode.Binary, Buffer.from([1, 2]))]));
    const conn = await connect(url);
    const it = conn[Symbol.asyncIterator]();
    expect((await withTimeout(it.next(), 2000, 'first')).value).toEqual({ data: Buffer.from('early'), isBinary: false });
    expect((await withTimeout(it.next(), 2000, 'second')).value).toEqual({ data: Buffer.from([1, 2]), isBinary: true });
    conn.terminate();
  });

  it('masks every frame it sends (RFC 6455 §5.3)', async () => {
    const got = deferred<Frame[]>();
    const url = await fake(Buffer.alloc(0), (_s, frames) => void got.resolve(frames));
    const conn = await connect(url);
    await conn.write('masked?');
    const frames = await got.promise;
    await waitUntil(() => frames.length === 1, 2000, 'the frame');
    expect(frames[0]!.masked).toBe(true);
    expect(frames[0]!.payload.toString()).toBe('masked?');
    conn.terminate();
  });

  it('fails a masked frame from the server with 1002 (RFC 6455 §5.1)', async () => {
    const errors: WebSocketError[] = [];
    const url = await fake(encodeFrame(Opcode.Text, Buffer.from('hi'), { maskKey: 0x01020304 }));
    const conn = await connect(url, { handleError: (_c, e) => errors.push(e), closeTimeout: 300 });
    const info = await withTimeout(conn.closed, 2000, 'the close');
    expect(info.code).toBe(1002);
    expect(errors[0]!.code).toBe('WS_ERR_UNEXPECTED_MASK');
    expect(errors[0]!.closeCode).toBe(1002);
  });

  it('sends exactly one Close frame when close() is called twice', async () => {
    const got = deferred<Frame[]>();
    const url = await fake(Buffer.alloc(0), (s, frames) => {
      got.resolve(frames);
      s.on('data', () => {
        if (frames.some((f) => f.opcode === Opcode.Close)) {
          s.write(encodeFrame(Opcode.Close, Buffer.from([0x03, 0xe8])));
          setTimeout(() => s.end(), 20);
        }
      });
    });
    const conn = await connect(url);
    const p1 = conn.close(1000, 'one');
    const p2 = conn.close(1001, 'two');
    expect(p2).toBe(p1);
    const info = await withTimeout(p1, 2000, 'the close');
    const frames = await got.promise;
    expect(frames.filter((f) => f.opcode === Opcode.Close)).toHaveLength(1);
    expect(info).toMatchObject({ code: 1000, wasClean: true });
  });

  it('ends the TCP connection itself after closeTimeout when the server echoes Close but never closes TCP', async () => {
    const closed = deferred<CloseInfo>();
    const url = await fake(Buffer.alloc(0), (s, frames) => {
      s.on('data', () => {
        if (frames.some((f) => f.opcode === Opcode.Close)) s.write(encodeFrame(Opcode.Close, Buffer.from([0x03, 0xe8])));
      });
    });
    const conn = await connect(url, { closeTimeout: 200, handleClose: (_c, i) => closed.resolve(i) });
    const t0 = Date.now();
    void conn.close();
    const info = await withTimeout(closed.promise, 2000, 'handleClose');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(info.code).toBe(1000);
    expect(info.error?.code).toBe('WS_ERR_CLOSE_TIMEOUT');
    expect(info.wasClean).toBe(false);
  });

  it('ends after closeTimeout when the server never answers the Close frame', async () => {
    const url = await fake(Buffer.alloc(0));
    const conn = await connect(url, { closeTimeout: 200 });
    const info = await withTimeout(conn.close(), 2000, 'the close');
    expect(info.code).toBe(1006);
    expect(info.wasClean).toBe(false);
    expect(info.error?.code).toBe('WS_ERR_CLOSE_TIMEOUT');
    expect(info.error?.message).toBe('closing handshake not completed within 200 ms');
  });
});
