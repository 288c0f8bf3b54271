/**
 * Hostile input on real sockets (issue 10): memory bounded in bytes per connection, frame headers
 * that announce more than they send, too many fragments, and no way to end the process. Tests
 * assert on bytes read and held and on which connections closed, never on timings.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:buffer';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, OptionsError, Server, type Conn, type WebSocketError } from '../../src/index.js';
import { Opcode } from '../../src/protocol/constants.js';
import { parseClosePayload } from '../../src/protocol/close.js';
import { RawClient, clientFrame, closeAll, deferred, guardProcess, rawHandshake, startServer, upgradeRequest, waitUntil, withTimeout } from '../helpers/net.js';

guardProcess();
afterEach(closeAll);

const FIXTURE = fileURLToPath(new URL('./fixtures/hostile-headers.mjs', import.meta.url));
const MASK = 0x37fa213d;

/** A masked frame header announcing `len` bytes in the 64-bit field, as a client sends it. */
function header64(len: number, opcode: number = Opcode.Binary, fin = true): Buffer {
  const b = Buffer.alloc(14);
  b[0] = (fin ? 0x80 : 0) | opcode;
  b[1] = 0xff;
  b.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
  b.writeUInt32BE(len % 2 ** 32, 6);
  b.writeUInt32BE(MASK, 10);
  return b;
}

/** The code of the Close frame the server sent, if any. */
function closeCodeOf(client: RawClient): number | undefined {
  const close = client.frames().find((f) => f.opcode === Opcode.Close);
  if (close === undefined) return undefined;
  const parsed = parseClosePayload(close.payload);
  return parsed instanceof Error ? undefined : parsed.code;
}

describe('frame headers cannot end the process (run in a child process under ulimit -v 2.5 GiB)', () => {
  it('a header announcing the largest allowed length, and 40 connections announcing 60 MiB each: nothing reserved, the server still echoes', async () => {
    const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
      // Node 22+ loads undici's llhttp (WebAssembly) with node:http, and its guard regions reserve
      // more address space than the limit: without the trap handler, wasm reserves what it uses.
      const flag = process.allowedNodeEnvironmentFlags.has('--disable-wasm-trap-handler') ? '--disable-wasm-trap-handler' : '';
      execFile('sh', ['-c', `ulimit -v 2621440; exec "${process.execPath}" ${flag} "${FIXTURE}"`], { timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? null), out: stdout + stderr });
      });
    });
    expect(code, `the child process failed:\n${out}`).toBe(0);
    const result = JSON.parse(out.trim().split('\n').pop()!) as { alive: boolean; reply: string; closed: unknown[]; errors: unknown[]; connections: number; maxHeld: number; totalHeld: number };
    expect(result.alive).toBe(true);
    expect(result.reply).toBe('still here');
    // No connection was closed: each frame in progress holds what arrived, in one first step.
    expect(result.closed).toEqual([]);
    expect(result.errors).toEqual([]);
    expect(result.connections).toBe(42);
    expect(result.maxHeld).toBeLessThanOrEqual(64 * 1024);
    expect(result.totalHeld).toBeLessThanOrEqual(42 * 64 * 1024);
  }, 90_000);
});

describe('size limits above what a Buffer can hold are refused when the options are validated', () => {
  for (const key of ['maxFrameSize', 'maxMessageSize', 'maxInboundBytes'] as const) {
    it(`${key} over buffer.constants.MAX_LENGTH: OptionsError naming /${key}, on the server and the client`, async () => {
      const tooBig = constants.MAX_LENGTH + 1;
      expect(() => new Server({ [key]: tooBig })).toThrow(OptionsError);
      expect(() => new Server({ [key]: tooBig })).toThrow(`/${key}`);
      await expect(connect('ws://127.0.0.1:9/', { [key]: tooBig })).rejects.toThrow(`/${key}`);
      expect(() => new Server({ [key]: constants.MAX_LENGTH })).not.toThrow();
    });
  }
});

describe('inbound memory is bounded in bytes per connection (maxInboundBytes)', () => {
  it('256 KiB messages to a handler that does not finish: reading pauses at the budget, not at inboxSize messages, and every message arrives once released', async () => {
    const budget = 1 << 20;
    const size = 256 * 1024;
    const count = 40; // 10 MiB sent; inboxSize 64 would have let all of it in
    const release = deferred<void>();
    const got: Buffer[] = [];
    const opened = deferred<Conn<undefined>>();
    const { port } = await startServer({ maxInboundBytes: budget }, (s) =>
      s.handleOpen((c) => opened.resolve(c)).handleData(async (_c, data) => {
        got.push(Buffer.from(data));
        await release.promise;
      }),
    );
    const { client } = await rawHandshake(port, upgradeRequest());
    const conn = await withTimeout(opened.promise, 2000, 'handleOpen');
    const messages = Array.from({ length: count }, (_, i) => Buffer.alloc(size, i));
    for (const m of messages) client.write(clientFrame(Opcode.Binary, m));
    await serverSocketPaused(conn);
    // Paused: what the server read is the budget plus at most one message and one read (64 KiB).
    expect(conn.bytesIn).toBeLessThanOrEqual(budget + size + 64 * 1024 + 1024);
    expect(conn.inboundBytes).toBeLessThanOrEqual(budget + size + 64 * 1024);
    expect(conn.inboundBytes).toBeGreaterThanOrEqual(budget);
    expect(got.length).toBe(1);
    release.resolve();
    await waitUntil(() => got.length === count, 10_000, 'every message handled');
    expect(got.map((g) => g[0])).toEqual(messages.map((m) => m[0]));
    expect(got.every((g) => g.length === size)).toBe(true);
    await waitUntil(() => conn.inboundBytes === 0, 2000, 'nothing held once handled');
  });

  it('a message larger than the budget still completes (the budget never stalls a single message)', async () => {
    const got = deferred<number>();
    const { port } = await startServer({ maxInboundBytes: 64 * 1024 }, (s) => s.handleData(async (_c, data) => got.resolve(data.length)));
    const { client } = await rawHandshake(port, upgradeRequest());
    client.write(clientFrame(Opcode.Binary, Buffer.alloc(1 << 20, 7)));
    expect(await withTimeout(got.promise, 5000, 'the 1 MiB message')).toBe(1 << 20);
  });

  it('the iterator holds its message until it asks for the next one; reading pauses at the budget', async () => {
    const opened = deferred<Conn<undefined>>();
    const { port } = await startServer({ maxInboundBytes: 512 * 1024 }, (s) => s.handleOpen((c) => opened.resolve(c)));
    const { client } = await rawHandshake(port, upgradeRequest());
    const conn = await withTimeout(opened.promise, 2000, 'handleOpen');
    for (let i = 0; i < 24; i++) client.write(clientFrame(Opcode.Binary, Buffer.alloc(128 * 1024, i)));
    await serverSocketPaused(conn);
    expect(conn.bytesIn).toBeLessThanOrEqual(512 * 1024 + 128 * 1024 + 64 * 1024 + 1024);
    const seen: number[] = [];
    for await (const m of conn) {
      seen.push(m.data[0]!);
      if (seen.length === 24) break;
    }
    expect(seen).toEqual(Array.from({ length: 24 }, (_, i) => i));
  });
});

describe('fragments and slow payloads', () => {
  it('a message of more than maxFragments frames closes that connection with 1009 and WS_ERR_TOO_MANY_FRAGMENTS; another connection is untouched', async () => {
    const errors: WebSocketError[] = [];
    const { port } = await startServer({ maxFragments: 1000 }, (s) => s.handleData((c, d) => c.write(d)).handleError((_c, e) => errors.push(e)));
    const { client: bad } = await rawHandshake(port, upgradeRequest());
    const { client: good } = await rawHandshake(port, upgradeRequest());
    const parts = [clientFrame(Opcode.Text, 'a', false)];
    for (let i = 0; i < 1000; i++) parts.push(clientFrame(Opcode.Continuation, 'a', false));
    bad.write(Buffer.concat(parts));
    await bad.waitClosed(5000);
    expect(closeCodeOf(bad)).toBe(1009);
    expect(errors.map((e) => e.code)).toEqual(['WS_ERR_TOO_MANY_FRAGMENTS']);
    good.write(clientFrame(Opcode.Text, 'hi'));
    await good.waitFor(() => good.frames().length > 0, 2000, 'the echo');
    expect(good.frames()[0]!.payload.toString()).toBe('hi');
    expect(good.closed).toBe(false);
  });

  it('a header announcing 60 MiB then a trickle: holds what arrived, and messageTimeout closes it with 1008 and WS_ERR_MESSAGE_TIMEOUT', async () => {
    const errors: WebSocketError[] = [];
    const opened: Conn<undefined>[] = [];
    const { port } = await startServer({ maxFrameSize: 64 << 20, maxMessageSize: 64 << 20, messageTimeout: 300 }, (s) =>
      s.handleOpen((c) => void opened.push(c)).handleError((_c, e) => errors.push(e)),
    );
    const { client: slow } = await rawHandshake(port, upgradeRequest());
    const { client: idle } = await rawHandshake(port, upgradeRequest());
    await waitUntil(() => opened.length === 2, 2000, 'both open');
    slow.write(Buffer.concat([header64(60 << 20), Buffer.from([1, 2, 3])]));
    const conn = opened.find((c) => c.id === Math.min(...opened.map((o) => o.id)))!;
    await waitUntil(() => conn.bytesIn >= 17, 2000, 'the header read');
    expect(conn.inboundBytes).toBeLessThanOrEqual(64 * 1024);
    const trickle = setInterval(() => slow.write(Buffer.from([0])), 50);
    try {
      await slow.waitClosed(5000);
    } finally {
      clearInterval(trickle);
    }
    expect(closeCodeOf(slow)).toBe(1008);
    expect(errors.map((e) => e.code)).toEqual(['WS_ERR_MESSAGE_TIMEOUT']);
    // The idle connection (no frame in progress) is not subject to it.
    expect(idle.closed).toBe(false);
  });
});

/** Wait until the server has paused reading this connection (backpressure). */
async function serverSocketPaused(conn: Conn<undefined>): Promise<void> {
  await waitUntil(() => conn.readingPaused, 5000, 'the server to pause reading');
}

describe('a garbage request head', () => {
  it('is answered with 400 and closed at once, not after handshakeTimeout; a real client on the same server is untouched', async () => {
    const { port } = await startServer({ handshakeTimeout: 60_000 }, (s) => s.handleData((c, d) => c.write(d)));
    const garbage = await RawClient.connect(port);
    garbage.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
    // Well inside the 60 s handshake timeout: the refusal does not wait for it.
    await garbage.waitClosed(10_000);
    expect(garbage.received.toString('latin1')).toMatch(/^HTTP\/1\.1 400 /);
    const { client } = await rawHandshake(port, upgradeRequest());
    client.write(clientFrame(Opcode.Text, 'ok'));
    await client.waitFor(() => client.frames().length > 0, 2000, 'the echo');
    expect(client.frames()[0]!.payload.toString()).toBe('ok');
  });
});
