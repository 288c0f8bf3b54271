// The server side of bench/deflate-stall.mjs: an echo server with permessage-deflate that
// measures its own event-loop delay (perf_hooks.monitorEventLoopDelay, 1 ms resolution).
//   node bench/peers/stall-server.mjs wschan <dist dir> | ws
// Run with an IPC channel (fork): it sends {port} when listening; on 'reset' it clears the
// histogram; on 'report' it answers with its percentiles (ms).

import { PerformanceObserver, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { spawnSync } from 'node:child_process';
import { appendFileSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [kind, dist] = process.argv.slice(2);
const MAX = 64 * 1024 * 1024;
const h = monitorEventLoopDelay({ resolution: 1 });
let port;
/** Event-loop utilization since the last reset (the share of the time the loop was not idle). */
let elu = performance.eventLoopUtilization();
/** GC pauses since the last reset (count, total and longest, ms): the part of the loop's long tasks that is V8's, not the server's code. */
let gc = { n: 0, total: 0, max: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gc.n++;
    gc.total += e.duration;
    if (e.duration > gc.max) gc.max = e.duration;
  }
}).observe({ entryTypes: ['gc'] });

// `--trace <file>` (bench/deflate-stall.mjs): per-step and per-callback timings, appended to the file at each report.
const trace = process.env.STALL_TRACE !== undefined ? await (await import('./stall-trace.mjs')).installTrace(kind, dist) : undefined;

if (kind === 'wschan') {
  const { Server } = await import(pathToFileURL(join(resolve(dist), 'src/index.js')).href);
  // The library's defaults (threshold 1024 B, level 1, context takeover), as a user gets them.
  const server = new Server({ deflate: true, maxMessageSize: MAX });
  server.handleData((conn, data, isBinary) => conn.write(data, isBinary));
  port = (await server.listen({ port: 0, host: '127.0.0.1' })).port;
} else if (kind === 'ws') {
  const { WebSocketServer } = await import('ws');
  // ws's defaults (context takeover, threshold 1024 B, level Z_DEFAULT_COMPRESSION, 10 zlib jobs at once, on the thread pool).
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: MAX, perMessageDeflate: true });
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise((r) => wss.on('listening', r));
  port = wss.address().port;
} else {
  console.error(`unknown server kind ${kind}`);
  process.exit(2);
}

const ms = (ns) => Math.round(ns / 1e4) / 100;
/**
 * Linux's per-thread scheduler counters (/proc/self/task/<tid>/schedstat: ns on a CPU, ns waiting
 * on a run queue): the event-loop thread's CPU and its wait for a CPU, and the CPU of every other
 * thread of this process (libuv's pool running zlib, V8's GC helpers). Pinned to one core, the
 * pool's zlib work competes with the loop for that core, and the loop's wait shows as loop delay.
 */
function threads() {
  const out = { loopCpu: 0, loopWait: 0, otherCpu: 0, sleeps: 0, preempted: 0 };
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const [cpu, wait] = readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1').split(' ').map(Number);
      if (Number(tid) === process.pid) {
        out.loopCpu = cpu;
        out.loopWait = wait;
        // How often the loop thread went to sleep (voluntary switches: an idle loop waiting in
        // epoll) and was preempted while runnable: each wake-up can wait for a busy CPU.
        const status = readFileSync(`/proc/self/task/${tid}/status`, 'latin1');
        out.sleeps = Number(status.match(/^voluntary_ctxt_switches:\s*(\d+)/m)?.[1] ?? 0);
        out.preempted = Number(status.match(/^nonvoluntary_ctxt_switches:\s*(\d+)/m)?.[1] ?? 0);
      } else {
        out.otherCpu += cpu;
      }
    }
  } catch {
    // Not Linux: no figures.
  }
  return out;
}
let sched = threads();
process.on('message', (m) => {
  if (m === 'reset') {
    h.reset();
    gc = { n: 0, total: 0, max: 0 };
    sched = threads();
    trace?.reset();
    elu = performance.eventLoopUtilization();
    process.send('reset');
  } else if (m === 'report') {
    const now = threads();
    if (trace !== undefined) appendFileSync(process.env.STALL_TRACE, `${JSON.stringify({ kind, ...trace.report() })}\n`);
    process.send({ p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), p999: ms(h.percentile(99.9)), max: ms(h.max), mean: ms(h.mean), samples: h.count, elu: Math.round(performance.eventLoopUtilization(elu).utilization * 100) / 100, gcN: gc.n, gcMs: Math.round(gc.total * 10) / 10, gcMax: Math.round(gc.max * 10) / 10, loopCpuMs: Math.round((now.loopCpu - sched.loopCpu) / 1e6), loopWaitMs: Math.round((now.loopWait - sched.loopWait) / 1e6), otherCpuMs: Math.round((now.otherCpu - sched.otherCpu) / 1e6), loopSleeps: now.sleeps - sched.sleeps, loopPreempted: now.preempted - sched.preempted });
  }
});
if (process.env.STALL_PIN_LOOP !== undefined) {
  // `--pin loop` (bench/deflate-stall.mjs): only the event-loop thread on core STALL_PIN_LOOP; the
  // other threads (libuv's pool, which runs zlib off the loop, and V8's helpers) on any core. The
  // pool's threads are made first (libuv starts all of them on the first job), because a new
  // thread inherits its creator's cores; then the loop thread alone is pinned (taskset -p acts on
  // one thread id: the process id is the main thread's).
  const { deflate } = await import('node:zlib');
  await Promise.all(Array.from({ length: 4 }, () => new Promise((r) => deflate(Buffer.alloc(1024), r))));
  spawnSync('taskset', ['-a', '-pc', os.cpus().map((_, i) => i).join(','), String(process.pid)]);
  spawnSync('taskset', ['-pc', process.env.STALL_PIN_LOOP, String(process.pid)]);
}
h.enable();
process.send({ port });
process.on('disconnect', () => process.exit(0));
// A normal exit on SIGTERM, so that a server run with --cpu-prof writes its profile.
process.on('SIGTERM', () => process.exit(0));
