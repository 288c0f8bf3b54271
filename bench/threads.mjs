#!/usr/bin/env node
// The threaded server (issue 12): echo and broadcast with `threads: 1` and `threads: 2`, and `ws`
// (one thread, the peer) in the same run, interleaved, with the CPU of the server AND of the load
// generator over the measured window, and the cost of the cross-thread bus per message.
//
//   flock <lock file> node bench/threads.mjs [--reps 3] [--quick]
//
// Needs Node >= 22.12 (reusePort) as `node` on PATH, `npm run build` at the root, and
// `npm --prefix bench ci` (ws). Nothing is pinned: with 2 threads the server needs both cores,
// which the load generator shares; the CPU figures (user + system, /proc/<pid>/stat, sampled every
// 20 ms) say where the time went. Results: bench/results/threads-<timestamp>.json and a Markdown
// table on stdout.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH, '..');
const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const REPS = Number(argv[argv.indexOf('--reps') + 1] ?? 0) || (QUICK ? 1 : 3);
const TICKS = 100; // clock ticks per second (getconf CLK_TCK on Linux)
const SMALL = 'hello world!!13212312!';
const ECHO_S = QUICK ? 2 : 4;
const BURST = { conns: QUICK ? 500 : 1000, count: QUICK ? 100 : 400, size: 64 };

const SERVERS = {
  'wschan t1': ['node', path.join(ROOT, 'dist/stress-tests/echo-server.js'), '--threads', '1'],
  'wschan t2': ['node', path.join(ROOT, 'dist/stress-tests/echo-server.js'), '--threads', '2'],
  // The single-thread server without the worker (the path every other benchmark measures).
  'wschan': ['node', path.join(ROOT, 'dist/stress-tests/echo-server.js')],
  ws: ['node', path.join(BENCH, 'peers/ws-echo.mjs')],
};
const SCENARIOS = [
  { id: 'echo', title: `echo 22 B, 100 conns pipelined, ${ECHO_S} s`, load: ['-c', '100', '-m', SMALL, '--pipeline', '-T', `${ECHO_S}s`], event: 'start' },
  {
    id: 'broadcast',
    title: `broadcast ${BURST.count} × ${BURST.size} B to ${BURST.conns} clients`,
    load: ['--mode', 'burst-subscribe', '-c', String(BURST.conns), '--burst-count', String(BURST.count), '--burst-size', String(BURST.size), '-T', '60s'],
    event: 'trigger',
  },
];

function cpuOf(pid) {
  let total = 0;
  // Every thread of the process is in /proc/<pid>/stat's totals (utime + stime).
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    total = (Number(f[11]) + Number(f[12])) / TICKS;
  } catch {
    return null;
  }
  return total;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const done = (ok) => (s.destroy(), resolve(ok));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
function launch(cmd) {
  return spawn('bash', ['-c', 'ulimit -n hard 2>/dev/null; exec "$@"', 'bash', ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
}
async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await new Promise((r) => child.once('exit', r));
  clearTimeout(t);
}

/** One run: the server, then the load; CPU of both sampled every 20 ms. */
async function measure(scenario, name) {
  const port = await freePort();
  const server = launch([...SERVERS[name], '--port', String(port)]);
  let log = '';
  server.stderr.on('data', (d) => (log += d));
  for (let i = 0; !(await canConnect(port)); i++) {
    if (i > 300) throw new Error(`${name} did not listen: ${log}`);
    await sleep(50);
  }
  await sleep(300);
  const load = launch(['node', path.join(ROOT, 'dist/stress-tests/loadgen/main.js'), ...scenario.load, '--json', '-q', `127.0.0.1:${port}`]);
  const samples = []; // [ms, serverCpu, loadCpu]
  const sampler = setInterval(() => samples.push([performance.now(), cpuOf(server.pid), cpuOf(load.pid)]), 20);
  let out = '';
  let eventAt = null;
  load.stdout.on('data', (d) => {
    out += d;
    if (eventAt === null && out.includes(`{"event":"${scenario.event}"}`)) {
      eventAt = performance.now();
      samples.push([eventAt, cpuOf(server.pid), cpuOf(load.pid)]);
    }
  });
  await new Promise((r) => load.once('exit', r));
  clearInterval(sampler);
  await stopChild(server);
  const line = out.split('\n').reverse().find((l) => l.startsWith('{"tool"'));
  if (line === undefined || eventAt === null) return { note: `no result: ${out.slice(-300)} ${log.slice(-300)}` };
  const r = JSON.parse(line);
  let messages;
  let windowMs;
  if (scenario.id === 'echo') {
    messages = r.received.messages;
    windowMs = ECHO_S * 1000;
  } else {
    if (!r.burst?.complete) return { note: `burst incomplete ${JSON.stringify(r.burst)}` };
    messages = r.burst.deliveries;
    windowMs = r.burst.durationMs;
  }
  // CPU over [event, event + window]: the first sample at or after each end.
  const at = (t) => samples.find((s) => s[0] >= t && s[1] !== null && s[2] !== null) ?? samples.findLast((s) => s[1] !== null && s[2] !== null);
  const a = at(eventAt);
  const b = at(eventAt + windowMs);
  const serverCpu = b[1] - a[1];
  const loadCpu = b[2] - a[2];
  return {
    rate: messages / (windowMs / 1000),
    messages,
    windowMs,
    serverCpuS: serverCpu,
    loadCpuS: loadCpu,
    serverUsNs: (serverCpu * 1e6) / messages,
    // Cores the server kept busy over the window.
    serverCores: serverCpu / ((b[0] - a[0]) / 1000),
    loadCores: loadCpu / ((b[0] - a[0]) / 1000),
  };
}

/**
 * The bus alone: the main thread broadcasts 64 B messages to N threads that have no connection.
 * Sender: the main thread's CPU (process.threadCpuUsage); receivers: each thread's own CPU (from
 * its stats), per message it received. The chunks stay under the bus bound (nothing dropped).
 */
async function busCost(threads, messages) {
  const { serveThreads } = await import(path.join(ROOT, 'dist/src/index.js'));
  const app = new URL('../dist/stress-tests/echo-app.js', import.meta.url);
  const s = await serveThreads(app, { threads, port: 0, host: '127.0.0.1' });
  const payload = Buffer.alloc(64, 0x2a);
  const chunk = 10_000;
  const cpuOfThreads = (st) => st.threads.reduce((a, t) => a + t.cpu.user + t.cpu.system, 0);
  const before = cpuOfThreads(await s.stats());
  const t0 = process.threadCpuUsage();
  let sent = 0;
  let sendUs = 0;
  while (sent < messages) {
    const c0 = process.threadCpuUsage();
    for (let i = 0; i < chunk; i++) s.broadcast(payload, true);
    await new Promise((r) => setImmediate(r)); // the batch leaves at the end of the turn
    const c1 = process.threadCpuUsage(c0);
    sendUs += c1.user + c1.system;
    sent += chunk;
    // Let the threads take it in (polling rarely, so the polling costs little).
    for (;;) {
      await sleep(5);
      const st = await s.stats();
      if (st.threads.every((t) => t.bus.links.find((l) => l.peer === -1).received === sent)) break;
    }
  }
  const mainAll = process.threadCpuUsage(t0);
  const st = await s.stats();
  const recvUs = cpuOfThreads(st) - before;
  await s.close();
  return {
    threads,
    messages,
    senderUsPerMessage: sendUs / messages,
    senderUsPerMessagePerThread: sendUs / messages / threads,
    receiverUsPerMessage: recvUs / (messages * threads),
    mainThreadTotalUs: mainAll.user + mainAll.system,
    dropped: st.total.busDropped,
  };
}

/** What framing a 64 B message costs (what a thread does once per message it fans out). */
async function frameCost() {
  const { encodeFrame } = await import(path.join(ROOT, 'dist/src/protocol/index.js'));
  const payload = Buffer.alloc(64, 0x2a);
  const n = 500_000;
  let keep = 0;
  const t0 = process.threadCpuUsage();
  for (let i = 0; i < n; i++) keep += encodeFrame(2, payload).length;
  const t = process.threadCpuUsage(t0);
  return { usPerFrame: (t.user + t.system) / n, keep };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  if (!existsSync(path.join(BENCH, 'node_modules/ws'))) throw new Error('bench/node_modules/ws missing: npm --prefix bench ci');
  const results = { meta: { date: new Date().toISOString(), node: process.version, cpus: os.availableParallelism(), cpu: os.cpus()[0]?.model, load: os.loadavg(), reps: REPS }, runs: [], bus: [] };
  for (const sc of SCENARIOS) {
    for (let rep = 0; rep < REPS; rep++) {
      for (const name of Object.keys(SERVERS)) {
        const r = await measure(sc, name);
        results.runs.push({ scenario: sc.id, server: name, rep, ...r });
        process.stderr.write(`${sc.id} ${name} #${rep + 1}: ${r.note ?? `${Math.round(r.rate)}/s, server ${r.serverUsNs.toFixed(2)} µs CPU/msg (${r.serverCores.toFixed(2)} cores), load generator ${r.loadCores.toFixed(2)} cores`}\n`);
      }
    }
  }
  for (const threads of [1, 2]) {
    for (let rep = 0; rep < REPS; rep++) {
      const b = await busCost(threads, QUICK ? 50_000 : 200_000);
      results.bus.push(b);
      process.stderr.write(`bus ${threads} thread(s): sender ${b.senderUsPerMessagePerThread.toFixed(3)} µs per message per thread, receiver ${b.receiverUsPerMessage.toFixed(3)} µs per message (dropped ${b.dropped})\n`);
    }
  }
  results.frame = [];
  for (let rep = 0; rep < REPS; rep++) results.frame.push(await frameCost());
  mkdirSync(path.join(BENCH, 'results'), { recursive: true });
  const file = path.join(BENCH, 'results', `threads-${results.meta.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(results, null, 1));
  // Table: medians per scenario and server.
  const lines = [`| scenario | server | rate /s (median) | server µs CPU/msg | server cores | load generator cores |`, `|---|---|---|---|---|---|`];
  for (const sc of SCENARIOS) {
    for (const name of Object.keys(SERVERS)) {
      const rs = results.runs.filter((r) => r.scenario === sc.id && r.server === name && r.rate !== undefined);
      const m = (k) => median(rs.map((r) => r[k]));
      lines.push(`| ${sc.title} | ${name} | ${Math.round(m('rate')).toLocaleString('en')} | ${m('serverUsNs').toFixed(2)} | ${m('serverCores').toFixed(2)} | ${m('loadCores').toFixed(2)} |`);
    }
  }
  for (const threads of [1, 2]) {
    const bs = results.bus.filter((b) => b.threads === threads);
    lines.push(
      `\nbus, main thread → ${threads} thread(s), 64 B broadcast to no connection: sender ${median(bs.map((b) => b.senderUsPerMessagePerThread)).toFixed(3)} µs CPU per message per receiving thread, ` +
        `receiver ${median(bs.map((b) => b.receiverUsPerMessage)).toFixed(3)} µs CPU per message`,
    );
  }
  lines.push(`\nframing one 64 B message (encodeFrame): ${median(results.frame.map((f) => f.usPerFrame)).toFixed(3)} µs CPU`);
  console.log(`${lines.join('\n')}\n\n${path.relative(ROOT, file)}; Node ${process.version}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

await main();
