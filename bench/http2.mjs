#!/usr/bin/env node
// WebSockets over HTTP/2 streams (RFC 8441) against WebSockets over HTTP/1.1 upgrades, in one run:
// the time to open N WebSockets and the server's memory per open WebSocket, all over TLS.
//
//   node bench/http2.mjs [--conns 10000] [--reps 3] [--per-session 1000] [--window 256]
//
// Rows (each a fresh server process, interleaved per repetition):
//   wschan-h2  `npm run echo -- --http2`: N streams on ceil(N / per-session) HTTP/2 sessions
//              (per-session is capped by the server's SETTINGS_MAX_CONCURRENT_STREAMS)
//   wschan-h1  the same server and port: N TLS connections, each an HTTP/1.1 upgrade
//   ws-h1      ws 8 behind node:https (bench/peers/ws-echo-tls.mjs): N TLS connections (ws has no HTTP/2)
// The client is wschan's connect() in a process of its own, at most `window` WebSockets being
// opened at once. Set-up time: from the first connect to the last one open, with one echo per
// WebSocket afterwards to check it works. Memory: the server's VmRSS once all are open and 2 s
// have passed, minus its VmRSS before the first connection, divided by N.
// The server runs on core 0 and the client on core 1 (taskset), with the open-file limit raised.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH, '..');
const argv = process.argv.slice(2);
const value = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};
const CONNS = Number(value('conns', '10000'));
const REPS = Number(value('reps', '3'));
const PER_SESSION = Number(value('per-session', '1000'));
const WINDOW = Number(value('window', '256'));

// ---- the client process ------------------------------------------------------------------------

async function client() {
  const { connect } = await import(path.join(ROOT, 'dist/src/index.js'));
  const http2 = await import('node:http2');
  const port = Number(value('port'));
  const mode = value('mode');
  const url = `wss://127.0.0.1:${port}/`;
  const tls = { rejectUnauthorized: false }; // the server's certificate is self-signed (loopback only)
  const sessions = [];
  let perSession = PER_SESSION;
  if (mode === 'h2') {
    const first = http2.connect(`https://127.0.0.1:${port}`, tls);
    first.on('error', () => {});
    await new Promise((resolve) => first.once('remoteSettings', resolve));
    perSession = Math.min(PER_SESSION, first.remoteSettings.maxConcurrentStreams ?? PER_SESSION);
    sessions.push(first);
    while (sessions.length * perSession < CONNS) {
      const s = http2.connect(`https://127.0.0.1:${port}`, tls);
      s.on('error', () => {});
      sessions.push(s);
    }
  }
  const conns = [];
  let failed = 0;
  let firstError = '';
  const start = performance.now();
  let next = 0;
  async function worker() {
    while (next < CONNS) {
      const i = next++;
      try {
        const options = mode === 'h2' ? { http2: sessions[Math.floor(i / perSession)] } : { tls };
        conns.push(await connect(url, options));
      } catch (err) {
        failed++;
        firstError ||= err.message;
      }
    }
  }
  await Promise.all(Array.from({ length: WINDOW }, worker));
  const openMs = performance.now() - start;
  // One echo each: every WebSocket works.
  let echoed = 0;
  await Promise.all(
    conns.map(async (c) => {
      await c.write('x');
      const r = await c[Symbol.asyncIterator]().next();
      if (r.value?.data.toString() === 'x') echoed++;
    }),
  );
  process.stdout.write(JSON.stringify({ opened: conns.length, failed, firstError, echoed, openMs, sessions: sessions.length, perSession: mode === 'h2' ? perSession : 1 }) + '\n');
  // Hold them open until the harness has read the server's memory.
  await new Promise((resolve) => process.stdin.on('end', resolve).resume());
  process.exit(0);
}

// ---- the harness -------------------------------------------------------------------------------

function spawnPinned(cmd, core, stdin = 'ignore') {
  const pin = os.availableParallelism() >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0 ? ['taskset', '-c', String(core)] : [];
  return spawn('bash', ['-c', 'ulimit -n hard 2>/dev/null; exec "$@"', 'bash', ...pin, ...cmd], { stdio: [stdin, 'pipe', 'pipe'] });
}

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function firstLine(child, re, ms) {
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms: ${out.slice(-500)}`)), ms);
    const onData = (d) => {
      out += d;
      const m = re.exec(out);
      if (m) {
        clearTimeout(t);
        child.stdout.off('data', onData);
        resolve(m);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => (out += d));
    child.once('exit', (code) => reject(new Error(`exited with ${code}: ${out.slice(-500)}`)));
  });
}

function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function runOnce(row, certFiles) {
  const port = await freePort();
  const cmd =
    row === 'ws-h1'
      ? ['node', path.join(BENCH, 'peers/ws-echo-tls.mjs'), '--port', String(port), '--cert', certFiles.cert, '--key', certFiles.key]
      : ['node', path.join(ROOT, 'dist/stress-tests/echo-server.js'), '--port', String(port), '--http2'];
  const server = spawnPinned(cmd, 0);
  try {
    await firstLine(server, /listening/, 15_000);
    await new Promise((r) => setTimeout(r, 500));
    const before = rssKiB(server.pid);
    const c = spawnPinned(['node', fileURLToPath(import.meta.url), '--client', '--port', String(port), '--mode', row.endsWith('h2') ? 'h2' : 'h1', '--conns', String(CONNS), '--per-session', String(PER_SESSION), '--window', String(WINDOW)], 1, 'pipe');
    try {
      const [line] = await firstLine(c, /^\{.*\}$/m, 170_000);
      const r = JSON.parse(line);
      await new Promise((res) => setTimeout(res, 2000));
      const after = rssKiB(server.pid);
      return { ...r, rssBeforeMiB: before / 1024, rssAfterMiB: after / 1024, kibPerConn: (after - before) / r.opened };
    } finally {
      c.stdin.end();
      await stop(c);
    }
  } finally {
    await stop(server);
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const { makeSelfSigned } = await import(path.join(ROOT, 'dist/stress-tests/self-signed.js'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wschan-h2bench-'));
  const cert = makeSelfSigned();
  const certFiles = { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
  writeFileSync(certFiles.cert, cert.cert);
  writeFileSync(certFiles.key, cert.key);
  const rows = ['wschan-h2', 'wschan-h1', 'ws-h1'];
  const runs = Object.fromEntries(rows.map((r) => [r, []]));
  console.log(`${CONNS} WebSockets per run, ${REPS} repetitions, window ${WINDOW}, ${PER_SESSION} streams per HTTP/2 session; node ${process.version}, ${os.cpus()[0]?.model}, load ${os.loadavg()[0].toFixed(2)}`);
  try {
    for (let rep = 0; rep < REPS; rep++) {
      for (const row of rows) {
        const r = await runOnce(row, certFiles);
        const ok = r.opened === CONNS && r.echoed === CONNS;
        console.log(`${row} #${rep + 1}: ${ok ? '' : `INCOMPLETE (opened ${r.opened}, echoed ${r.echoed}, failed ${r.failed}: ${r.firstError}) `}open ${(r.openMs / 1000).toFixed(2)} s, ${r.kibPerConn.toFixed(2)} KiB/conn (RSS ${r.rssBeforeMiB.toFixed(0)} -> ${r.rssAfterMiB.toFixed(0)} MiB), ${r.sessions} sessions`);
        if (ok) runs[row].push(r);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const summary = {};
  for (const row of rows) {
    if (runs[row].length === 0) continue;
    summary[row] = { openS: median(runs[row].map((r) => r.openMs / 1000)), kibPerConn: median(runs[row].map((r) => r.kibPerConn)), n: runs[row].length };
  }
  console.log('\n| row | runs | set-up of all (s, median) | per WebSocket (ms) | server memory per WebSocket (KiB, median) |');
  console.log('|---|---|---|---|---|');
  for (const [row, s] of Object.entries(summary)) {
    console.log(`| ${row} | ${s.n} | ${s.openS.toFixed(2)} | ${((s.openS * 1000) / CONNS).toFixed(3)} | ${s.kibPerConn.toFixed(2)} |`);
  }
  const h2 = summary['wschan-h2'];
  const h1 = summary['wschan-h1'];
  const ws = summary['ws-h1'];
  if (h2 && h1) console.log(`\nwschan h2/h1: set-up time ${(h2.openS / h1.openS).toFixed(2)}x, memory per WebSocket ${(h2.kibPerConn / h1.kibPerConn).toFixed(2)}x`);
  if (h1 && ws) console.log(`wschan-h1/ws-h1: set-up time ${(h1.openS / ws.openS).toFixed(2)}x, memory per WebSocket ${(h1.kibPerConn / ws.kibPerConn).toFixed(2)}x`);
  if (h2 && ws) console.log(`wschan-h2/ws-h1: set-up time ${(h2.openS / ws.openS).toFixed(2)}x, memory per WebSocket ${(h2.kibPerConn / ws.kibPerConn).toFixed(2)}x`);
}

if (argv.includes('--client')) await client();
else await main();
