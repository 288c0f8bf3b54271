#!/usr/bin/env node
// wschan peer benchmarks: the same load against wschan, ws and Bun, interleaved, in one run.
//
//   node bench/run.mjs [--quick] [--only id[,id…]] [--servers wschan,ws,bun,floor,bun-compress,wschan-inflate-only] [--reps N] [--list]
//
// Each run starts one server as its own process (pinned to core 0 when there are two or more
// cores), waits until its port accepts TCP, runs the load generator (pinned to core 1), records
// one number, and stops the server. Repetitions are interleaved (wschan, ws, bun, wschan, …) so
// drift in the machine hits every server alike. Results go to bench/results/<timestamp>.json
// (rewritten after every scenario, so a cut-short run keeps what it measured) and a Markdown
// table is printed at the end. `node bench/chart.mjs` draws the ratios.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH, '..');
const LOADGEN = path.join(ROOT, 'dist/stress-tests/loadgen/main.js');
// npm 11 does not run bun's install script the same way every time: after `npm ci` the binary
// may sit in the platform package's bin/ or only in bun/bin/bun.exe (its "placeholder", which
// then is the real binary). Take the first candidate that answers --version.
const BUN_CANDIDATES = [
  'node_modules/@oven/bun-linux-x64/bin/bun',
  'node_modules/@oven/bun-linux-x64-baseline/bin/bun',
  'node_modules/bun/bin/bun.exe',
  'node_modules/.bin/bun',
].map((p) => path.join(BENCH, p));
const BUN = BUN_CANDIDATES.find((p) => existsSync(p) && spawnSync(p, ['--version'], { timeout: 10_000 }).status === 0) ?? null;
const SMALL_TEXT = 'hello world!!13212312!'; // tcpkali's published test message (22 bytes)

// ---- arguments ------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const value = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const QUICK = flag('--quick');
const REPS = Number(value('--reps') ?? (QUICK ? 1 : 3));
const SERVER_NAMES = (value('--servers') ?? 'wschan,ws,bun,floor,bun-compress,wschan-inflate-only').split(',').filter(Boolean);
const ONLY = value('--only')?.split(',').filter(Boolean);

// ---- the 1 KiB JSON-like message (deterministic) --------------------------------------------

function jsonLikeMessage(bytes) {
  const items = [];
  let i = 0;
  let s = '';
  while (true) {
    items.push({ id: i, sym: `SYM${(i * 7919) % 1000}`, px: 100 + ((i * 37) % 1000) / 100, qty: (i * 13) % 500, side: i % 2 ? 'buy' : 'sell' });
    const next = JSON.stringify({ type: 'update', seq: 12345, ts: 1732240000000, items });
    if (next.length > bytes) break;
    s = next;
    i++;
  }
  return s.padEnd(bytes, ' ');
}
const JSON_1K = jsonLikeMessage(1024);

// ---- scenarios ------------------------------------------------------------------------------

const T = QUICK ? '2s' : '8s';
/** better: 'higher' | 'lower'. target: the wschan/ws and wschan/bun goals of issue 4. */
const SCENARIOS = [
  {
    id: 'echo-small',
    title: 'echo 22 B text, 100 conns, pipelined',
    unit: 'msg/s',
    better: 'higher',
    target: { ws: 4, bun: 0.25 },
    load: ['-c', '100', '-m', SMALL_TEXT, '--pipeline', '-T', T],
    metric: (r) => r.receivedPerSec,
  },
  {
    id: 'echo-16k',
    title: 'echo 16 KiB binary, 100 conns',
    unit: 'msg/s',
    better: 'higher',
    target: { ws: 1.5 },
    load: ['-c', '100', '--binary', '--size', '16384', '--pipeline', '-T', T],
    metric: (r) => r.receivedPerSec,
  },
  {
    id: 'broadcast-1k',
    title: 'broadcast 100 × 64 B to 1,000 clients',
    unit: 'deliveries/s',
    better: 'higher',
    load: ['--mode', 'burst-subscribe', '-c', '1000', '--burst-count', '100', '--burst-size', '64', '-T', '30s'],
    metric: (r) => (r.burst?.complete ? r.burst.deliveriesPerSec : null),
  },
  {
    id: 'broadcast-10k',
    title: `broadcast ${QUICK ? 20 : 100} × 64 B to ${QUICK ? '5,000' : '10,000'} clients`,
    unit: 'deliveries/s',
    better: 'higher',
    target: { ws: 8, bun: 0.5 },
    // 1 M deliveries at ws's ~15–60 k/s on a busy 2-core machine take 17–70 s: allow 150 s.
    load: ['--mode', 'burst-subscribe', '-c', QUICK ? '5000' : '10000', '--burst-count', QUICK ? '20' : '100', '--burst-size', '64', '-T', QUICK ? '60s' : '150s'],
    metric: (r) => (r.burst?.complete ? r.burst.deliveriesPerSec : null),
  },
  {
    // One tick of a compressed feed (issue 15): 20 JSON-like text messages of 1,024 bytes to every
    // client, each client having negotiated permessage-deflate; every message must arrive
    // compressed (RSV1), so no peer wins by sending plain frames (ws compresses from 1,024 bytes).
    id: 'broadcast-deflate-10k',
    title: `broadcast 20 × 1 KiB JSON, permessage-deflate, to ${QUICK ? '5,000' : '10,000'} clients`,
    unit: 'deliveries/s',
    better: 'higher',
    deflate: true,
    compressedBurst: true,
    load: ['--mode', 'burst-subscribe', '-c', QUICK ? '5000' : '10000', '--deflate', '--burst-json', '--burst-count', '20', '--burst-size', '1024', '-T', '150s'],
    metric: (r) => (r.burst?.complete ? r.burst.deliveriesPerSec : null),
  },
  {
    // The client is bench/peers/churn-client-bun.ts, run by Bun: the project's Node generator
    // costs ~0.45 ms of CPU per connection here and caps every server at ~0.7x ws's time (it is
    // the next row). Same bytes on the wire.
    id: 'churn-10k',
    title: `${QUICK ? '2,000' : '10,000'} conns × 10 echoes (open, 10 round trips, close; 256 at once)`,
    unit: 's',
    better: 'lower',
    target: { ws: 0.7 },
    client: 'bun',
    load: ['--mode', 'conn-churn', '-c', QUICK ? '2000' : '10000', '--messages', '10', '--concurrency', '256', '-T', '120s'],
    metric: (r) => (r.churn?.complete ? r.churn.totalMs / 1000 : null),
  },
  {
    id: 'churn-10k-node',
    title: `the same, driven by the project's Node load generator`,
    unit: 's',
    better: 'lower',
    load: ['--mode', 'conn-churn', '-c', QUICK ? '2000' : '10000', '--messages', '10', '--concurrency', '256', '-T', '120s'],
    metric: (r) => (r.churn?.complete ? r.churn.totalMs / 1000 : null),
  },
  {
    // The same load as churn-10k, measured on the server's side: its CPU time (user + system).
    // The wall time of churn-10k is bounded by the load generator (~0.5 ms of CPU per connection
    // on its own core); this says what the churn costs the server itself.
    id: 'churn-10k-cpu',
    title: `server CPU for ${QUICK ? '2,000' : '10,000'} conns × 10 echoes`,
    unit: 'CPU s',
    better: 'lower',
    target: { ws: 0.7 },
    client: 'bun',
    load: ['--mode', 'conn-churn', '-c', QUICK ? '2000' : '10000', '--messages', '10', '--concurrency', '256', '-T', '120s'],
    metric: (r) => (r.churn?.complete ? r.serverCpuS : null),
  },
  {
    id: 'idle-10k',
    title: `server RSS with ${QUICK ? '5,000' : '10,000'} idle conns`,
    unit: 'MiB',
    better: 'lower',
    target: { ws: 0.6 },
    load: ['--mode', 'idle', '-c', QUICK ? '5000' : '10000', '-T', '120s'],
    idle: { settleMs: QUICK ? 1500 : 5000 },
    metric: (r) => r.rssMiB ?? null,
  },
  {
    id: 'deflate-1k',
    title: 'echo 1 KiB JSON text, permessage-deflate, 100 conns',
    unit: 'msg/s',
    better: 'higher',
    target: { ws: 1.5 },
    deflate: true,
    load: ['-c', '100', '-m', JSON_1K, '--deflate', '--pipeline', '-T', T],
    metric: (r) => (r.deflate?.accepted === r.opened ? r.receivedPerSec : null),
  },
];

const TCPKALI = findTcpkali();
if (TCPKALI !== null) {
  SCENARIOS.splice(1, 0, {
    id: 'tcpkali-echo-small',
    title: 'tcpkali: echo 22 B text, 100 conns, -r 100k',
    unit: 'msg/s',
    better: 'higher',
    // tcpkali opens 100 connections per second unless told otherwise: ramp them at once.
    tcpkali: ['--ws', '--connect-rate', '10000', '-c', '100', '-m', SMALL_TEXT, '-r', '100k', '-T', T],
    metric: (r) => r.receivedPerSec,
  });
}

// ---- servers --------------------------------------------------------------------------------

const SERVERS = {
  wschan: {
    cmd: () => ['node', path.join(ROOT, 'dist/stress-tests/echo-server.js')],
    missing: () =>
      existsSync(path.join(ROOT, 'dist/stress-tests/echo-server.js'))
        ? null
        : 'dist/stress-tests/echo-server.js not found (run `npm run build` at the root once the echo server exists)',
  },
  // wschan with permessage-deflate mode 'dedicated' (a compressor per connection, context
  // takeover) instead of the default 'shared': the A/B of the deflate modes in one run.
  'wschan-dedicated': {
    cmd: () => ['node', path.join(ROOT, 'dist/stress-tests/echo-server.js'), '--deflate-mode', 'dedicated'],
    missing: () => SERVERS.wschan.missing(),
    only: ['deflate-1k'],
  },
  // wschan replying uncompressed (threshold above the 1,024-byte message): the same work as Bun
  // by default (Bun's send compresses only when asked), to compare with the plain `bun` server.
  'wschan-inflate-only': {
    cmd: () => ['node', path.join(ROOT, 'dist/stress-tests/echo-server.js'), '--deflate-threshold', '4096'],
    missing: () => SERVERS.wschan.missing(),
    only: ['deflate-1k'],
  },
  ws: {
    cmd: () => ['node', path.join(BENCH, 'peers/ws-echo.mjs')],
    missing: () => (existsSync(path.join(BENCH, 'node_modules/ws')) ? null : 'bench/node_modules/ws missing (cd bench && npm ci)'),
  },
  // Bun told to compress every reply (--compress-all), as the wschan echo server does
  // (threshold 0): Bun's send compresses only when asked. (ws needs no such flag here: with
  // context takeover it compresses every message; its 1 KiB threshold applies only without.)
  'bun-compress': {
    cmd: () => [BUN, path.join(BENCH, 'peers/bun-echo.ts'), '--compress-all'],
    missing: () => SERVERS.bun.missing(),
    only: ['deflate-1k'],
  },
  // Not a peer: the least a node:net server can do (see peers/node-floor.mjs). It runs only where
  // its missing checks cannot change the outcome, to show the floor that node:net itself sets.
  floor: {
    cmd: () => ['node', path.join(BENCH, 'peers/node-floor.mjs')],
    missing: () => null,
    only: ['echo-small', 'tcpkali-echo-small', 'churn-10k', 'churn-10k-node', 'churn-10k-cpu', 'idle-10k', 'deflate-1k', 'broadcast-1k', 'broadcast-10k'],
  },
  // `--wschan-b <root>`: another wschan build (a checkout built with `npm run build`) run as the
  // server `wschan-b`, for A/B comparisons of two commits in one run (add it to --servers).
  'wschan-b': {
    cmd: () => ['node', path.join(path.resolve(value('--wschan-b') ?? ''), 'dist/stress-tests/echo-server.js')],
    missing: () =>
      value('--wschan-b') !== undefined && existsSync(path.join(path.resolve(value('--wschan-b')), 'dist/stress-tests/echo-server.js'))
        ? null
        : '--wschan-b <root of another built wschan checkout> not given or not built',
  },
  bun: {
    cmd: () => [BUN, path.join(BENCH, 'peers/bun-echo.ts')],
    missing: () =>
      BUN !== null
        ? null
        : `no working bun binary in bench/node_modules (looked at ${BUN_CANDIDATES.map((p) => path.relative(ROOT, p)).join(', ')}); ` +
          'try: rm -rf bench/node_modules/@oven && (cd bench && npm install)',
  },
};

// ---- process helpers ------------------------------------------------------------------------

const NPROC = os.availableParallelism?.() ?? os.cpus().length;
const HAS_TASKSET = NPROC >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;

/** Spawns `cmd` with the open-file limit raised to the hard limit, pinned to `core` when possible. */
function spawnPinned(cmd, core, opts = {}) {
  const pin = HAS_TASKSET ? ['taskset', '-c', String(core)] : [];
  // exec keeps the pid: the child's pid is the server's pid (for /proc/<pid>/status).
  return spawn('bash', ['-c', 'ulimit -n hard 2>/dev/null; exec "$@"', 'bash', ...pin, ...cmd], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...opts,
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(500, () => done(false));
  });
}

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child, ms) {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function stop(child) {
  if (exited(child)) return;
  child.kill('SIGTERM');
  if (!(await waitExit(child, 3000))) {
    child.kill('SIGKILL');
    await waitExit(child, 3000);
  }
}

async function startServer(name, deflate) {
  const port = await freePort();
  const cmd = [...SERVERS[name].cmd(), '--port', String(port), ...(deflate ? ['--deflate'] : [])];
  const child = spawnPinned(cmd, 0);
  let log = '';
  child.stdout.on('data', (d) => (log = (log + d).slice(-2000)));
  child.stderr.on('data', (d) => (log = (log + d).slice(-2000)));
  const until = Date.now() + 15_000;
  while (Date.now() < until) {
    if (exited(child)) throw new Error(`${name} exited early: ${log.trim().slice(-500)}`);
    if (await canConnect(port)) return { child, port, log: () => log };
    await sleep(50);
  }
  await stop(child);
  throw new Error(`${name} did not accept connections on ${port} within 15 s: ${log.trim().slice(-500)}`);
}

/** User + system CPU seconds of a process so far (/proc/<pid>/stat fields 14 and 15, in clock ticks). */
function readCpuS(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

function readRssKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  return m ? Number(m[1]) : null;
}

/**
 * Runs the load generator; resolves with its JSON result. onLine sees every stdout line
 * (the idle scenario acts on the `ready` event). Killed after timeoutMs.
 */
function runLoad(args, port, timeoutMs, onLine, client = 'node') {
  return new Promise((resolve) => {
    const cmd =
      client === 'bun'
        ? [BUN, path.join(BENCH, 'peers/churn-client-bun.ts'), ...args, '--host', '127.0.0.1', '--port', String(port)]
        : ['node', LOADGEN, ...args, '--json', '-q', `127.0.0.1:${port}`];
    const child = spawnPinned(cmd, 1);
    let out = '';
    let err = '';
    let pending = '';
    child.stdout.on('data', (d) => {
      out += d;
      pending += d;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        onLine?.(line, child);
      }
    });
    child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').reverse().find((l) => l.startsWith('{"tool"'));
      let json = null;
      try {
        json = last ? JSON.parse(last) : null;
      } catch {
        json = null;
      }
      resolve({ json, code, signal, stderr: err.trim(), stdout: out });
    });
  });
}

function runTcpkali(args, port, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawnPinned([TCPKALI, ...args, `127.0.0.1:${port}`], 1);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', () => {
      clearTimeout(timer);
      // tcpkali's "Packet rate estimate" counts TCP segments, not messages: derive messages/s
      // from the downstream bandwidth and the size of the server's frames (2-byte header here).
      const bw = /Aggregate bandwidth:\s*([\d.]+)↓,\s*([\d.]+)↑/.exec(out);
      const frameBytes = frameBytesOf(args);
      resolve({
        json: bw
          ? { receivedPerSec: (Number(bw[1]) * 1e6) / 8 / frameBytes, sentPerSec: (Number(bw[2]) * 1e6) / 8 / (frameBytes + 4), mbpsDown: Number(bw[1]), mbpsUp: Number(bw[2]) }
          : null,
        stderr: out.slice(-1500),
      });
    });
  });
}

// ---- one measurement ------------------------------------------------------------------------

async function measure(scenario, name) {
  const server = await startServer(name, scenario.deflate === true);
  try {
    if (scenario.tcpkali) {
      // The server's CPU time too: CPU per message tells servers apart when the load is what limits.
      const cpu0 = readCpuS(server.child.pid);
      const r = await runTcpkali(scenario.tcpkali, server.port, 120_000);
      const cpu1 = exited(server.child) ? null : readCpuS(server.child.pid);
      if (r.json) r.json.serverCpuS = cpu0 === null || cpu1 === null ? null : cpu1 - cpu0;
      return { value: r.json ? scenario.metric(r.json) : null, raw: r.json, note: r.json ? '' : r.stderr };
    }
    let rss = null;
    let baseRss = null;
    let onLine;
    if (scenario.idle) {
      baseRss = readRssKiB(server.child.pid);
      onLine = (line, child) => {
        if (!line.startsWith('{"event":"ready"')) return;
        setTimeout(() => {
          rss = exited(server.child) ? null : readRssKiB(server.child.pid);
          child.kill('SIGTERM'); // the load generator closes its connections and reports
        }, scenario.idle.settleMs);
      };
    }
    const cpu0 = readCpuS(server.child.pid);
    const r = await runLoad(scenario.load, server.port, 240_000, onLine, scenario.client);
    const cpu1 = exited(server.child) ? null : readCpuS(server.child.pid);
    if (r.json === null) return { value: null, raw: null, note: `load generator failed (exit ${r.code ?? r.signal}): ${r.stderr.slice(-600)}` };
    const json = r.json;
    if (scenario.idle) {
      json.rssMiB = rss === null ? null : rss / 1024;
      json.baseRssMiB = baseRss === null ? null : baseRss / 1024;
    }
    json.serverCpuS = cpu0 === null || cpu1 === null ? null : cpu1 - cpu0;
    if (exited(server.child)) return { value: null, raw: json, note: `server exited during the run: ${server.log().slice(-400)}` };
    const v = scenario.metric(json);
    const problems = [];
    if (json.failed > 0) problems.push(`${json.failed} connections failed (${json.firstError})`);
    if (json.closedEarly > 0) problems.push(`${json.closedEarly} closed by the server`);
    if (scenario.deflate && json.deflate?.accepted !== json.opened) problems.push('permessage-deflate not negotiated');
    if (scenario.compressedBurst && json.burst && json.burst.compressed !== json.burst.deliveries) problems.push(`${json.burst.deliveries - json.burst.compressed} burst messages came uncompressed`);
    if (json.burst && !json.burst.complete) problems.push(`burst incomplete: ${json.burst.clientsComplete}/${json.conns} clients got every message`);
    if (json.churn && !json.churn.complete) problems.push(`churn incomplete: ${json.churn.completed}/${json.conns}`);
    return { value: v, raw: json, note: problems.join('; ') };
  } finally {
    await stop(server.child);
  }
}

// ---- statistics and output ------------------------------------------------------------------

function stats(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { median, min: v[0], max: v[v.length - 1], n: v.length };
}

function fmt(x, unit) {
  if (x === null || x === undefined) return '—';
  if (unit === 's' || unit === 'CPU s') return x.toFixed(2);
  if (unit === 'MiB') return x.toFixed(1);
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`;
  return x.toFixed(0);
}

function fmtStat(s, unit) {
  if (s === null) return '—';
  if (s.n === 1) return fmt(s.median, unit);
  return `${fmt(s.median, unit)} (${fmt(s.min, unit)}–${fmt(s.max, unit)})`;
}

/** value ratio a/b; for times and memory a ratio below 1 is the good direction. */
function ratio(a, b) {
  return a && b ? a.median / b.median : null;
}

function markdown(results) {
  const names = results.meta?.servers ?? SERVER_NAMES;
  const withFloor = names.includes('floor') && results.scenarios.some((s) => s.summary.floor);
  const head = ['scenario', 'unit', ...names, 'wschan/ws', 'wschan/bun', 'bun/ws', ...(withFloor ? ['floor/ws', 'floor/bun'] : [])];
  const rows = [head, head.map(() => '---')];
  for (const s of results.scenarios) {
    const sum = s.summary;
    const r = (a, b) => {
      const x = ratio(sum[a], sum[b]);
      return x === null ? '—' : `${x.toFixed(2)}×`;
    };
    rows.push([
      s.title,
      `${s.unit} (${s.better} is better)`,
      ...names.map((n) => fmtStat(sum[n] ?? null, s.unit)),
      r('wschan', 'ws'),
      r('wschan', 'bun'),
      r('bun', 'ws'),
      ...(withFloor ? [r('floor', 'ws'), r('floor', 'bun')] : []),
    ]);
  }
  return rows.map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** Wire size of one unmasked server frame carrying tcpkali's -m message. */
function frameBytesOf(args) {
  const len = Buffer.byteLength(args[args.indexOf('-m') + 1] ?? '');
  return len + (len < 126 ? 2 : len < 65536 ? 4 : 10);
}

/** tcpkali is not in Debian: it is built outside the repository (NOTES.md) and found through the
 * TCPKALI environment variable (the binary's path) or on PATH. */
function findTcpkali() {
  const given = process.env.TCPKALI;
  if (given) {
    if (!existsSync(given)) throw new Error(`TCPKALI=${given}: no such file`);
    return given;
  }
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir, 'tcpkali');
    try {
      if (dir && statSync(p).isFile()) return p;
    } catch {}
  }
  return null;
}

function ensureLoadgen() {
  const srcDir = path.join(ROOT, 'stress-tests/loadgen');
  const stale =
    !existsSync(LOADGEN) ||
    (existsSync(srcDir) &&
      readdirSync(srcDir).some((f) => f.endsWith('.ts') && statSync(path.join(srcDir, f)).mtimeMs > statSync(LOADGEN).mtimeMs));
  if (!stale) return;
  console.error('building the load generator (tsc -p tsconfig.json at the root)…');
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  // tsc emits even when another part of the tree has type errors; only a missing output is fatal.
  spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore', timeout: 180_000 });
  if (!existsSync(LOADGEN)) {
    console.error(`cannot build ${path.relative(ROOT, LOADGEN)}: run \`npm ci && npx tsc -p tsconfig.json\` at the root`);
    process.exit(1);
  }
}

/** tcpkali's version line (not its path: results files name no machine paths). */
function tcpkaliVersion() {
  if (TCPKALI === null) return null;
  const r = spawnSync(TCPKALI, ['--version'], { encoding: 'utf8' });
  return (r.stdout || r.stderr || '').split('\n')[0].trim() || 'unknown';
}

function versionOf(pkg) {
  try {
    return JSON.parse(readFileSync(path.join(BENCH, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

// ---- main -----------------------------------------------------------------------------------

async function main() {
  if (flag('--help') || flag('-h') || flag('--list')) {
    console.log('usage: node bench/run.mjs [--quick] [--only id[,id…]] [--servers wschan,ws,bun,floor] [--reps N] | --table <results.json>\n\nscenarios:');
    for (const s of SCENARIOS) console.log(`  ${s.id.padEnd(20)} ${s.title}`);
    if (TCPKALI === null) console.log('  (tcpkali-echo-small appears when tcpkali is on PATH or named by TCPKALI=<path>)');
    return;
  }
  const tableOf = value('--table');
  if (tableOf !== undefined) {
    // Print the Markdown table of a saved results file (for bench/RESULTS.md).
    const saved = JSON.parse(readFileSync(tableOf, 'utf8'));
    console.log(markdown(saved));
    return;
  }
  ensureLoadgen();
  const servers = [];
  for (const name of SERVER_NAMES) {
    if (!(name in SERVERS)) {
      console.error(`unknown server: ${name} (known: ${Object.keys(SERVERS).join(', ')})`);
      process.exit(2);
    }
    const why = SERVERS[name].missing();
    if (why === null) servers.push(name);
    else console.error(`skipping ${name}: ${why}`);
  }
  if (servers.length === 0) {
    console.error('no server to measure');
    process.exit(1);
  }
  const scenarios = SCENARIOS.filter((s) => !ONLY || ONLY.includes(s.id));
  if (ONLY) for (const id of ONLY) if (!SCENARIOS.some((s) => s.id === id)) console.error(`unknown scenario: ${id}`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsDir = path.join(BENCH, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${stamp}.json`);
  const results = {
    meta: {
      date: new Date().toISOString(),
      quick: QUICK,
      reps: REPS,
      servers,
      skipped: SERVER_NAMES.filter((n) => !servers.includes(n)),
      machine: { cpus: NPROC, cpu: os.cpus()[0]?.model ?? '', kernel: os.release(), pinned: HAS_TASKSET ? 'server core 0, load core 1' : 'no' },
      versions: { node: process.version, ws: versionOf('ws'), bun: versionOf('bun'), tcpkali: tcpkaliVersion() },
    },
    scenarios: [],
  };
  const started = Date.now();
  if (os.loadavg()[0] > NPROC) {
    console.error(`warning: load average ${os.loadavg()[0].toFixed(1)} on ${NPROC} cores; other processes will distort the numbers (ratios of interleaved runs suffer least)`);
  }
  for (const s of scenarios) {
    console.error(`\n== ${s.id}: ${s.title}`);
    if (s.client === 'bun' && BUN === null) {
      console.error('  skipped: its client runs on Bun, and there is no working bun binary in bench/node_modules (cd bench && npm ci)');
      continue;
    }
    const entry = { id: s.id, title: s.title, unit: s.unit, better: s.better, target: s.target ?? null, load: s.load ?? s.tcpkali, runs: [], summary: {} };
    results.scenarios.push(entry);
    for (let rep = 0; rep < REPS; rep++) {
      for (const name of servers) {
        if (SERVERS[name].only && !SERVERS[name].only.includes(s.id)) continue;
        let m;
        try {
          m = await measure(s, name);
        } catch (err) {
          m = { value: null, raw: null, note: String(err?.message ?? err) };
        }
        const load1 = os.loadavg()[0];
        if (load1 > NPROC + 1) m.note = `${m.note ? `${m.note}; ` : ''}load average ${load1.toFixed(1)} on ${NPROC} cores: other processes compete`;
        const lat = m.raw?.latencyMs && s.unit === 'msg/s' && !s.tcpkali ? `  p50 ${m.raw.latencyMs.p50} ms p99 ${m.raw.latencyMs.p99} ms` : '';
        console.error(`  ${name.padEnd(7)} rep ${rep + 1}: ${fmt(m.value, s.unit)} ${s.unit}${lat}${m.note ? `  [${m.note}]` : ''}`);
        entry.runs.push({ server: name, rep, value: m.value, note: m.note, loadavg: load1, raw: m.raw });
        await sleep(300);
      }
    }
    for (const name of servers) if (!SERVERS[name].only || SERVERS[name].only.includes(s.id)) entry.summary[name] = stats(entry.runs.filter((r) => r.server === name).map((r) => r.value));
    writeFileSync(file, `${JSON.stringify(results, null, 1)}\n`);
  }
  results.meta.elapsedS = (Date.now() - started) / 1000;
  writeFileSync(file, `${JSON.stringify(results, null, 1)}\n`);
  console.log(`\n${markdown(results)}\n`);
  console.log(`Node ${process.version}, ws ${results.meta.versions.ws}, Bun ${results.meta.versions.bun}; ${NPROC} cores, ${results.meta.machine.pinned}; ${REPS} rep(s), median (min–max); ${results.meta.elapsedS.toFixed(0)} s.`);
  console.log(`results: ${path.relative(process.cwd(), file)}  (chart: node bench/chart.mjs ${path.relative(process.cwd(), file)})`);
}

await main();
