// Peer: Bun's native WebSocket server (Bun.serve), run by the bun binary from bench/node_modules.
//   bun bench/peers/bun-echo.ts --port P [--deflate [--compress-all]] [--host 127.0.0.1]
// Same behaviour as ws-echo.mjs: echo with the same type, and `__burst:<count>:<size>` sends
// <count> binary messages of <size> bytes to every client (sender included) through Bun's
// publish/subscribe (framed once by uWebSockets underneath). See bench/README.md.

import { burstJson, burstPayload, parseBurst, parseServerArgs } from './control.mjs';

const args = parseServerArgs(process.argv.slice(2));
const TOPIC = 'bench';

const server = Bun.serve({
  hostname: args.host,
  port: args.port,
  fetch(req, srv) {
    if (srv.upgrade(req)) return undefined;
    return new Response('wschan bench peer: WebSocket only\n', { status: 426, headers: { 'Sec-WebSocket-Version': '13' } });
  },
  websocket: {
    perMessageDeflate: args.deflate,
    maxPayloadLength: 64 * 1024 * 1024,
    idleTimeout: 960, // the longest Bun allows: idle connections must survive the RSS scenario
    backpressureLimit: 64 * 1024 * 1024,
    open(ws) {
      ws.subscribe(TOPIC);
    },
    message(ws, message) {
      if (typeof message === 'string' && message.charCodeAt(0) === 0x5f && message.startsWith('__')) {
        const burst = parseBurst(message);
        if (burst !== null) {
          const [count, size, json] = burst;
          // publish's third argument asks for compression (false by default; ignored where a
          // client did not negotiate permessage-deflate): the other peers compress every message.
          if (json) for (let k = 0; k < count; k++) server.publish(TOPIC, burstJson(k, size), args.deflate);
          else for (let k = 0; k < count; k++) server.publish(TOPIC, burstPayload(k, size));
          return;
        }
      }
      // Bun compresses an outgoing message only when send's second argument says so.
      ws.send(message, args.compressAll);
    },
  },
});

process.stdout.write(`bun ${Bun.version} ${args.deflate ? '(permessage-deflate) ' : ''}listening on ${args.host}:${server.port}\n`);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(0));
