#!/usr/bin/env node
// Typed messages (issue 14): messages/s of the same chat handler written three ways, in one run:
// wschan/typed (TypeBox, compiled), by hand (JSON.parse + checks), and ajv (same schemas).
//
//   flock <lock file> node bench/typed.mjs [--reps N] [--quick] [--profile <variant>]
//
// 1. In process: the handler path alone (parse, check, dispatch, handle) over 1,000 distinct
//    ~160-byte chat messages, no sockets; variants interleaved, median of the repetitions.
// 2. End to end over loopback: a server process (pinned to core 0) per variant, wschan and ws
//    (the peer) with the same handlers; a raw client here (pinned to core 1) writes C connections
//    × M pre-masked frames as fast as TCP takes them, then "done"; the clock stops when every
//    connection has its {"t":"count"} answer (which must count all M). Variants interleaved.
// Needs `npm run build` at the root and `npm ci` in bench/ (ajv, ws).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Conn, Server } from '../dist/src/index.js';
import { defaultConnOptions } from '../dist/src/conn/conn.js';
import { PassThrough } from 'node:stream';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Chat, ajvHandler, chatMessage, handHandler, installTyped } from './peers/typed-handlers.mjs';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const REPS = argv.includes('--reps') ? Number(argv[argv.indexOf('--reps') + 1]) : QUICK ? 3 : 5;
if (!(Number.isInteger(REPS) && REPS >= 1)) throw new Error('--reps N: a positive integer');
// --profile <variant>: run that server once under --cpu-prof (bench/results/prof/) and stop.
const PROFILE = argv.includes('--profile') ? argv[argv.indexOf('--profile') + 1] : undefined;
const PIN = os.cpus().length >= 2 && spawnSync('taskset', ['--version']).status === 0;
if (PIN) spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)]);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n) => Math.round(n).toLocaleString('en-US');

// ---- 1. in process ------------------------------------------------------------------------

const MESSAGES = Array.from({ length: 1000 }, (_, i) => Buffer.from(chatMessage(i)));
const ROUNDS = QUICK ? 200 : 600; // × 1,000 messages per measurement

function inProcessVariants() {
  const typedServer = new Server();
  const typed = installTyped(typedServer);
  // A real Conn over a stream that carries nothing (the typed view lives in a private slot of
  // Conn, which a look-alike object would not have); destroyed after the measurement.
  const fake = new Conn({ socket: new PassThrough(), role: 'server', options: defaultConnOptions, handlers: {}, data: { n: 0, bytes: 0, bad: 0 } });
  const hand = handHandler();
  const ajv = ajvHandler();
  const check = TypeCompiler.Compile(Chat);
  const hs = { n: 0, bytes: 0, bad: 0 };
  const as = { n: 0, bytes: 0, bad: 0 };
  const cs = { n: 0, bytes: 0, bad: 0 };
  const nop = () => {};
  return {
    typed: { run: (b) => typed.dispatch(fake, b, false), count: () => fake.data.n },
    hand: { run: (b) => hand(b, hs, nop), count: () => hs.n },
    ajv: { run: (b) => ajv(b, as, nop), count: () => as.n },
    // The compiled TypeBox check without wschan's dispatch: where the time of `typed` goes.
    'typebox-check': {
      run: (b) => {
        const m = JSON.parse(b.toString());
        if (typeof m === 'object' && m !== null && m.t === 'chat' && check.Check(m.d)) {
          cs.n++;
          cs.bytes += m.d.text.length;
        } else cs.bad++;
      },
      count: () => cs.n,
    },
  };
}

function measureInProcess() {
  const variants = inProcessVariants();
  const names = Object.keys(variants);
  const rates = Object.fromEntries(names.map((n) => [n, []]));
  // Warm-up: every variant optimized before the clock runs.
  for (const n of names) for (let r = 0; r < 50; r++) for (const b of MESSAGES) variants[n].run(b);
  for (let rep = 0; rep < REPS; rep++) {
    for (const n of names) {
      const before = variants[n].count();
      const c0 = process.cpuUsage();
      for (let r = 0; r < ROUNDS; r++) for (const b of MESSAGES) variants[n].run(b);
      const c = process.cpuUsage(c0);
      const handled = variants[n].count() - before;
      if (handled !== ROUNDS * MESSAGES.length) throw new Error(`${n} handled ${handled} of ${ROUNDS * MESSAGES.length}`);
      // CPU time of this process, not wall time: on a shared machine the wall clock also counts
      // the time other processes had the core; the CPU time is this variant's own work.
      rates[n].push((handled * 1e6) / (c.user + c.system));
    }
  }
  return rates;
}

// ---- 2. end to end ------------------------------------------------------------------------

const CONNS = 32;
const PER_CONN = QUICK ? 4000 : 10000;
const BATCH = 500;

/** A client text frame, masked with the zero key (RFC 6455 §5.3: any key; the payload is unchanged). */
function maskedFrame(text) {
  const p = Buffer.from(text);
  const head = p.length < 126 ? Buffer.from([0x81, 0x80 | p.length, 0, 0, 0, 0]) : Buffer.from([0x81, 0x80 | 126, p.length >> 8, p.length & 255, 0, 0, 0, 0]);
  if (p.length > 0xffff) throw new Error('frame too long');
  return Buffer.concat([head, p]);
}
const BATCH_BYTES = Buffer.concat(Array.from({ length: BATCH }, (_, i) => maskedFrame(chatMessage(i))));
const DONE = maskedFrame('{"t":"done","d":null}');

const CLK_TCK = 100; // USER_HZ on Linux: /proc/<pid>/stat counts CPU time in 1/100 s
/** user + system CPU time of a process so far, in clock ticks (/proc/<pid>/stat fields 14 and 15). */
function serverCpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

function startServer(variant) {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = srv.address().port;
      srv.close(() => {
        const flags = PROFILE === variant ? ['--cpu-prof', '--cpu-prof-dir', path.join(BENCH, 'results', 'prof')] : [];
        const cmd = [process.execPath, ...flags, path.join(BENCH, 'peers/typed-server.mjs'), '--variant', variant, '--port', String(port)];
        const child = PIN ? spawn('taskset', ['-c', '0', ...cmd], { stdio: ['ignore', 'pipe', 'inherit'] }) : spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
        child.stdout.once('data', () => resolve({ child, port }));
        child.once('exit', (code) => reject(new Error(`${variant} exited with ${code}`)));
      });
    });
  });
}

function openRaw(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.setNoDelay(true);
    s.once('error', reject);
    s.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    let head = Buffer.alloc(0);
    const onData = (d) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      s.off('data', onData);
      if (!head.subarray(0, 12).toString().includes('101')) return reject(new Error(`no 101: ${head.toString().slice(0, 80)}`));
      resolve(s);
    };
    s.on('data', onData);
  });
}

/** One connection's load: PER_CONN chats in batches (TCP backpressure), then done; resolves with n. */
function drive(s) {
  return new Promise((resolve, reject) => {
    let got = '';
    s.on('data', (d) => {
      got += d.toString('latin1');
      const m = /"t":"count","d":\{"n":(\d+)\}/.exec(got);
      if (m) resolve(Number(m[1]));
    });
    s.once('error', reject);
    let sent = 0;
    const pump = () => {
      while (sent < PER_CONN) {
        sent += BATCH;
        if (!s.write(BATCH_BYTES)) return void s.once('drain', pump);
      }
      s.write(DONE);
    };
    pump();
  });
}

async function runEndToEnd(variant) {
  const { child, port } = await startServer(variant);
  try {
    const socks = await Promise.all(Array.from({ length: CONNS }, () => openRaw(port)));
    const cpu0 = serverCpuTicks(child.pid);
    const t0 = process.hrtime.bigint();
    const counts = await Promise.all(socks.map(drive));
    const ns = Number(process.hrtime.bigint() - t0);
    const cpuTicks = serverCpuTicks(child.pid) - cpu0;
    for (const c of counts) if (c !== PER_CONN) throw new Error(`${variant}: a connection counted ${c} of ${PER_CONN}`);
    for (const s of socks) s.destroy();
    return { wall: (CONNS * PER_CONN * 1e9) / ns, cpu: (CONNS * PER_CONN * CLK_TCK) / cpuTicks };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

// ---- run ------------------------------------------------------------------------------------

if (PROFILE !== undefined) {
  console.log(`${PROFILE}: ${fmt((await runEndToEnd(PROFILE)).wall)} msg/s under --cpu-prof (bench/results/prof/)`);
  process.exit(0);
}
const meta = { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, pinned: PIN, loadavg: os.loadavg(), reps: REPS };
console.log(`typed messages bench: ${meta.date}, Node ${meta.node}, ${meta.cpus} × ${meta.cpu}, load ${meta.loadavg.map((x) => x.toFixed(2)).join(' ')}`);
console.log(`in process: ${REPS} reps × ${ROUNDS * MESSAGES.length} messages of ${MESSAGES[0].length} B per variant; messages per CPU-second of this process`);
const inProc = measureInProcess();
for (const [n, r] of Object.entries(inProc)) console.log(`  ${n.padEnd(14)} ${fmt(median(r)).padStart(12)}   (${r.map(fmt).join(', ')})`);
const ip = (n) => median(inProc[n]);
console.log(`  typed/hand ${(ip('typed') / ip('hand')).toFixed(3)}   typed/ajv ${(ip('typed') / ip('ajv')).toFixed(3)}   typed/typebox-check ${(ip('typed') / ip('typebox-check')).toFixed(3)}`);

const VARIANTS = ['wschan-typed', 'wschan-hand', 'wschan-ajv', 'ws-hand', 'ws-ajv'];
console.log(`end to end: ${REPS} reps × ${CONNS} connections × ${PER_CONN} messages per variant${PIN ? ' (server on core 0, client on core 1)' : ''}`);
const e2e = Object.fromEntries(VARIANTS.map((v) => [v, []]));
const e2eCpu = Object.fromEntries(VARIANTS.map((v) => [v, []]));
for (let rep = 0; rep < REPS; rep++) {
  for (const v of VARIANTS) {
    const r = await runEndToEnd(v);
    e2e[v].push(r.wall);
    e2eCpu[v].push(r.cpu);
  }
}
for (const [label, table] of [['msg/s (wall clock)', e2e], ['msg per server CPU-second', e2eCpu]]) {
  console.log(` ${label}:`);
  for (const [n, r] of Object.entries(table)) console.log(`  ${n.padEnd(14)} ${fmt(median(r)).padStart(12)}   (${r.map(fmt).join(', ')})`);
  const ee = (n) => median(table[n]);
  console.log(`  wschan-typed/wschan-hand ${(ee('wschan-typed') / ee('wschan-hand')).toFixed(3)}   wschan-typed/wschan-ajv ${(ee('wschan-typed') / ee('wschan-ajv')).toFixed(3)}   wschan-typed/ws-hand ${(ee('wschan-typed') / ee('ws-hand')).toFixed(3)}   wschan-hand/ws-hand ${(ee('wschan-hand') / ee('ws-hand')).toFixed(3)}`);
}

mkdirSync(path.join(BENCH, 'results'), { recursive: true });
const file = path.join(BENCH, 'results', `typed-${meta.date.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ meta, inProcessPerCpuSecond: inProc, endToEnd: e2e, endToEndPerServerCpuSecond: e2eCpu }, null, 2));
console.log(`results: bench/results/${path.basename(file)}`);
