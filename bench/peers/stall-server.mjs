// The server side of bench/deflate-stall.mjs: an echo server with permessage-deflate that
// measures its own event-loop delay (perf_hooks.monitorEventLoopDelay, 1 ms resolution).
//   node bench/peers/stall-server.mjs wschan <dist dir> | ws
// Run with an IPC channel (fork): it sends {port} when listening; on 'reset' it clears the
// histogram; on 'report' it answers with its percentiles (ms).

import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [kind, dist] = process.argv.slice(2);
const MAX = 64 * 1024 * 1024;
const h = monitorEventLoopDelay({ resolution: 1 });
let port;
/** Event-loop utilization since the last reset (the share of the time the loop was not idle). */
let elu = performance.eventLoopUtilization();

if (kind === 'wschan') {
  const { Server } = await import(pathToFileURL(join(resolve(dist), 'src/index.js')).href);
  // The library's defaults (threshold 1024 B, level 1, context takeover), as a user gets them.
  const server = new Server({ deflate: true, maxMessageSize: MAX });
  server.handleData((conn, data, isBinary) => conn.write(data, isBinary));
  port = (await server.listen({ port: 0, host: '127.0.0.1' })).port;
} else if (kind === 'ws') {
  const { WebSocketServer } = await import('ws');
  // ws's defaults (context takeover, threshold 1024 B, level Z_DEFAULT_COMPRESSION, 10 zlib jobs at once, on the thread pool).
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: MAX, perMessageDeflate: true });
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise((r) => wss.on('listening', r));
  port = wss.address().port;
} else {
  console.error(`unknown server kind ${kind}`);
  process.exit(2);
}

const ms = (ns) => Math.round(ns / 1e4) / 100;
process.on('message', (m) => {
  if (m === 'reset') {
    h.reset();
    elu = performance.eventLoopUtilization();
    process.send('reset');
  } else if (m === 'report') {
    process.send({ p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), p999: ms(h.percentile(99.9)), max: ms(h.max), mean: ms(h.mean), samples: h.count, elu: Math.round(performance.eventLoopUtilization(elu).utilization * 100) / 100 });
  }
});
h.enable();
process.send({ port });
process.on('disconnect', () => process.exit(0));
// A normal exit on SIGTERM, so that a server run with --cpu-prof writes its profile.
process.on('SIGTERM', () => process.exit(0));
