// Optional tracing for bench/peers/stall-server.mjs (`--trace <file>` in bench/deflate-stall.mjs;
// diagnostic only: it slows the server). Records, during the measured window, every event-loop
// callback (async_hooks: TCPWRAP, ZLIB, Immediate, ...) and every call of the steps below that
// took at least STALL_TRACE_MIN_MS (default 1) of wall time, split into the thread's own time and
// its wait for a CPU (the growth of run_delay in /proc/thread-self/schedstat, exact at each
// switch-in); each GC pause; each 1 ms timer tick late by 3 ms or more ('LAG').
// Steps (wschan): FrameParser#advance (unmask, copy, join a payload), FrameParser#push,
// PerMessageDeflate#startInflate (the synchronous first part), #startCompress,
// MessageAssembler#pushInflated (UTF-8 check, join of fragments); both servers: net.Socket#write
// and #uncork, Buffer.concat.

import { createHook } from 'node:async_hooks';
import { closeSync, openSync, readSync, readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const MIN = Number(process.env.STALL_TRACE_MIN_MS ?? 1);
const GC_KIND = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weak callbacks' };

export async function installTrace(kind, dist) {
  let events = [];
  let t0 = performance.now();
  const fd = openSync('/proc/thread-self/schedstat', 'r');
  const buf = Buffer.alloc(128);
  /** ms this thread has spent runnable but not running. */
  const waited = () => Number(buf.toString('latin1', 0, readSync(fd, buf, 0, 128, 0)).split(' ')[1]) / 1e6;
  const rec = (label, start, w0, bytes) => {
    const wall = performance.now() - start;
    if (wall < MIN) return;
    const wait = waited() - w0;
    events.push({ t: Math.round(start - t0), label, ownMs: round(wall - wait), waitMs: round(wait), bytes });
  };
  const wrap = (obj, key, label, size) => {
    const orig = obj[key];
    obj[key] = function (...args) {
      const start = performance.now();
      const w0 = waited();
      try {
        return orig.apply(this, args);
      } finally {
        rec(label, start, w0, size?.(args, this));
      }
    };
  };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.duration >= MIN) events.push({ t: Math.round(e.startTime - t0), label: `GC ${GC_KIND[e.detail?.kind] ?? e.detail?.kind}`, ownMs: round(e.duration) });
    }
  }).observe({ entryTypes: ['gc'] });
  const types = new Map();
  const starts = new Map();
  createHook({
    init: (id, type) => types.set(id, type),
    before: (id) => starts.set(id, [performance.now(), waited()]),
    after: (id) => {
      const s = starts.get(id);
      if (s === undefined) return;
      starts.delete(id);
      rec(`callback ${types.get(id)}`, s[0], s[1]);
    },
    destroy: (id) => types.delete(id),
  }).enable();
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    const lag = now - last - 1;
    last = now;
    if (lag >= 3) events.push({ t: Math.round(now - lag - t0), label: 'LAG', ownMs: round(lag) });
  }, 1).unref();
  wrap(net.Socket.prototype, 'write', 'socket.write', (a) => a[0]?.length);
  wrap(net.Socket.prototype, 'uncork', 'socket.uncork', (a, s) => s.writableLength);
  wrap(Buffer, 'concat', 'Buffer.concat', (a) => a[1] ?? a[0].reduce((n, b) => n + b.length, 0));
  if (kind === 'wschan') {
    const imp = (p) => import(pathToFileURL(join(resolve(dist), p)).href);
    const { FrameParser } = await imp('src/protocol/frame-parser.js');
    const { MessageAssembler } = await imp('src/protocol/message-assembler.js');
    const { PerMessageDeflate } = await imp('src/protocol/deflate-codec.js');
    wrap(FrameParser.prototype, 'advance', 'FrameParser#advance', (a, p) => p.payload?.length);
    wrap(FrameParser.prototype, 'push', 'FrameParser#push', (a) => a[0].length);
    wrap(MessageAssembler.prototype, 'pushInflated', 'MessageAssembler#pushInflated', (a) => a[0]?.length);
    wrap(PerMessageDeflate.prototype, 'startInflate', 'PerMessageDeflate#startInflate', (a) => a[0].length);
    wrap(PerMessageDeflate.prototype, 'startCompress', 'PerMessageDeflate#startCompress', (a) => a[0].length);
  }
  return {
    reset() {
      events = [];
      t0 = performance.now();
    },
    /** The window's events, and each thread's cores and CPU time. */
    report() {
      const threads = readdirSync('/proc/self/task').map((tid) => {
        const cpus = readFileSync(`/proc/self/task/${tid}/status`, 'latin1').match(/Cpus_allowed_list:\s*(.*)/)?.[1];
        const cpuMs = Math.round(Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1').split(' ')[0]) / 1e6);
        return { thread: Number(tid) === process.pid ? 'loop' : tid, cpus, cpuMs };
      });
      return { events, threads };
    },
    close: () => closeSync(fd),
  };
}

function round(x) {
  return Math.round(x * 100) / 100;
}
