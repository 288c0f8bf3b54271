// Peer for bench/http2.mjs: `ws` behind node:https (wss://, HTTP/1.1 upgrades only: ws has no
// HTTP/2). Echoes every message with its type.
//   node bench/peers/ws-echo-tls.mjs --port P --cert cert.pem --key key.pem [--host 127.0.0.1]
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { WebSocketServer } from 'ws';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const https = createServer({ cert: readFileSync(arg('cert')), key: readFileSync(arg('key')) });
const wss = new WebSocketServer({ server: https, maxPayload: 64 * 1024 * 1024 });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
https.listen(Number(arg('port', '0')), arg('host', '127.0.0.1'), () => {
  process.stdout.write(`ws (wss, HTTP/1.1) listening on ${https.address().port}\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
