// Event-loop delay of an echo server with permessage-deflate under a mix of small messages and
// 16 MiB compressible ones: wschan (this build, and optionally another build for "before")
// against ws, in one run, repetitions interleaved. See bench/README.md ("deflate-stall").
//
//   node bench/deflate-stall.mjs [--before <dist dir of another wschan build>] [--reps 3]
//        [--big 3] [--big-mib 16] [--small-conns 50] [--small-rate N] [--big-every MS] [--no-ws 1] [--prof <dir>] [--prof-interval US] [--pin process|loop] [--trace <file>]
//
// Per run: a fresh server process (pinned to core 0 when taskset works) that measures its own
// event-loop delay with perf_hooks.monitorEventLoopDelay (bench/peers/stall-server.mjs). The
// load runs here (core 1), on ws clients (their zlib work is on this process's thread pool):
// `--small-conns` clients each keep one 200-byte JSON text message in flight (below both
// servers' 1 KiB threshold: the traffic of a chat), and one client sends `--big` compressible
// 16 MiB binary messages one after another, each awaiting its echo. The histogram covers the
// time from the first big message to the last echo. Bounded: 60 s per run at most.
// Reported per server (median of the runs): loop delay p50/p99/p99.9/max, the small messages'
// echoes/s and RTT p99 during the big ones, and each big message's own echo time (send to
// echo received and checked, median over the run's big messages).

import { fork, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import os from 'node:os';
import { compressible } from './compressible.mjs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const reps = Number(opt('reps', '3'));
const bigCount = Number(opt('big', '3'));
const smallConns = Number(opt('small-conns', '50'));
/** --small-rate N: the small clients send N messages/s in all at a fixed rate (open loop) instead of one in flight each. */
const smallRate = Number(opt('small-rate', '0'));
/** --big-every MS: start a big message every MS ms (if the last one's echo is back) instead of right after the echo. */
const bigEvery = Number(opt('big-every', '0'));
const before = opt('before', undefined);
const BIG = Number(opt('big-mib', '16')) * 1024 * 1024;
const RUN_LIMIT_MS = 60_000;
/** --prof <dir outside the repo>: every server process writes a CPU profile there (--cpu-prof). */
const profDir = opt('prof', undefined);
/** --prof-interval US: the profiles' sampling interval (default V8's 1,000 µs; 100 resolves the loop's long tasks). */
const profInterval = opt('prof-interval', undefined);

const servers = [['wschan', 'wschan', join(root, 'dist')]];
if (before !== undefined) servers.push(['wschan-before', 'wschan', before]);
if (opt('no-ws', undefined) === undefined) servers.push(['ws', 'ws', undefined]);

const taskset = os.cpus().length >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
/**
 * --pin process (default): the whole server process on core 0, its zlib thread pool included, so
 * the pool competes with the event loop for that core. --pin loop: only the event-loop thread on
 * core 0, the server's other threads on any core (as with free cores; the load runs on core 1).
 */
const pin = opt('pin', 'process');
/** --trace <file outside the repo>: every server traces its steps and callbacks (bench/peers/stall-trace.mjs) into the file; a summary is printed at the end. */
const traceFile = opt('trace', undefined);
if (taskset) spawnSync('taskset', ['-pc', '1', String(process.pid)]);

const small = JSON.stringify({ type: 'chat', room: 'lobby', user: 'ada', text: 'hello '.repeat(26) }).slice(0, 200);

function startServer(kind, dist) {
  const argv = kind === 'wschan' ? ['wschan', dist] : ['ws'];
  const execArgv = profDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`, ...(profInterval !== undefined ? [`--cpu-prof-interval=${profInterval}`] : [])] : [];
  const env = { ...process.env, ...(taskset && pin === 'loop' ? { STALL_PIN_LOOP: '0' } : {}), ...(traceFile !== undefined ? { STALL_TRACE: traceFile } : {}) };
  const child = fork(join(here, 'peers/stall-server.mjs'), argv, { execArgv, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  if (taskset && pin !== 'loop') spawnSync('taskset', ['-pc', '0', String(child.pid)]);
  return child;
}

const ask = (child, msg) => {
  const p = once(child, 'message');
  child.send(msg);
  return p.then(([m]) => m);
};

async function openClient(url) {
  const ws = new WebSocket(url, { perMessageDeflate: true, maxPayload: 64 * 1024 * 1024 });
  ws.on('error', () => {});
  await once(ws, 'open');
  return ws;
}

async function runOnce(name, kind, dist, bigs) {
  const child = startServer(kind, dist);
  const [{ port }] = await once(child, 'message');
  const url = `ws://127.0.0.1:${port}`;
  const smalls = await Promise.all(Array.from({ length: smallConns }, () => openClient(url)));
  const big = await openClient(url);
  let running = true;
  let smallEchoes = 0;
  const lat = [];
  const timers = [];
  for (const ws of smalls) {
    if (smallRate > 0) {
      // Open loop: each client sends at a fixed rate whatever the echoes do, so every server gets
      // the same small-message work and the loop delays compare at equal load.
      const sentAt = [];
      ws.on('message', () => {
        smallEchoes++;
        lat.push(performance.now() - sentAt.shift());
      });
      const every = (1000 * smallConns) / smallRate;
      timers.push(
        setInterval(() => {
          if (!running) return;
          sentAt.push(performance.now());
          ws.send(small);
        }, every),
      );
      continue;
    }
    let sent = 0;
    ws.on('message', () => {
      smallEchoes++;
      lat.push(performance.now() - sent);
      if (running) {
        sent = performance.now();
        ws.send(small);
      }
    });
    sent = performance.now();
    ws.send(small);
  }
  await new Promise((r) => setTimeout(r, 500)); // the small traffic settles
  await ask(child, 'reset');
  smallEchoes = 0;
  lat.length = 0;
  const t0 = performance.now();
  const deadline = t0 + RUN_LIMIT_MS;
  let okBig = 0;
  const bigMs = [];
  for (const payload of bigs) {
    if (performance.now() > deadline) break;
    const echoed = once(big, 'message');
    const sentAt = performance.now();
    big.send(payload, { binary: true });
    const [data] = await Promise.race([echoed, new Promise((r) => setTimeout(() => r([undefined]), deadline - performance.now()))]);
    if (data !== undefined && Buffer.from(data).equals(payload)) {
      okBig++;
      bigMs.push(performance.now() - sentAt);
    }
    // Paced: the next big message starts `bigEvery` ms after this one did, so every server's
    // histogram covers the same length of time (a faster echo does not shorten the window).
    const next = sentAt + bigEvery - performance.now();
    if (bigEvery > 0 && next > 0) await new Promise((r) => setTimeout(r, next));
  }
  const seconds = (performance.now() - t0) / 1000;
  const loop = await ask(child, 'report');
  running = false;
  for (const t of timers) clearInterval(t);
  lat.sort((a, b) => a - b);
  for (const ws of [...smalls, big]) ws.terminate();
  child.kill('SIGTERM');
  await once(child, 'exit');
  return {
    name,
    loop,
    seconds: Math.round(seconds * 100) / 100,
    bigEchoed: okBig,
    bigMs: Math.round(median(bigMs)),
    smallPerSec: Math.round(smallEchoes / seconds),
    smallP99: Math.round((lat[Math.floor(lat.length * 0.99)] ?? NaN) * 10) / 10,
  };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const bigs = Array.from({ length: bigCount }, (_, i) => compressible(BIG, i + 1));
const all = [];
const load = os.loadavg()[0];
for (let r = 0; r < reps; r++) {
  for (const [name, kind, dist] of servers) {
    const res = await runOnce(name, kind, dist, bigs);
    all.push(res);
    console.log(JSON.stringify(res));
  }
}

console.log(`\n${pin === 'loop' ? 'event-loop thread alone pinned to core 0 (--pin loop); ' : ''}${smallRate > 0 ? `small messages at a fixed ${smallRate}/s (open loop); ` : ''}${bigEvery > 0 ? `a big message every ${bigEvery} ms; ` : ''}node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model}), load average at start ${load.toFixed(2)}, ${reps} reps, ${bigCount} × ${BIG / 1048576} MiB + ${smallConns} small clients per run\n`);
console.log('| server | loop delay p50 (ms) | p99 (ms) | p99.9 (ms) | max (ms) | loop utilization | GC pauses: total / longest (ms) | loop thread: CPU / waiting for a CPU (ms) | loop thread: sleeps / preemptions | other threads: CPU (ms) | small echoes/s | small RTT p99 (ms) | one big echo (ms) | big echoes / time (s) |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
const rows = {};
for (const [name] of servers) {
  const rs = all.filter((x) => x.name === name);
  rows[name] = { p99: median(rs.map((x) => x.loop.p99)), max: median(rs.map((x) => x.loop.max)), sps: median(rs.map((x) => x.smallPerSec)), big: median(rs.map((x) => x.bigMs)) };
  const range = (f) => `${Math.min(...rs.map(f))}–${Math.max(...rs.map(f))}`;
  console.log(
    `| ${name} | ${median(rs.map((x) => x.loop.p50))} | ${rows[name].p99} (${range((x) => x.loop.p99)}) | ${median(rs.map((x) => x.loop.p999))} (${range((x) => x.loop.p999)}) | ${rows[name].max} (${range((x) => x.loop.max)}) | ${median(rs.map((x) => x.loop.elu))} | ${median(rs.map((x) => x.loop.gcMs))} / ${median(rs.map((x) => x.loop.gcMax))} | ${median(rs.map((x) => x.loop.loopCpuMs))} / ${median(rs.map((x) => x.loop.loopWaitMs))} | ${median(rs.map((x) => x.loop.loopSleeps))} / ${median(rs.map((x) => x.loop.loopPreempted))} | ${median(rs.map((x) => x.loop.otherCpuMs))} | ${rows[name].sps} | ${median(rs.map((x) => x.smallP99))} | ${median(rs.map((x) => x.bigMs))} | ${median(rs.map((x) => x.bigEchoed))} / ${median(rs.map((x) => x.seconds))} |`,
  );
}
if (rows.ws) {
  for (const name of Object.keys(rows).filter((n) => n !== 'ws')) {
    console.log(`${name}/ws: loop p99 ${(rows[name].p99 / rows.ws.p99).toFixed(2)}×, loop max ${(rows[name].max / rows.ws.max).toFixed(2)}×, small echoes/s ${(rows[name].sps / rows.ws.sps).toFixed(2)}×, one big echo ${(rows[name].big / rows.ws.big).toFixed(2)}×`);
  }
}

if (traceFile !== undefined) {
  // Per server and step (over all runs): how many calls took >= STALL_TRACE_MIN_MS of wall time,
  // the longest own times (wall minus the wait for a CPU), and the longest wait for a CPU.
  const { readFileSync } = await import('node:fs');
  const byServer = new Map();
  for (const line of readFileSync(traceFile, 'utf8').trim().split('\n')) {
    const { kind, events, threads } = JSON.parse(line);
    const steps = byServer.get(kind) ?? new Map();
    byServer.set(kind, steps);
    for (const e of events) {
      const s = steps.get(e.label) ?? { n: 0, own: [], wait: 0 };
      s.n++;
      s.own.push(e.ownMs);
      s.wait = Math.max(s.wait, e.waitMs ?? 0);
      steps.set(e.label, s);
    }
    console.log(`${kind} threads: ${threads.map((t) => `${t.thread} on ${t.cpus}: ${t.cpuMs} ms`).join(', ')}`);
  }
  for (const [kind, steps] of byServer) {
    console.log(`\n${kind}: | step | calls >= threshold | longest own times (ms) | longest wait for a CPU (ms) |\n|---|---|---|---|`);
    for (const [label, s] of [...steps].sort((a, b) => Math.max(...b[1].own) - Math.max(...a[1].own))) {
      console.log(`| ${label} | ${s.n} | ${s.own.sort((a, b) => b - a).slice(0, 5).join(', ')} | ${label.startsWith('GC') || label === 'LAG' ? '' : s.wait} |`);
    }
  }
}
