/**
 * RFC 7692 §5 lets a client send several permessage-deflate offers in order of preference. When
 * the user asks for server_max_window_bits, the client also offers the same without it, so a
 * server that does not support that parameter (it declines the first offer, §7.1.2.1) or ignores
 * it (Bun answers without it) still negotiates compression.
 */
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { deflateRawSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, HandshakeError, Server } from '../../src/index.js';
import { closeAll, computeAcceptKey, guardProcess, readRequestHead, startServer, startTcpServer } from '../helpers/net.js';
import { startWsServer } from '../helpers/ws-peer.js';

guardProcess();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await closeAll();
});

/** A deflate echo Server behind an upgrade listener that drops every offer carrying server_max_window_bits. */
async function serverWithoutServerMaxWindowBits() {
  const offered: string[] = [];
  const server = new Server({ deflate: { threshold: 0 } }).handleData((c, d, b) => c.write(Buffer.from(d), b));
  const http = createHttpServer();
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const ext = req.headers['sec-websocket-extensions'] ?? '';
    offered.push(ext);
    const plain = ext
      .split(',')
      .map((o) => o.trim())
      .filter((o) => !o.includes('server_max_window_bits'));
    if (plain.length > 0) req.headers['sec-websocket-extensions'] = plain.join(', ');
    else delete req.headers['sec-websocket-extensions'];
    server.upgrade(req, socket, head);
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  cleanups.push(async () => {
    await server.close();
    await new Promise<void>((r) => http.close(() => r()));
  });
  return { url: `ws://127.0.0.1:${(http.address() as { port: number }).port}/`, offered };
}

const big = 'compress me '.repeat(200);

describe('a fallback offer without server_max_window_bits', () => {
  it('is sent after the offer with the parameter', async () => {
    const s = await serverWithoutServerMaxWindowBits();
    const conn = await connect(s.url, { deflate: { serverMaxWindowBits: 10 } });
    expect(s.offered).toEqual([
      'permessage-deflate; server_max_window_bits=10; client_max_window_bits, permessage-deflate; client_max_window_bits',
    ]);
    await conn.close();
  });

  it('negotiates compression with a server that declines server_max_window_bits', async () => {
    const s = await serverWithoutServerMaxWindowBits();
    const conn = await connect(s.url, { deflate: { serverMaxWindowBits: 10, threshold: 0 } });
    // server_no_context_takeover: the server's default mode, 'shared'
    expect(conn.extensions).toBe('permessage-deflate; server_no_context_takeover');
    await conn.write(big);
    for await (const m of conn) {
      expect(m.data.toString()).toBe(big);
      break;
    }
  });

  it('with fallback: false, the same server leaves the connection uncompressed', async () => {
    const s = await serverWithoutServerMaxWindowBits();
    const conn = await connect(s.url, { deflate: { serverMaxWindowBits: 10, fallback: false } });
    expect(s.offered).toEqual(['permessage-deflate; server_max_window_bits=10; client_max_window_bits']);
    expect(conn.extensions).toBeUndefined();
    await conn.close();
  });

  it('a server that supports the parameter takes the first offer', async () => {
    const { url } = await startServer({ deflate: true });
    const conn = await connect(url, { deflate: { serverMaxWindowBits: 10 } });
    expect(conn.extensions).toBe('permessage-deflate; server_no_context_takeover; server_max_window_bits=10');
    await conn.close();
  });

  it('is not sent when no server_max_window_bits is asked for', async () => {
    const s = await serverWithoutServerMaxWindowBits();
    const conn = await connect(s.url, { deflate: true });
    expect(s.offered).toEqual(['permessage-deflate; client_max_window_bits']);
    await conn.close();
  });
});

describe('against ws configured without server_max_window_bits (serverMaxWindowBits: false)', () => {
  it('ws declines the first offer and takes the fallback (its echo comes compressed); without the fallback ws refuses the handshake', async () => {
    // ws's lib/permessage-deflate.js skips every offer with server_max_window_bits when this is
    // false (its typings only say number).
    const serverMaxWindowBits = false as unknown as number;
    const ws = await startWsServer({ perMessageDeflate: { serverMaxWindowBits, threshold: 0 } }, (peer) => {
      peer.ws.on('message', (data, isBinary) => peer.ws.send(data as Buffer, { binary: isBinary, compress: true }));
    });
    cleanups.push(ws.close);
    const rsv1: boolean[] = [];
    const conn = await connect(ws.url, { deflate: { serverMaxWindowBits: 10, threshold: 0 }, handleFrame: (_c, f) => void rsv1.push(f.rsv1) });
    // The answer carries no server_max_window_bits: it matches the fallback offer only.
    expect(conn.extensions).toBe('permessage-deflate');
    await conn.write(big);
    for await (const m of conn) {
      expect(m.data.toString()).toBe(big);
      break;
    }
    expect(rsv1).toEqual([true]); // ws's echo came compressed
    // Without the fallback, ws finds no acceptable offer and refuses the whole handshake (400).
    const strict = await connect(ws.url, { deflate: { serverMaxWindowBits: 10, fallback: false } }).catch((e: unknown) => e);
    expect(strict).toBeInstanceOf(HandshakeError);
    expect((strict as HandshakeError).status).toBe(400);
  });
});

describe('against a server that ignores server_max_window_bits (as Bun does)', () => {
  /** A raw server that accepts with a bare `permessage-deflate` and sends one message compressed with a 32 KiB window. */
  async function ignoringServer(payload: Buffer) {
    const f = await startTcpServer((socket) => {
      void readRequestHead(socket)
        .then(({ headers }) => {
          socket.write(
            `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${computeAcceptKey(headers['sec-websocket-key']!)}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n`,
          );
          // RFC 7692 §7.2.1: compress, drop the trailing 00 00 ff ff; RSV1 marks the message.
          const z = deflateRawSync(payload, { windowBits: 15, finishFlush: 2 /* Z_SYNC_FLUSH */ });
          const body = z.subarray(0, z.length - 4);
          const header = body.length < 126 ? Buffer.from([0xc2, body.length]) : Buffer.from([0xc2, 126, body.length >> 8, body.length & 0xff]);
          socket.write(Buffer.concat([header, body]));
        })
        .catch(() => {});
    });
    cleanups.push(f.close);
    return `ws://127.0.0.1:${f.port}/`;
  }

  it('negotiates through the fallback offer and inflates with the full window the server uses', async () => {
    // 4 KiB of noise, twice: the second copy is a back-reference 4 KiB away, farther than a
    // 2^10-byte window reaches, so inflating with the first offer's parameters would fail.
    const noise = randomBytes(4096);
    const payload = Buffer.concat([noise, noise]);
    const url = await ignoringServer(payload);
    const conn = await connect(url, { deflate: { serverMaxWindowBits: 10 } });
    expect(conn.extensions).toBe('permessage-deflate');
    for await (const m of conn) {
      expect(Buffer.compare(m.data, payload)).toBe(0);
      break;
    }
  });

  it('without the fallback the answer does not match the only offer, and the client fails the handshake (§7.1.2.1)', async () => {
    const url = await ignoringServer(Buffer.from('x'));
    const err = await connect(url, { deflate: { serverMaxWindowBits: 10, fallback: false } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as Error).message).toBe('Invalid permessage-deflate response: server_max_window_bits was requested but not accepted');
  });
});
