// Reference, not a peer library: the least work a node:net WebSocket echo server can do per
// connection, to show where Node itself puts the floor for the churn, idle-memory and deflate
// scenarios.
//   node bench/peers/node-floor.mjs --port P [--host 127.0.0.1] [--deflate]
//
// With --deflate it accepts permessage-deflate with no context takeover either way (what Bun
// answers), inflates each compressed message and compresses the echo, each in ONE synchronous
// call on one zlib handle per direction for the whole process (zlib level 1, the handle's
// writeSync as wschan drives it), reset after every message: the least Node's zlib allows.
//
// It answers the handshake (finds the key with indexOf, SHA-1, one write), then unmasks and echoes
// each frame with one write per read, and answers a Close frame by echoing it and ending the socket.
// It checks nothing a real server must check (no header validation, no UTF-8, no limits, no
// fragmentation rules), so it only runs in the scenarios where
// that does not matter (see `only` in bench/run.mjs). Whatever wschan costs above this line is the
// price of the library; what this costs is the price of node:net sockets.
//
// The one control message it knows is the burst (bench/README.md, "Control protocol"), answered
// the cheapest way node:net allows: the <count> frames are built once, side by side in one buffer,
// and every open socket gets that buffer in one write (one write per socket per burst, where a
// library queues messages one by one).

import net from 'node:net';
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import { burstJson, burstPayload, parseBurst, parseServerArgs } from './control.mjs';

const args = parseServerArgs(process.argv.slice(2));
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const kOpen = Symbol('open');
const kRest = Symbol('rest');
const kDeflate = Symbol('deflate');
/** Sockets past the handshake: the burst goes to each. */
const open = new Set();

/** All frames of a burst in one buffer (unmasked server frames, RFC 6455 §5.2). */
function burstFrames(count, size, json) {
  const frames = [];
  for (let k = 0; k < count; k++) {
    const payload = json ? Buffer.from(burstJson(k, size)) : burstPayload(k, size);
    const h = size < 126 ? 2 : size < 65536 ? 4 : 10;
    const head = Buffer.alloc(h);
    head[0] = 0x80 | (json ? 0x1 : 0x2);
    if (h === 2) head[1] = size;
    else if (h === 4) {
      head[1] = 126;
      head.writeUInt16BE(size, 2);
    } else {
      head[1] = 127;
      head.writeBigUInt64BE(BigInt(size), 2);
    }
    frames.push(head, payload);
  }
  return Buffer.concat(frames);
}

// ---- permessage-deflate (RFC 7692) on two raw zlib handles, reset after every message --------
function rawHandle(stream) {
  return { stream, handle: stream._handle, state: stream._writeState };
}
const inflater = args.deflate ? rawHandle(zlib.createInflateRaw()) : undefined;
const deflater = args.deflate ? rawHandle(zlib.createDeflateRaw({ level: 1 })) : undefined;
let zin = Buffer.allocUnsafe(64 * 1024);
const zout = Buffer.allocUnsafe(256 * 1024);
/**
 * One writeSync of `len` bytes of `zin`; the output (a view of zout) or null when it did not fit.
 * Input may be left over when a message ended with a final block (§7.2.3.4; the load generator
 * sends such messages): the reset drops it.
 */
function run(z, len) {
  z.handle.writeSync(zlib.constants.Z_SYNC_FLUSH, zin, 0, len, zout, 0, zout.length);
  const out = zout.length - z.state[0];
  z.handle.reset();
  return z.state[0] === 0 ? null : zout.subarray(0, out);
}
/** The unmasked compressed payload at d[p, p + len) with mask at m: the echo's payload, compressed. */
function deflateEcho(d, m, p, len) {
  if (zin.length < len + 4) zin = Buffer.allocUnsafe(len + 4);
  for (let j = 0; j < len; j++) zin[j] = d[p + j] ^ d[m + (j & 3)];
  zin[len] = 0; zin[len + 1] = 0; zin[len + 2] = 0xff; zin[len + 3] = 0xff; // §7.2.2
  const plain = run(inflater, len + 4);
  if (plain === null) return null;
  if (zin.length < plain.length) zin = Buffer.allocUnsafe(plain.length);
  plain.copy(zin);
  const packed = run(deflater, plain.length);
  return packed === null ? null : packed.subarray(0, packed.length - 4); // §7.2.1: drop 00 00 ff ff
}

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
    s[kDeflate] = args.deflate && head.toLowerCase().includes('permessage-deflate');
    const ext = s[kDeflate] ? 'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n' : '';
    s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${ext}\r\n`);
    s[kOpen] = true;
    open.add(s);
    d = d.subarray(end + 4);
  }
  let i = 0;
  const outs = [];
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
    if (s[kDeflate] && (b0 & 0x40) !== 0) {
      const packed = deflateEcho(d, m, p, len);
      i = p + len;
      if (packed === null) {
        s.destroy();
        return;
      }
      const n = packed.length;
      const hh = n < 126 ? 2 : n < 65536 ? 4 : 10;
      const out = Buffer.allocUnsafe(hh + n);
      out[0] = b0;
      out[1] = hh === 2 ? n : hh === 4 ? 126 : 127;
      if (hh === 4) out.writeUInt16BE(n, 2);
      else if (hh === 10) out.writeBigUInt64BE(BigInt(n), 2);
      packed.copy(out, hh);
      outs.push(out);
      continue;
    }
    const out = Buffer.allocUnsafe(h + len);
    out[0] = b0;
    out[1] = h === 2 ? len : h === 4 ? 126 : 127;
    if (h === 4) out.writeUInt16BE(len, 2);
    else if (h === 10) out.writeBigUInt64BE(BigInt(len), 2);
    for (let j = 0; j < len; j++) out[h + j] = d[p + j] ^ d[m + (j & 3)];
    i = p + len;
    if ((b0 & 0x0f) === 8) {
      open.delete(s);
      outs.push(out);
      s.end(outs.length === 1 ? out : Buffer.concat(outs));
      return;
    }
    if ((b0 & 0x0f) === 1 && len >= 8 && out[h] === 0x5f && out[h + 1] === 0x5f) {
      const burst = parseBurst(out.toString('latin1', h));
      if (burst !== null) {
        const all = burstFrames(...burst);
        for (const c of open) c.write(all);
        continue;
      }
    }
    outs.push(out);
  }
  // One write per read (pipelined frames arrive several to a read).
  if (outs.length > 0) s.write(outs.length === 1 ? outs[0] : Buffer.concat(outs));
  if (i < d.length) s[kRest] = d.subarray(i);
}

const server = net.createServer({ noDelay: true }, (s) => {
  s.on('data', onData);
  s.on('error', () => {});
  s.on('close', () => open.delete(s));
});
server.listen(args.port, args.host, () => console.log(`node-floor listening on ${args.host}:${args.port}`));
process.on('SIGTERM', () => process.exit(0));
