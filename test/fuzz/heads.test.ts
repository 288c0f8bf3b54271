/**
 * Fuzz targets (issue 10) for the handshake parsers: the server's request-head reader
 * (src/protocol/http-request.ts), the client's check of the server's response (node's parser,
 * then validateServerResponse) and the Sec-WebSocket-Extensions parser. Invariants: never throws
 * (or throws only the typed HandshakeError where that is the contract), never hangs, bounded by
 * maxHeaderSize, the same result for any split, and format/parse round trips.
 */
import { createServer, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, WebSocketError } from '../../src/index.js';
import { HandshakeError } from '../../src/protocol/errors.js';
import { formatExtensions, parseExtensions } from '../../src/protocol/extensions.js';
import { computeAcceptKey, validateServerResponse } from '../../src/protocol/handshake.js';
import { RequestHeadReader, type RequestHeadResult } from '../../src/protocol/http-request.js';
import { guardProcess } from '../helpers/net.js';
import { EXTENSION_SEEDS, REQUEST_SEEDS } from './corpus.js';
import { TARGET_TIMEOUT, applyEdits, edits, fuzzParams, mutated, split, splits } from './settings.js';

guardProcess();

const LIMITS = { maxHeaderSize: 1024, maxHeaderFields: 8 };

function readHead(chunks: Buffer[]): unknown {
  const reader = new RequestHeadReader(LIMITS);
  let result: RequestHeadResult | undefined;
  let fed = 0;
  for (const c of chunks) {
    fed += c.length;
    result = reader.push(Buffer.from(c));
    if (result !== undefined) break;
    // Incomplete: never more than maxHeaderSize bytes have been taken in.
    expect(fed).toBeLessThan(LIMITS.maxHeaderSize);
  }
  if (result === undefined) return undefined;
  if (!result.ok) {
    expect(result.error).toBeInstanceOf(HandshakeError);
    expect([400, 431, 505]).toContain(result.error.status);
    return { status: result.error.status, message: result.error.message };
  }
  const { method, url, httpVersion, headers, rawHeaders } = result.request;
  // `head` is the bytes after the request head in the chunk that completed it: compare the whole rest.
  return { method, url, httpVersion, headers: { ...headers }, rawHeaders };
}

describe('fuzz: request-head reader', () => {
  it('never throws, holds at most maxHeaderSize, and gives the same result for any split', () => {
    fc.assert(
      fc.property(mutated(REQUEST_SEEDS), splits(), (bytes, cuts) => {
        expect(readHead(split(bytes, cuts))).toEqual(readHead([bytes]));
      }),
      fuzzParams(),
    );
  }, TARGET_TIMEOUT);
});

describe('fuzz: Sec-WebSocket-Extensions parser', () => {
  it('returns offers or throws HandshakeError; what it returns formats and parses back to itself', () => {
    const header = mutated(EXTENSION_SEEDS.map((s) => Buffer.from(s, 'latin1'))).map((b) => b.toString('latin1'));
    fc.assert(
      fc.property(header, (value) => {
        let offers;
        try {
          offers = parseExtensions(value);
        } catch (err) {
          expect(err).toBeInstanceOf(HandshakeError);
          return;
        }
        expect(parseExtensions(formatExtensions(offers))).toEqual(offers);
      }),
      fuzzParams(),
    );
  }, TARGET_TIMEOUT);
});

describe('fuzz: the client side of the handshake', () => {
  const valid = (key: string): Record<string, string> => ({
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-accept': computeAcceptKey(key),
    'sec-websocket-extensions': 'permessage-deflate; server_max_window_bits=12',
    'sec-websocket-protocol': 'chat',
  });

  it('validateServerResponse: any header values either pass or throw HandshakeError', () => {
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const field = fc.oneof(fc.constant(undefined), fc.string({ maxLength: 40 }), fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }));
    fc.assert(
      fc.property(fc.integer({ min: 100, max: 599 }), fc.dictionary(fc.constantFrom('upgrade', 'connection', 'sec-websocket-accept', 'sec-websocket-extensions', 'sec-websocket-protocol'), field), (status, over) => {
        const headers = { ...valid(key), ...over };
        try {
          const r = validateServerResponse({ statusCode: status, headers }, { key, protocols: ['chat'], extensionsOffered: true });
          expect(status).toBe(101);
          expect(r.protocol === undefined || r.protocol === 'chat').toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(HandshakeError);
        }
      }),
      fuzzParams(),
    );
  }, TARGET_TIMEOUT);

  // A real server on loopback answers each connect() with a mutation of a valid 101 response.
  let port = 0;
  let nextEdits: Parameters<typeof applyEdits>[1] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = '';
    socket.on('data', (c) => {
      head += c.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      const key = /sec-websocket-key: *([^\r]*)/i.exec(head)?.[1] ?? '';
      const response = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${computeAcceptKey(key)}\r\n\r\n`;
      // A Close frame after the response, so a connection that opens also ends.
      socket.end(Buffer.concat([applyEdits(Buffer.from(response, 'latin1'), nextEdits), Buffer.from([0x88, 0x02, 0x03, 0xe8])]));
    });
  });
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  it('connect(): a mutated 101 response opens the connection or rejects with a WebSocketError; nothing escapes, nothing hangs', async () => {
    await fc.assert(
      fc.asyncProperty(edits(4), async (list) => {
        nextEdits = list;
        try {
          const conn = await connect(`ws://127.0.0.1:${port}/`, { handshakeTimeout: 2000, closeTimeout: 500 });
          const info = await conn.closed;
          expect(typeof info.code).toBe('number');
        } catch (err) {
          expect(err).toBeInstanceOf(WebSocketError);
        }
      }),
      fuzzParams(Math.min(Number(process.env['FUZZ_RUNS'] ?? 40), 40)),
    );
  }, TARGET_TIMEOUT);
});
