// The per-subscriber cost of a publish, in process: `server.publishTo(conns, 64 B)` over 1,000
// open server connections whose sockets are real loopback TCP, timed synchronously (enqueueing
// only: the writes happen after the loop, when the event loop turns). An A/B tool for changes on
// that path (Conn's broadcast internals): run it against two builds, interleaved, under the bench
// lock:  node bench/publish-micro.mjs [path/to/dist/src/index.js] [--rounds N]
// Prints one JSON line: ns per subscriber per publish, median and min-max of the rounds.
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const args = process.argv.slice(2);
const roundsAt = args.indexOf('--rounds');
const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 15;
const entry = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--rounds') ?? 'dist/src/index.js';
const { Server, connect } = await import(pathToFileURL(resolve(entry)).href);

const N = 1000;
const PUBLISHES = 100;
const server = new Server({ maxQueuedFrames: 4096, maxQueuedBytes: 64 << 20 });
const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
const clients = [];
for (let i = 0; i < N; i++) clients.push(await connect(`ws://127.0.0.1:${port}/`, { handleData: () => {} }));
while (server.clientCount < N) await new Promise((r) => setTimeout(r, 10));
const conns = [...server.connections];
const payload = Buffer.alloc(64, 0x61);

const results = [];
for (let r = 0; r < rounds + 2; r++) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < PUBLISHES; i++) server.publishTo(conns, payload);
  const ns = Number(process.hrtime.bigint() - t0) / (PUBLISHES * N);
  if (r >= 2) results.push(ns); // two warm-up rounds
  // Let the writers empty the outboxes before the next round.
  while (conns.some((c) => c.queuedFrames > 0)) await new Promise((r) => setTimeout(r, 5));
}
results.sort((a, b) => a - b);
const med = results[Math.floor(results.length / 2)];
console.log(JSON.stringify({ entry, subscribers: N, publishes: PUBLISHES, rounds, nsPerSubscriber: { median: +med.toFixed(1), min: +results[0].toFixed(1), max: +results.at(-1).toFixed(1) } }));
for (const c of clients) c.terminate();
await server.close();
