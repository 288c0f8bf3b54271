// Reference, not a peer library: the least work a node:net WebSocket echo server can do per
// connection, to show where Node itself puts the floor for the churn and idle-memory scenarios.
//   node bench/peers/node-floor.mjs --port P [--host 127.0.0.1]
//
// It answers the handshake (finds the key with indexOf, SHA-1, one write), then unmasks and echoes
// each frame with one write per read, and answers a Close frame by echoing it and ending the socket.
// It checks nothing a real server must check (no header validation, no UTF-8, no limits, no
// fragmentation rules, no deflate, no control messages), so it only runs in the scenarios where
// that does not matter (see `only` in bench/run.mjs). Whatever wschan costs above this line is the
// price of the library; what this costs is the price of node:net sockets.

import net from 'node:net';
import { createHash } from 'node:crypto';
import { parseServerArgs } from './control.mjs';

const args = parseServerArgs(process.argv.slice(2));
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const kOpen = Symbol('open');
const kRest = Symbol('rest');

function onData(chunk) {
  const s = this;
  let d = s[kRest] === undefined ? chunk : Buffer.concat([s[kRest], chunk]);
  s[kRest] = undefined;
  if (s[kOpen] !== true) {
    const head = d.toString('latin1');
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      s[kRest] = d;
      return;
    }
    const at = head.toLowerCase().indexOf('sec-websocket-key:');
    const key = at < 0 ? '' : head.slice(at + 18, head.indexOf('\r\n', at)).trim();
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    s[kOpen] = true;
    d = d.subarray(end + 4);
  }
  let i = 0;
  while (d.length - i >= 2) {
    const b0 = d[i];
    let len = d[i + 1] & 0x7f;
    let h = 2;
    if (len === 126) {
      if (d.length - i < 4) break;
      len = d.readUInt16BE(i + 2);
      h = 4;
    } else if (len === 127) {
      if (d.length - i < 10) break;
      len = Number(d.readBigUInt64BE(i + 2));
      h = 10;
    }
    if (d.length - i < h + 4 + len) break;
    const m = i + h;
    const p = m + 4;
    const out = Buffer.allocUnsafe(h + len);
    out[0] = b0;
    out[1] = h === 2 ? len : h === 4 ? 126 : 127;
    if (h === 4) out.writeUInt16BE(len, 2);
    else if (h === 10) out.writeBigUInt64BE(BigInt(len), 2);
    for (let j = 0; j < len; j++) out[h + j] = d[p + j] ^ d[m + (j & 3)];
    i = p + len;
    if ((b0 & 0x0f) === 8) {
      s.end(out);
      return;
    }
    s.write(out);
  }
  if (i < d.length) s[kRest] = d.subarray(i);
}

const server = net.createServer({ noDelay: true }, (s) => {
  s.on('data', onData);
  s.on('error', () => {});
});
server.listen(args.port, args.host, () => console.log(`node-floor listening on ${args.host}:${args.port}`));
process.on('SIGTERM', () => process.exit(0));
