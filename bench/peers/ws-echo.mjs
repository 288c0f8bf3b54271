// Peer: the `ws` package as Node users run it (no bufferutil / utf-8-validate installed).
//   node bench/peers/ws-echo.mjs --port P [--deflate] [--host 127.0.0.1]
// Echoes every message with its type; implements the `__burst:<count>:<size>` control message
// (see control.mjs and bench/README.md).

import { WebSocketServer } from 'ws';
import { burstJson, burstPayload, parseBurst, parseServerArgs } from './control.mjs';

const args = parseServerArgs(process.argv.slice(2));

const wss = new WebSocketServer({
  host: args.host,
  port: args.port,
  maxPayload: 64 * 1024 * 1024,
  // With --deflate: ws's own defaults (context takeover, threshold 1024 bytes, 10 zlib jobs at once).
  perMessageDeflate: args.deflate,
});

wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    // Control messages start with "__" (0x5f 0x5f); checking two bytes keeps the echo path cheap.
    if (!isBinary && data.length >= 8 && data[0] === 0x5f && data[1] === 0x5f) {
      const burst = parseBurst(data.toString('latin1'));
      if (burst !== null) {
        const [count, size, json] = burst;
        for (let k = 0; k < count; k++) {
          const payload = json ? burstJson(k, size) : burstPayload(k, size);
          for (const client of wss.clients) client.send(payload, { binary: !json });
        }
        return;
      }
    }
    ws.send(data, { binary: isBinary });
  });
});

wss.on('listening', () => {
  process.stdout.write(`ws ${args.deflate ? '(permessage-deflate) ' : ''}listening on ${args.host}:${args.port}\n`);
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
