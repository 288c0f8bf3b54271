/**
 * Issue 15, memory: a large permessage-deflate frame is inflated on the thread pool and its
 * output joined over a few turns (src/protocol/join-in-turns.ts). While that goes on, the
 * connection holds the compressed payload, the inflated chunks and, during the join, the joined
 * copy too. The inbound budget (`conn.inboundBytes`, `maxInboundBytes`) must count what is held,
 * and a peer must not be able to hold more than the stated bound:
 *   max(maxInboundBytes, maxFrameSize + maxMessageSize, 2 × maxMessageSize) + SLACK,
 * and at most maxInboundBytes + SLACK while messages wait downstream (README, *Hostile input*).
 *
 * "Real" here is found by walking the buffers the connection references (Conn
 * inboundHeldBuffers, each chunk's ArrayBuffer at its full size), independently of the
 * counters the budget reads; both are sampled on every turn of the event loop, which is when
 * the join and the thread-pool callbacks run.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Conn } from '../../src/index.js';
import { inboundHeldBuffers } from '../../src/conn/conn.js';
import { codecTurns } from '../../src/conn/codec-scheduler.js';
import { forceSyncZlib } from '../../src/protocol/zlib-sync.js';
import { closeAll, deferred, guardProcess, startServer, waitUntil, withTimeout } from '../helpers/net.js';
import { compressibleText } from '../helpers/text.js';

guardProcess();
afterEach(async () => {
  forceSyncZlib(undefined);
  await closeAll();
});

const MiB = 1024 * 1024;
/**
 * What the walk may see beyond the counters: the unused rest of zlib's 256 KiB output buffer in
 * each of a frame's two thread-pool runs (its payload, then the trailer), and one socket read.
 * INFLATE_MEMORY_REPORT=1 prints the peaks.
 */
const SLACK = 576 * 1024;

interface Peaks {
  /** The largest `inboundBytes` seen. */
  counted: number;
  /** The largest walked total seen. */
  real: number;
  /** The largest amount by which the walked total exceeded what was counted at the same moment. */
  uncounted: number;
  samples: number;
}

/** Sample `conns` on every turn of the event loop until `stop` is called. */
function sampleEveryTurn(conns: () => Conn<any>[]): { peaks: Map<Conn<any>, Peaks>; stop: () => void; sampleNow: () => void; reset: () => void } {
  const peaks = new Map<Conn<any>, Peaks>();
  let running = true;
  const sampleNow = (): void => {
    for (const c of conns()) {
      const counted = c.inboundBytes;
      const real = inboundHeldBuffers(c);
      let p = peaks.get(c);
      if (p === undefined) peaks.set(c, (p = { counted: 0, real: 0, uncounted: 0, samples: 0 }));
      p.counted = Math.max(p.counted, counted);
      p.real = Math.max(p.real, real);
      p.uncounted = Math.max(p.uncounted, real - counted);
      p.samples++;
    }
  };
  const report = (): void => {
    if (process.env['INFLATE_MEMORY_REPORT'] === undefined) return;
    for (const [c, p] of peaks) console.log(`conn ${c.id}: peak real ${p.real}, peak counted ${p.counted}, most uncounted ${p.uncounted}, ${p.samples} samples`);
  };
  const tick = (): void => {
    if (!running) return;
    sampleNow();
    setImmediate(tick);
  };
  setImmediate(tick);
  return {
    peaks,
    stop: () => {
      running = false;
      report();
    },
    sampleNow,
    reset: () => {
      report();
      peaks.clear();
    },
  };
}

describe('the inbound budget counts a frame inflated on the thread pool', () => {
  for (const fallback of [false, true]) {
    it(`one message just under maxMessageSize: what is counted is what is held (chunks, then chunks + joined copy), within the slack${fallback ? ' (public stream API fallback)' : ''}`, async () => {
      if (fallback) forceSyncZlib(false);
      const M = 8 * MiB;
      const opened = deferred<Conn<undefined>>();
      const got = deferred<Buffer>();
      const s = await startServer({ deflate: { threshold: 0 }, maxMessageSize: M, maxInboundBytes: M, maxFrameSize: MiB }, (srv) =>
        srv.handleOpen((c) => opened.resolve(c)).handleData((_c, d) => got.resolve(Buffer.from(d))),
      );
      const client = await connect(s.url, { deflate: { threshold: 0 }, maxMessageSize: M });
      const sc = await withTimeout(opened.promise, 2000, 'handleOpen');
      const sampler = sampleEveryTurn(() => [sc]);
      const message = compressibleText(M - 1024, 1);
      await client.write(message, true);
      const echoed = await withTimeout(got.promise, 20_000, 'the message');
      sampler.stop();
      expect(echoed.equals(message)).toBe(true);
      const p = sampler.peaks.get(sc)!;
      // The sampler saw the pieces (and, on the thread-pool path, the pieces and the joined copy
      // at once, about twice the message; the fallback joins in one synchronous call).
      expect(p.real, 'the walk saw the inflated pieces').toBeGreaterThan(fallback ? 0.9 * M : 1.5 * M);
      // What the budget counted at each moment covers what was held.
      expect(p.uncounted, `uncounted bytes at the worst moment (peak real ${p.real}, peak counted ${p.counted})`).toBeLessThanOrEqual(SLACK);
      // The stated bound for a lone message: max(budget, maxFrameSize + M, 2M) + slack.
      expect(p.real).toBeLessThanOrEqual(Math.max(M, MiB + M, 2 * M) + SLACK);
      await waitUntil(() => sc.inboundBytes === 0, 2000, 'nothing held after delivery');
      await client.close();
    });
  }

  it('a compression bomb behind a message the handler still holds waits for it: the connection stays within maxInboundBytes until the handler is done', async () => {
    const M = 8 * MiB;
    const B = 8 * MiB;
    const opened = deferred<Conn<undefined>>();
    const release = deferred<void>();
    const lengths: number[] = [];
    const s = await startServer({ deflate: { threshold: 0 }, maxMessageSize: M, maxInboundBytes: B, maxFrameSize: MiB }, (srv) =>
      srv.handleOpen((c) => opened.resolve(c)).handleData(async (_c, d) => {
        lengths.push(d.length);
        if (lengths.length === 1) await release.promise;
      }),
    );
    const client = await connect(s.url, { deflate: { threshold: 0 }, maxMessageSize: M });
    const sc = await withTimeout(opened.promise, 2000, 'handleOpen');
    const sampler = sampleEveryTurn(() => [sc]);
    const first = compressibleText(6 * MiB, 2);
    await client.write(first, true);
    // The first message alone may take twice its size while it is joined (nothing downstream
    // then); what matters here is what follows, while the handler holds it.
    await waitUntil(() => lengths.length === 1, 10_000, 'the first message');
    sampler.reset();
    // The bomb: 8 MiB - 1 KiB of zeros, about 8 KiB on the wire.
    await client.write(Buffer.alloc(M - 1024), true);
    await waitUntil(() => lengths.length === 1 && sc.readingPaused && sc.bytesIn >= client.bytesOut, 10_000, 'the handler holding the first message, the bomb read, reading paused');
    // Give the bomb every chance to inflate while the handler holds the first message.
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    sampler.sampleNow();
    const whileHeld = { ...sampler.peaks.get(sc)! };
    if (process.env['INFLATE_MEMORY_REPORT'] !== undefined) console.log(`while the handler held the first message: peak real ${whileHeld.real}, peak counted ${whileHeld.counted}`);
    expect(lengths).toEqual([first.length]);
    expect(whileHeld.real, `held while the handler kept the first message (counted ${whileHeld.counted})`).toBeLessThanOrEqual(B + SLACK);
    expect(whileHeld.uncounted).toBeLessThanOrEqual(SLACK);
    release.resolve();
    await waitUntil(() => lengths.length === 2, 20_000, 'the bomb delivered once the handler was done');
    sampler.stop();
    expect(lengths).toEqual([first.length, M - 1024]);
    const p = sampler.peaks.get(sc)!;
    expect(p.uncounted).toBeLessThanOrEqual(SLACK);
    expect(p.real).toBeLessThanOrEqual(Math.max(B, MiB + M, 2 * M) + SLACK);
    await client.close();
  });

  it('a bomb over maxMessageSize is refused with 1009 before any join, and nothing stays held', async () => {
    const M = 4 * MiB;
    const opened = deferred<Conn<undefined>>();
    let delivered = 0;
    const s = await startServer({ deflate: { threshold: 0 }, maxMessageSize: M, maxFrameSize: MiB }, (srv) =>
      srv.handleOpen((c) => opened.resolve(c)).handleData(() => void delivered++),
    );
    const client = await connect(s.url, { deflate: { threshold: 0 }, maxMessageSize: 64 * MiB });
    const sc = await withTimeout(opened.promise, 2000, 'handleOpen');
    const sampler = sampleEveryTurn(() => [sc]);
    await client.write(Buffer.alloc(64 * MiB)); // ~64 KiB compressed
    const info = await withTimeout(client.closed, 10_000, 'the close');
    sampler.stop();
    expect(info.code).toBe(1009);
    expect(delivered).toBe(0);
    const p = sampler.peaks.get(sc)!;
    // Stopped at the limit plus one thread-pool chunk, never joined (no second copy).
    expect(p.real).toBeLessThanOrEqual(M + SLACK);
    expect(p.uncounted).toBeLessThanOrEqual(SLACK);
    expect(sc.inboundBytes).toBe(0);
  });

  it('four connections pipelining large messages while the pool is busy (1 slot, 1 waiting): each stays within its bound, counted, and every message arrives in order', async () => {
    const M = 4 * MiB;
    const B = 4 * MiB;
    const conns: Conn<undefined>[] = [];
    const got = new Map<number, number[]>();
    const s = await startServer(
      { deflate: { threshold: 0, threadPoolConcurrency: 1, threadPoolMaxQueued: 1, threadPoolMaxQueuedBytes: 256 * 1024 }, maxMessageSize: M, maxInboundBytes: B, maxFrameSize: MiB },
      (srv) =>
        srv.handleOpen((c) => void conns.push(c)).handleData(async (c, d) => {
          (got.get(c.id) ?? got.set(c.id, []).get(c.id)!).push(d[0]!);
          await new Promise((r) => setTimeout(r, 5)); // a handler that takes a while: messages wait downstream
        }),
    );
    const clients = await Promise.all([0, 1, 2, 3].map(() => connect(s.url, { deflate: { threshold: 0 }, maxMessageSize: M })));
    await waitUntil(() => conns.length === 4, 2000, 'four connections');
    const sampler = sampleEveryTurn(() => conns);
    const turnsBefore = codecTurns();
    const sizes = [3 * MiB, M - 1024, 2 * MiB];
    clients.forEach((c, i) => sizes.forEach((n, j) => {
      const m = compressibleText(n, 10 * i + j);
      m[0] = j; // the order mark
      void c.write(m, true);
    }));
    await waitUntil(() => [...got.values()].reduce((n, l) => n + l.length, 0) === 12, 30_000, 'every message');
    sampler.stop();
    for (const l of got.values()) expect(l).toEqual([0, 1, 2]);
    // The waiting room was full at times: some of the inflating ran in slices on the loop (and was counted there too).
    expect(codecTurns() - turnsBefore).toBeGreaterThan(0);
    for (const c of conns) {
      const p = sampler.peaks.get(c)!;
      expect(p.uncounted, `conn ${c.id}`).toBeLessThanOrEqual(SLACK);
      expect(p.real, `conn ${c.id}`).toBeLessThanOrEqual(Math.max(B, MiB + M, 2 * M) + SLACK);
    }
    await Promise.all(clients.map((c) => c.close()));
  });
});
