// How the Redis client for src/scale/redis.ts was chosen: node-redis (`redis`) against `ioredis`,
// both publishing 64-byte Buffers (binary-safe) through one redis-server and receiving them as
// Buffers on a second connection: throughput of N pipelined publishes, and the round trip of
// one publish to its subscriber (median and p99 of L), 3 interleaved repetitions.
//   npm --prefix bench ci && flock <lock file> node bench/redis-clients.mjs
import { createClient } from 'redis';
import { Redis } from 'ioredis';
import { spawn } from 'node:child_process';
const port = 26000 + Math.floor(Math.random() * 1000);
const srv = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await new Promise(r => setTimeout(r, 300));
const payload = Buffer.alloc(64, 42);
const N = 50000, L = 2000;
async function nodeRedis() {
  const pub = createClient({ url: `redis://127.0.0.1:${port}` }); await pub.connect();
  const sub = pub.duplicate(); await sub.connect();
  let got = 0, resolve, t0;
  await sub.subscribe('c', (m) => { got++; if (typeof m === 'string') throw new Error('not buffer'); if (got === N) resolve(); if (lat) lat(); }, true);
  let lat;
  const done = new Promise(r => resolve = r);
  t0 = performance.now();
  for (let i = 0; i < N; i++) pub.publish('c', payload).catch(() => {});
  await done; const tput = N / ((performance.now() - t0) / 1000);
  const ls = [];
  for (let i = 0; i < L; i++) { const t = performance.now(); await new Promise(r => { lat = r; pub.publish('c', payload); }); ls.push(performance.now() - t); }
  lat = undefined;
  await pub.quit(); await sub.quit();
  return { tput, ls };
}
async function ioredis() {
  const pub = new Redis(port, '127.0.0.1'); const sub = new Redis(port, '127.0.0.1');
  await sub.subscribe('c');
  let got = 0, resolve, lat;
  sub.on('messageBuffer', (ch, m) => { got++; if (got === N) resolve(); if (lat) lat(); });
  const done = new Promise(r => resolve = r);
  const t0 = performance.now();
  for (let i = 0; i < N; i++) pub.publish('c', payload).catch(() => {});
  await done; const tput = N / ((performance.now() - t0) / 1000);
  const ls = [];
  for (let i = 0; i < L; i++) { const t = performance.now(); await new Promise(r => { lat = r; pub.publish('c', payload); }); ls.push(performance.now() - t); }
  lat = undefined;
  pub.disconnect(); sub.disconnect();
  return { tput, ls };
}
const med = a => { const s = [...a].sort((x,y)=>x-y); return [s[s.length>>1], s[Math.floor(s.length*0.99)]]; };
const res = { redis: [], ioredis: [] };
for (let rep = 0; rep < 3; rep++) for (const [n, f] of [['redis', nodeRedis], ['ioredis', ioredis]]) { const r = await f(); res[n].push(r); console.log(n, Math.round(r.tput), 'msg/s', 'p50/p99 ms', med(r.ls).map(x=>x.toFixed(3))); }
srv.kill();
