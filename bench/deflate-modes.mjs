// permessage-deflate modes and window sizes: memory per connection at 10,000 connections, 1 KiB
// JSON echo throughput and compression ratio, wschan's configurations and ws in the same run.
//
//   npm run build && flock <lock file> node bench/deflate-modes.mjs [--conns 10000] [--seconds 3]
//
// For each configuration: a fresh server process (bench/peers/deflate-modes-server.mjs, pinned to
// core 0); this process (core 1) opens N raw-socket connections offering
// `permessage-deflate; client_max_window_bits` (what browsers send), each sends 3 different
// 1 KiB JSON chat messages compressed (so the server's inflater and compressor are both
// allocated: zlib allocates its state on first use) and reads the 3 echoes; with every
// connection open and served, the server's VmRSS minus its VmRSS before the first connection,
// divided by N, is the memory per connection. The echoes' payload bytes over the bytes sent
// uncompressed are the compression ratio. The connections are then closed and the load generator
// (dist/stress-tests/loadgen, core 1) measures 1 KiB JSON echo throughput on 100 pipelined
// connections for `--seconds`. Bounded: every phase has a deadline.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import { deflateRawSync, constants as zc } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(argv[i + 1]);
};
const CONNS = flag('conns', 10_000);
const SECONDS = flag('seconds', 3);
const MSGS = 3;
const HAS_TASKSET = existsSync('/usr/bin/taskset');
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// id: mode serverMaxWindowBits/clientMaxWindowBits mMemLevel (unnamed settings: the defaults).
const CONFIGS = [
  { id: 'no deflate', lib: 'wschan', config: false },
  { id: "dedicated 15/15 m8 (the default before 'shared')", lib: 'wschan', config: { mode: 'dedicated' } },
  { id: 'dedicated 10/10 m4', lib: 'wschan', config: { mode: 'dedicated', serverMaxWindowBits: 10, clientMaxWindowBits: 10, memLevel: 4 } },
  { id: 'dedicated 9/9 m1', lib: 'wschan', config: { mode: 'dedicated', serverMaxWindowBits: 9, clientMaxWindowBits: 9, memLevel: 1 } },
  { id: "shared 15/15 (deflate: true)", lib: 'wschan', config: true },
  { id: 'shared 15/10', lib: 'wschan', config: { mode: 'shared', clientMaxWindowBits: 10 } },
  { id: 'ws perMessageDeflate: true', lib: 'ws', config: true },
];

// ---- 1 KiB JSON chat messages, all different (so context takeover cannot just repeat one) ----
const WORDS = 'the quick brown fox jumps over lazy dog meeting tomorrow at noon please review pull request deploy failed retry later sounds good thanks see you lunch coffee build green red merge conflict release notes ship it'.split(' ');
function chatMessage(k) {
  let seed = (k + 1) * 2654435761;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const base = { type: 'chat', room: `room-${k % 97}`, user: { id: 100000 + k, name: `user${k}` }, ts: 1764770000000 + k * 1337, text: '' };
  let text = '';
  while (JSON.stringify({ ...base, text }).length < 1024) text += WORDS[Math.floor(rnd() * WORDS.length)] + ' ';
  text = text.slice(0, text.length - (JSON.stringify({ ...base, text }).length - 1024));
  return Buffer.from(JSON.stringify({ ...base, text })); // 1,024 bytes of valid JSON
}
const MESSAGES = Array.from({ length: 64 }, (_, k) => chatMessage(k));
const JSON_1K = MESSAGES[0].toString();

function clientFrame(payload, rsv1) {
  const mask = randomBytes(4);
  const head = payload.length < 126 ? Buffer.from([0x81 | (rsv1 ? 0x40 : 0), 0x80 | payload.length]) : Buffer.from([0x81 | (rsv1 ? 0x40 : 0), 0x80 | 126, payload.length >> 8, payload.length & 255]);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, body]);
}
/** A message compressed on its own (RFC 7692 §7.2.1: sync flush, trailing 00 00 ff ff removed). */
function compressed(msg) {
  const out = deflateRawSync(msg, { level: 1, windowBits: 15, finishFlush: zc.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}
const FRAMES = MESSAGES.map((m) => clientFrame(compressed(m), true));

// ---- processes ----
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function spawnPinned(cmd, core) {
  const pin = HAS_TASKSET ? ['taskset', '-c', String(core)] : [];
  return spawn('bash', ['-c', 'ulimit -n hard 2>/dev/null; exec "$@"', 'bash', ...pin, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
}
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
/** The server's RSS after a full GC (SIGUSR2, see the peer) and a pause. */
async function settledRssKiB(child) {
  child.kill('SIGUSR2');
  await sleep(700);
  return rssKiB(child.pid);
}
function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}
async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 3000);
  await done;
  clearTimeout(t);
}
async function startServer(cfg) {
  const port = await freePort();
  const child = spawnPinned(['node', '--expose-gc', join(ROOT, 'bench/peers/deflate-modes-server.mjs'), '--lib', cfg.lib, '--port', String(port), '--config', JSON.stringify(cfg.config)], 0);
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const until = Date.now() + 15_000;
  while (!log.includes('listening')) {
    if (Date.now() > until || child.exitCode !== null) throw new Error(`${cfg.id}: server did not start: ${log.slice(-500)}`);
    await sleep(50);
  }
  return { child, port };
}

// ---- the memory phase: N connections, 3 messages each; then 37 more on the first 1,000 ----
const PLAIN = MESSAGES.map((m) => clientFrame(m, false));
const stats = { sentBytes: 0, echoBytes: 0, compressedEchoes: 0 };

/** One raw connection: `send(count)` sends `count` messages and resolves on their echoes. */
function connect(port) {
  return new Promise((resolve) => {
    const key = randomBytes(16).toString('base64');
    const s = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let deflate = false;
    let next = 0;
    let awaited = 0;
    let onEchoes = null;
    const conn = {
      s,
      send(count) {
        return new Promise((res) => {
          if (s.destroyed) return res(false);
          awaited = count;
          onEchoes = res;
          const frames = deflate ? FRAMES : PLAIN;
          for (let i = 0; i < count; i++, next++) {
            s.write(frames[next % frames.length]);
            stats.sentBytes += 1024;
          }
        });
      },
    };
    const fail = () => {
      if (!upgraded) resolve(null);
      upgraded = true;
      onEchoes?.(false);
      onEchoes = null;
    };
    s.on('error', fail);
    s.on('close', fail);
    s.on('connect', () => {
      s.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n`);
    });
    s.on('data', (d) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      if (!upgraded) {
        const e = buf.indexOf('\r\n\r\n');
        if (e < 0) return;
        const head = buf.subarray(0, e).toString('latin1');
        const accept = createHash('sha1').update(key + GUID).digest('base64');
        upgraded = true;
        if (!head.startsWith('HTTP/1.1 101') || !head.includes(accept)) {
          s.destroy();
          return resolve(null);
        }
        deflate = /sec-websocket-extensions:\s*permessage-deflate/i.test(head);
        conn.deflate = deflate;
        buf = buf.subarray(e + 4);
        resolve(conn);
      }
      while (buf.length >= 2) {
        let len = buf[1] & 127;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) return s.destroy();
        if (buf.length < off + len) return;
        if (buf[0] & 0x40) stats.compressedEchoes++;
        stats.echoBytes += len;
        buf = buf.subarray(off + len);
        if (--awaited === 0) {
          const r = onEchoes;
          onEchoes = null;
          r?.(true);
        }
      }
    });
  });
}

/** Run `task(i)` for i < n, at most `limit` at once, until `deadline` (ms since epoch). */
async function pool(n, limit, deadline, task) {
  let i = 0;
  let ok = 0;
  const worker = async () => {
    while (i < n && Date.now() < deadline) if (await task(i++)) ok++;
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return ok;
}

async function memoryPhase(port) {
  const conns = [];
  const deadline = Date.now() + 60_000;
  const served = await pool(CONNS, 256, deadline, async () => {
    const c = await connect(port);
    if (c === null) return false;
    conns.push(c);
    return c.send(MSGS);
  });
  return { conns, served, negotiated: conns.filter((c) => c.deflate).length };
}

function loadgen(port) {
  return new Promise((resolve) => {
    const cmd = ['node', join(ROOT, 'dist/stress-tests/loadgen/main.js'), '-c', '100', '-m', JSON_1K, '--deflate', '--pipeline', '-T', `${SECONDS}s`, '--drain', '500ms', '--json', '-q', `127.0.0.1:${port}`];
    const child = spawnPinned(cmd, 1);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const t = setTimeout(() => child.kill('SIGKILL'), (SECONDS + 20) * 1000);
    child.on('exit', () => {
      clearTimeout(t);
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        resolve(null);
      }
    });
  });
}

// ---- run ----
if (!existsSync(join(ROOT, 'dist/src/index.js'))) throw new Error('build first: npm run build');
const rows = [];
const LONG = Math.min(2000, CONNS);
const MORE = 37; // 40 KiB in all through each of LONG connections: windows and buffers filled
for (const cfg of CONFIGS) {
  const { child, port } = await startServer(cfg);
  try {
    await sleep(300);
    const before = await settledRssKiB(child);
    stats.sentBytes = stats.echoBytes = stats.compressedEchoes = 0;
    const t0 = performance.now();
    const r = await memoryPhase(port);
    const openS = (performance.now() - t0) / 1000;
    const ratio = stats.sentBytes > 0 ? stats.echoBytes / stats.sentBytes : null;
    await sleep(300);
    const after = await settledRssKiB(child);
    const longOk = await pool(LONG, 64, Date.now() + 60_000, (i) => r.conns[i].send(MORE));
    await sleep(300);
    const after2 = await settledRssKiB(child);
    for (const c of r.conns) c.s.destroy();
    await sleep(1000);
    const lg = await loadgen(port);
    const kibPerConn = r.served > 0 ? (after - before) / r.served : null;
    const row = {
      id: cfg.id,
      served: r.served,
      negotiated: r.negotiated,
      kibPerConn,
      // a connection that has carried 40 KiB: the 3-message figure plus the growth of LONG of them
      kibPerConnLong: kibPerConn !== null && longOk === LONG ? kibPerConn + (after2 - after) / LONG : null,
      rssMiB: after / 1024,
      openS,
      ratio,
      compressedEchoes: stats.compressedEchoes,
      echoPerSec: lg && (cfg.config === false || lg.deflate?.accepted === lg.opened) ? lg.receivedPerSec : null,
    };
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  } finally {
    await stop(child);
  }
}

const ref = rows.find((r) => r.id.startsWith('ws'))?.echoPerSec;
const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
console.log(`\n${CONNS} connections × ${MSGS} compressed 1 KiB JSON messages each, then ${MORE} more on ${LONG} of them; echo: 100 conns pipelined ${SECONDS} s. 1-min load average at the end: ${load}\n`);
console.log('| configuration | KiB/conn, 3 msgs | KiB/conn, 40 msgs | 100,000 conns (40 msgs) | echo bytes / 1 KiB | 1 KiB echo msg/s | / ws |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) {
  const kib = r.kibPerConn === null ? '—' : r.kibPerConn.toFixed(1);
  const kib2 = r.kibPerConnLong === null ? '—' : r.kibPerConnLong.toFixed(1);
  const gib = r.kibPerConnLong === null ? '—' : `${((r.kibPerConnLong * 100_000) / 1024 / 1024).toFixed(1)} GiB`;
  const ratio = r.ratio === null ? '—' : r.ratio.toFixed(3);
  const eps = r.echoPerSec === null ? '—' : Math.round(r.echoPerSec).toLocaleString('en-US');
  const vs = r.echoPerSec !== null && ref ? (r.echoPerSec / ref).toFixed(2) : '—';
  const warn = r.served !== CONNS ? ` (served ${r.served}/${CONNS})` : '';
  console.log(`| ${r.id}${warn} | ${kib} | ${kib2} | ${gib} | ${ratio} | ${eps} | ${vs} |`);
}
