/**
 * The shared write slab (src/conn/write-slab.ts): plain TCP connections build their batches in one
 * buffer, and a socket that could not take a batch at once keeps it, so the slab must be let go
 * then. Clients that stop reading force exactly that; every byte must still arrive as sent.
 */
import { connect as netConnect, Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { batchBuffer, settle, sharesSlab } from '../../src/conn/write-slab.js';
import { closeAll, guardProcess, parseServerFrames, startServer, upgradeRequest, waitUntil } from '../helpers/net.js';

guardProcess();
afterEach(closeAll);

describe('write slab', () => {
  it('is shared only by plain node:net sockets', () => {
    expect(sharesSlab(new Socket())).toBe(true);
    expect(sharesSlab(new TLSSocket(new Socket()))).toBe(false);
    expect(sharesSlab(new PassThrough())).toBe(false);
  });

  it('hands out the same memory until a socket keeps it, then new memory', () => {
    const a = batchBuffer(100, true);
    const b = batchBuffer(200, true);
    expect(a.buffer).toBe(b.buffer);
    expect(batchBuffer(100, false).buffer).not.toBe(a.buffer);
    expect(batchBuffer(1 << 20, true).buffer).not.toBe(a.buffer); // bigger than the slab
    settle({ writableLength: 0 } as Duplex, b);
    expect(batchBuffer(10, true).buffer).toBe(a.buffer);
    settle({ writableLength: 5 } as Duplex, b); // this socket still holds the batch
    expect(batchBuffer(10, true).buffer).not.toBe(a.buffer);
  });

  it('clients that stop reading get every byte as sent, in order', async () => {
    const { server, port } = await startServer({ maxQueuedFrames: 1_000_000, maxQueuedBytes: 256 << 20 });
    const N = 3;
    const chunks: Buffer[][] = [];
    const sockets: Socket[] = [];
    for (let i = 0; i < N; i++) {
      const box: Buffer[] = [];
      chunks.push(box);
      const s = netConnect(port, '127.0.0.1');
      s.on('data', (c: Buffer) => box.push(c));
      s.on('error', () => {});
      s.write(upgradeRequest());
      sockets.push(s);
    }
    await waitUntil(() => server.clientCount === N && chunks.every((b) => b.length > 0), 3000, 'the handshakes');
    for (const s of sockets) s.pause(); // stop reading: the kernel buffers fill, writes go partial
    // Different bytes for each connection: a batch written over another's would show.
    const message = (j: number, i: number): Buffer => {
      const b = Buffer.alloc(1000, (i + 83 * j) % 251);
      b.writeUInt32BE(i, 0);
      return b;
    };
    const conns = [...server.connections];
    const TICKS = 200;
    const PER_TICK = 50; // 50 KiB batches: built in the slab
    let kept = false;
    let n = 0;
    for (let t = 0; t < TICKS; t++) {
      for (let k = 0; k < PER_TICK; k++, n++) for (let j = 0; j < N; j++) server.publishTo([conns[j]!], message(j, n));
      await new Promise((r) => setImmediate(r));
      if ([...server.connections].some((c) => c.queuedFrames > 0)) kept = true;
    }
    // The test means something only if some socket could not take its batch at once.
    expect(kept).toBe(true);
    for (const s of sockets) s.resume();
    const total = n;
    const wire = (box: Buffer[]): Buffer => {
      const all = Buffer.concat(box);
      return all.subarray(all.indexOf('\r\n\r\n') + 4);
    };
    await waitUntil(() => chunks.every((box) => wire(box).length >= total * 1004), 20_000, 'every message');
    // (server.connections and the sockets list are both in the order the connections opened.)
    for (let j = 0; j < N; j++) {
      const frames = parseServerFrames(wire(chunks[j]!));
      expect(frames.length).toBe(total);
      for (let i = 0; i < total; i++) {
        if (!frames[i]!.payload.equals(message(j, i))) expect.fail(`connection ${j}: message ${i} differs`);
      }
    }
    for (const s of sockets) s.destroy();
  }, 30_000);
});
