// Fan-out across processes through one redis-server: wschan's Redis adapter (src/scale/redis.ts)
// against socket.io 4.8 with @socket.io/redis-adapter 8.3, in one run, interleaved.
//
//   npm run build && npm --prefix bench ci
//   flock <lock file> node bench/redis-fanout.mjs [--conns 10000] [--burst 100] [--size 64] [--reps 2] [--pings 40]
//
// Per repetition and peer: a fresh redis-server-backed fleet of three nodes (each its own process,
// on its own port), `--conns` subscribers spread evenly over the nodes by one client process
// (bench/peers/fanout-clients.mjs). Then:
//  - throughput: node 0 publishes `--burst` messages of `--size` bytes back to back; deliveries/s =
//    conns × burst ÷ (last delivery − first message's send time);
//  - latency: `--pings` single messages, each once the previous one reached every subscriber; the
//    latency of every delivery (send time in the payload; process.hrtime is CLOCK_MONOTONIC, shared
//    by the processes), split into subscribers on the publishing node (local) and on the two others
//    (through Redis). The Redis hop = median(remote) − median(local).
// Results: a table on stdout and bench/results/redis-fanout-<timestamp>.json.
import { fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const CONNS = arg('conns', 10_000);
const BURST = arg('burst', 100);
const SIZE = arg('size', 64);
const REPS = arg('reps', 2);
const PINGS = arg('pings', 20);
const PROBES = arg('probes', 3);
const PROBE_PINGS = arg('probe-pings', 200);
const PEERS = {
  wschan: { file: `${ROOT}dist/stress-tests/redis-node.js`, proto: 'wschan' },
  'socket.io': { file: `${ROOT}bench/peers/socketio-redis-node.mjs`, proto: 'socketio' },
};
for (const p of Object.values(PEERS)) if (!existsSync(p.file)) throw new Error(`${p.file} is missing: npm run build && npm --prefix bench ci`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function startRedis() {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  proc.on('error', (e) => {
    console.error(`redis-server could not start (${e.message}): apt-get install -y redis-server`);
    process.exit(1);
  });
  for (let i = 0; i < 250; i++) {
    const ok = await new Promise((r) => {
      const s = connect({ port, host: '127.0.0.1' }, () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return { port, url: `redis://127.0.0.1:${port}`, proc };
    await sleep(20);
  }
  throw new Error('redis-server did not start');
}

class Child {
  constructor(file, args) {
    this.proc = fork(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--max-old-space-size=2048'] });
    this.next = 1;
    this.waiting = new Map();
    this.events = [];
    this.eventWaiters = [];
    children.add(this);
    this.proc.on('exit', (code, signal) => {
      children.delete(this);
      for (const w of this.waiting.values()) w.reject(new Error(`${file} exited (${code ?? signal})`));
      this.waiting.clear();
    });
    this.proc.on('message', (m) => {
      if (typeof m.id === 'number') {
        const w = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (m.ok) w?.resolve(m.value);
        else w?.reject(new Error(m.value));
      } else {
        this.events.push(m);
        for (const w of this.eventWaiters.splice(0)) w();
      }
    });
  }
  request(cmd, args = {}) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${cmd}: no answer within 120 s`)), 120_000);
      const done = (f) => (v) => {
        clearTimeout(timer);
        f(v);
      };
      this.waiting.set(id, { resolve: done(resolve), reject: done(reject) });
      this.proc.send({ id, cmd, ...args });
    });
  }
  async event(name, ms = 30_000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.events.findIndex((e) => e.event === name);
      if (i >= 0) return this.events.splice(i, 1)[0];
      if (Date.now() > deadline) throw new Error(`no ${name} event within ${ms} ms`);
      await Promise.race([new Promise((r) => this.eventWaiters.push(r)), sleep(100)]);
    }
  }
  async close() {
    const exit = once(this.proc, 'exit');
    await Promise.race([this.request('close').catch(() => {}), sleep(5000)]);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exit;
    clearTimeout(t);
  }
}

const pct = (sorted, p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]);
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function runOnce(name, redis) {
  const peer = PEERS[name];
  const nodes = [0, 1, 2].map(() => new Child(peer.file, ['--redis', redis.url]));
  const ports = [];
  for (const n of nodes) ports.push((await n.event('listening')).port);
  const clients = new Child(`${ROOT}bench/peers/fanout-clients.mjs`, []);
  try {
    const t0 = Date.now();
    const opened = await clients.request('open', { ports, conns: CONNS, probes: PROBES, proto: peer.proto });
    const openS = (Date.now() - t0) / 1000;
    await sleep(1000); // subscriptions (Redis SUBSCRIBE on the nodes) settle
    // Warm-up burst, not measured.
    let done = clients.event('done', 60_000);
    await clients.request('expect', { count: CONNS * 10, latencySamples: 0, nodes: 3 });
    await nodes[0].request('publish', { topic: 'feed', binary: true, size: SIZE, count: 10 });
    await done;
    await sleep(300);
    // Throughput.
    done = clients.event('done', 60_000);
    await clients.request('expect', { count: CONNS * BURST, latencySamples: 0, nodes: 3 });
    await nodes[0].request('publish', { topic: 'feed', binary: true, size: SIZE, count: BURST });
    const r = await done;
    const seconds = Number(BigInt(r.lastRecv) - BigInt(r.firstSent)) / 1e9;
    const throughput = r.done ? (CONNS * BURST) / seconds : NaN;
    await sleep(300);
    // Latency: one message at a time.
    const perNode = Math.ceil(CONNS / 3) * PINGS;
    let latencyDone = true;
    for (let i = 0; i < PINGS; i++) {
      done = clients.event('done', 60_000);
      await clients.request('expect', { count: CONNS, latencySamples: perNode, nodes: 3, keep: i > 0 });
      await nodes[0].request('publish', { topic: 'feed', binary: true, size: SIZE, count: 1 });
      latencyDone &&= (await done).done;
      await sleep(5);
    }
    const lats = await clients.request('latencies');
    const local = lats[0].sort((a, b) => a - b);
    const remote = [...lats[1], ...lats[2]].sort((a, b) => a - b);
    const all = [...local, ...remote].sort((a, b) => a - b);
    // The Redis hop alone: one message at a time to the `probe` topic (PROBES subscribers per
    // node, the 10,000 idle meanwhile), so no subscriber queues behind thousands of others.
    for (let i = 0; i < PROBE_PINGS; i++) {
      done = clients.event('done', 10_000);
      await clients.request('expect', { count: PROBES * 3, latencySamples: PROBES * PROBE_PINGS, nodes: 3, keep: i > 0 });
      await nodes[0].request('publish', { topic: 'probe', binary: true, size: SIZE, count: 1 });
      latencyDone &&= (await done).done;
      await sleep(2);
    }
    const plats = await clients.request('latencies');
    const plocal = plats[0].sort((a, b) => a - b);
    const premote = [...plats[1], ...plats[2]].sort((a, b) => a - b);
    return {
      peer: name,
      opened,
      openS,
      burstDone: r.done,
      burstSeconds: seconds,
      deliveriesPerSec: throughput,
      latencyDone,
      localUs: { p50: pct(local, 50), p90: pct(local, 90), p99: pct(local, 99), n: local.length },
      remoteUs: { p50: pct(remote, 50), p90: pct(remote, 90), p99: pct(remote, 99), n: remote.length },
      fanoutUs: { p50: pct(all, 50), p90: pct(all, 90), p99: pct(all, 99), n: all.length },
      probeLocalUs: { p50: pct(plocal, 50), p90: pct(plocal, 90), p99: pct(plocal, 99), n: plocal.length },
      probeRemoteUs: { p50: pct(premote, 50), p90: pct(premote, 90), p99: pct(premote, 99), n: premote.length },
      hopUs: pct(premote, 50) - pct(plocal, 50),
      load: loadavg()[0],
    };
  } finally {
    await clients.close();
    await Promise.all(nodes.map((n) => n.close()));
  }
}

const redis = await startRedis();
// Stopped from outside (timeout, Ctrl-C): leave no redis-server or node behind.
const children = new Set();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    redis.proc.kill('SIGKILL');
    for (const c of children) c.proc.kill('SIGKILL');
    process.exit(130);
  });
}
const runs = [];
try {
  for (let rep = 0; rep < REPS; rep++) {
    for (const name of Object.keys(PEERS)) {
      const r = await runOnce(name, redis);
      runs.push(r);
      const ms = (u) => (u / 1000).toFixed(2);
      console.log(
        `${name.padEnd(9)} rep ${rep + 1}: ${r.opened} connections (open ${r.openS.toFixed(1)} s); burst ${BURST}x${SIZE} B: ${Math.round(r.deliveriesPerSec).toLocaleString('en-US')} deliveries/s${r.burstDone ? '' : ' (INCOMPLETE)'}; ` +
          `one message to ${CONNS}: p50/p90/p99 ${ms(r.fanoutUs.p50)}/${ms(r.fanoutUs.p90)}/${ms(r.fanoutUs.p99)} ms; ` +
          `probe local ${ms(r.probeLocalUs.p50)}/${ms(r.probeLocalUs.p99)} ms, remote ${ms(r.probeRemoteUs.p50)}/${ms(r.probeRemoteUs.p99)} ms (p50/p99): Redis hop +${ms(r.hopUs)} ms${r.latencyDone ? '' : ' (INCOMPLETE)'}; load ${r.load.toFixed(2)}`,
      );
    }
  }
} finally {
  redis.proc.kill('SIGTERM');
}

const byPeer = (name, f) => median(runs.filter((r) => r.peer === name).map(f));
const summary = {};
for (const name of Object.keys(PEERS)) {
  summary[name] = {
    deliveriesPerSec: byPeer(name, (r) => r.deliveriesPerSec),
    fanoutP50Ms: byPeer(name, (r) => r.fanoutUs.p50) / 1000,
    fanoutP99Ms: byPeer(name, (r) => r.fanoutUs.p99) / 1000,
    probeLocalP50Ms: byPeer(name, (r) => r.probeLocalUs.p50) / 1000,
    probeRemoteP50Ms: byPeer(name, (r) => r.probeRemoteUs.p50) / 1000,
    probeRemoteP99Ms: byPeer(name, (r) => r.probeRemoteUs.p99) / 1000,
    hopMs: byPeer(name, (r) => r.hopUs) / 1000,
  };
}
console.log('\n| peer | deliveries/s (median) | one message to all: p50 / p99 | probe local p50 | probe remote p50 / p99 | Redis hop (p50 remote − local) |');
console.log('|---|---|---|---|---|---|');
for (const [name, s] of Object.entries(summary)) {
  console.log(`| ${name} | ${Math.round(s.deliveriesPerSec).toLocaleString('en-US')} | ${s.fanoutP50Ms.toFixed(2)} / ${s.fanoutP99Ms.toFixed(2)} ms | ${s.probeLocalP50Ms.toFixed(2)} ms | ${s.probeRemoteP50Ms.toFixed(2)} / ${s.probeRemoteP99Ms.toFixed(2)} ms | ${s.hopMs.toFixed(2)} ms |`);
}
console.log(`\nwschan / socket.io deliveries/s: ${(summary.wschan.deliveriesPerSec / summary['socket.io'].deliveriesPerSec).toFixed(2)}x`);
mkdirSync(`${ROOT}bench/results`, { recursive: true });
const file = `${ROOT}bench/results/redis-fanout-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(file, JSON.stringify({ meta: { conns: CONNS, burst: BURST, size: SIZE, reps: REPS, pings: PINGS, probes: PROBES, probePings: PROBE_PINGS, cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version }, runs, summary }, null, 2));
console.log(`results: ${file.slice(ROOT.length)}`);
