// Where the thread pool starts to win over one synchronous call, per message size (issue 15):
// the same permessage-deflate codec (wschan's build in dist/) compresses and inflates messages
// of each size either in one call on the event loop (threadPoolThreshold: Infinity) or on
// libuv's thread pool (threadPoolThreshold: 0). For each, the event loop's busy time per
// message (performance.eventLoopUtilization: the cost every other connection waits for) and the
// wall time per message (one at a time: the message's own latency). ws's path is the thread
// pool's (zlib.deflateRaw-like streams), so the pool rows are also what ws pays. Bounded: a fixed
// number of messages per size.
//
//   node bench/deflate-crossover.mjs [--dist dist] [--sizes 4,16,64,128,256,1024]   (KiB)

import { performance } from 'node:perf_hooks';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import os from 'node:os';
import { compressible } from './compressible.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const dist = resolve(opt('dist', join(import.meta.dirname ?? '.', '..', 'dist')));
const sizes = opt('sizes', '4,16,32,64,128,256,1024').split(',').map((k) => Number(k) * 1024);
const { PerMessageDeflate, defaultDeflateOptions } = await import(pathToFileURL(join(dist, 'src/protocol/permessage-deflate.js')).href);
const { runCodecJob } = await import(pathToFileURL(join(dist, 'src/conn/codec-scheduler.js')).href);

const params = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };

const run = (x) => (Buffer.isBuffer(x) || x instanceof Error ? Promise.resolve(x) : new Promise((r) => runCodecJob(x, r)));

/** Per message: loop busy µs and wall µs, compress + inflate of a round trip through two codecs. */
async function measure(size, threshold) {
  const opts = { ...defaultDeflateOptions, mode: 'dedicated', threadPoolThreshold: threshold };
  const server = new PerMessageDeflate('server', params, opts);
  const client = new PerMessageDeflate('client', params, opts);
  const msgs = [0, 1, 2, 3].map((i) => compressible(size, i));
  const n = Math.max(8, Math.min(400, Math.round((64 * 1024 * 1024) / size / 4)));
  for (let i = 0; i < 4; i++) await run(client.startInflate(await run(server.startCompress(msgs[i])), true, 1 << 30)); // warm up
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const packed = await run(server.startCompress(msgs[i % 4]));
    const plain = await run(client.startInflate(packed, true, 1 << 30));
    if (plain.length !== size) throw new Error(`size ${plain.length} != ${size}`);
  }
  const wall = performance.now() - t0;
  const elu = performance.eventLoopUtilization(elu0);
  server.close();
  client.close();
  return { busyUs: (elu.active * 1000) / n, wallUs: (wall * 1000) / n, n };
}

console.log(`node ${process.version}, ${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(2)}`);
console.log('| size (KiB) | sync: loop busy = wall (µs) | pool: loop busy (µs) | pool: wall (µs) | busy sync/pool | wall pool/sync |');
console.log('|---|---|---|---|---|---|');
for (const size of sizes) {
  const reps = [];
  for (let r = 0; r < 3; r++) reps.push([await measure(size, Infinity), await measure(size, 0)]);
  const med = (f) => reps.map(f).sort((a, b) => a - b)[1];
  const sBusy = med(([s]) => s.busyUs);
  const sWall = med(([s]) => s.wallUs);
  const pBusy = med(([, p]) => p.busyUs);
  const pWall = med(([, p]) => p.wallUs);
  console.log(`| ${size / 1024} | ${Math.round(sBusy)} / ${Math.round(sWall)} | ${Math.round(pBusy)} | ${Math.round(pWall)} | ${(sBusy / pBusy).toFixed(2)} | ${(pWall / sWall).toFixed(2)} |`);
}
