// The subscribers of the Redis fan-out benchmark (bench/redis-fanout.mjs): N raw WebSocket
// connections spread round-robin over the nodes' ports, in one process, driven over IPC.
// Raw sockets and a header-only frame parser keep the client's cost per message low and the same
// for both peers (a full client library would cap the measurement at its own speed).
//
// proto 'wschan': GET /?topics=feed (or probe); ready on the 101.
// proto 'socketio': GET /socket.io/?EIO=4&transport=websocket&room=feed (or probe); engine.io open packet '0{...}' ->
// send '40' (connect to namespace /), ready on '40{...}'; answer engine.io pings '2' with '3'.
// socket.io sends a binary event as a text frame (451-[...placeholder...]) and then the bytes.
//
// Every binary message of 12+ bytes carries a 32-bit index and a 64-bit process.hrtime.bigint()
// send time (CLOCK_MONOTONIC, comparable across processes on one Linux machine).
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';

const MASK = Buffer.from([0, 0, 0, 0]);
const textFrame = (s) => {
  const p = Buffer.from(s);
  return Buffer.concat([Buffer.from([0x81, 0x80 | p.length]), MASK, p]); // payload < 126 bytes, zero mask
};
const PONG_EMPTY = Buffer.from([0x8a, 0x80, 0, 0, 0, 0]);
const SIO_CONNECT = textFrame('40');
const SIO_PONG = textFrame('3');

let proto = 'wschan';
const socks = [];
let ready = 0;
// Measurement state
let expected = 0;
let got = 0;
let lastRecv = 0n;
let firstSent = -1n;
let lat = []; // per node: Float64Array of latencies (µs)
let latN = [];
let onDone;

function record(node, payload, off) {
  const now = process.hrtime.bigint();
  const seq = payload.readUInt32BE(off);
  const sent = payload.readBigUInt64BE(off + 4);
  if (seq === 0 && (firstSent < 0n || sent < firstSent)) firstSent = sent;
  const arr = lat[node];
  if (arr !== undefined && latN[node] < arr.length) arr[latN[node]++] = Number(now - sent) / 1000;
  lastRecv = now;
  if (++got === expected && onDone) onDone();
}

function open(port, node, path) {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.setNoDelay(true);
    const st = { s, node, buf: null, upgraded: false, ready: false };
    s.on('connect', () => {
      s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error('closed during setup')));
    s.on('data', (chunk) => {
      let b = st.buf === null ? chunk : Buffer.concat([st.buf, chunk]);
      st.buf = null;
      if (!st.upgraded) {
        const end = b.indexOf('\r\n\r\n');
        if (end < 0) return void (st.buf = b);
        const head = b.toString('latin1', 0, end);
        if (!head.startsWith('HTTP/1.1 101')) return reject(new Error(`handshake refused: ${head.split('\r\n')[0]}`));
        st.upgraded = true;
        b = b.subarray(end + 4);
        if (proto === 'wschan') {
          st.ready = true;
          resolve(st);
        }
      }
      let o = 0;
      while (b.length - o >= 2) {
        const b0 = b[o];
        const b1 = b[o + 1] & 0x7f;
        let len = b1;
        let h = 2;
        if (b1 === 126) {
          if (b.length - o < 4) break;
          len = b.readUInt16BE(o + 2);
          h = 4;
        } else if (b1 === 127) {
          if (b.length - o < 10) break;
          len = Number(b.readBigUInt64BE(o + 2));
          h = 10;
        }
        if (b.length - o < h + len) break;
        const op = b0 & 0x0f;
        const p = o + h;
        if (op === 2) {
          if (len >= 12) record(node, b, p);
        } else if (op === 1 && proto === 'socketio') {
          const c0 = b[p];
          if (c0 === 0x30 /* '0' */) s.write(SIO_CONNECT);
          else if (c0 === 0x32 /* '2' */ && len === 1) s.write(SIO_PONG);
          else if (c0 === 0x34 && b[p + 1] === 0x30 && !st.ready) {
            st.ready = true;
            resolve(st);
          }
        } else if (op === 9) s.write(PONG_EMPTY);
        o = p + len;
      }
      if (o < b.length) st.buf = b.subarray(o);
    });
  });
}

async function openAll({ ports, conns, probes, proto: p }) {
  proto = p;
  const path = (topic) => (proto === 'wschan' ? `/?topics=${topic}` : `/socket.io/?EIO=4&transport=websocket&room=${topic}`);
  // The probes: `probes` extra connections per node on the topic `probe`, for the Redis hop alone.
  const total = conns + probes * ports.length;
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const node = i % ports.length;
      const st = await open(ports[node], node, path(i < conns ? 'feed' : 'probe'));
      st.s.removeAllListeners('close');
      st.s.removeAllListeners('error');
      st.s.on('error', () => {});
      socks.push(st);
      ready++;
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  return ready;
}

function expect({ count, latencySamples, nodes, keep }) {
  expected = count;
  got = 0;
  firstSent = -1n;
  lastRecv = 0n;
  if (!keep) {
    lat = Array.from({ length: nodes }, () => new Float64Array(latencySamples));
    latN = Array.from({ length: nodes }, () => 0);
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ done: false, got }), 60_000);
    onDone = () => {
      clearTimeout(timer);
      onDone = undefined;
      resolve({ done: true, got });
    };
  });
}

function latencies() {
  return lat.map((a, i) => Array.from(a.subarray(0, latN[i])));
}

process.on('message', async (m) => {
  try {
    let value;
    if (m.cmd === 'open') value = await openAll(m);
    else if (m.cmd === 'expect') {
      const wait = expect(m);
      process.send({ id: m.id, ok: true, value: 'armed' });
      const r = await wait;
      process.send({ event: 'done', ...r, firstSent: firstSent.toString(), lastRecv: lastRecv.toString() });
      return;
    } else if (m.cmd === 'latencies') value = latencies();
    else if (m.cmd === 'close') {
      for (const st of socks) st.s.destroy();
      value = socks.length;
    }
    process.send({ id: m.id, ok: true, value });
    if (m.cmd === 'close') process.disconnect();
  } catch (e) {
    process.send({ id: m.id, ok: false, value: String(e?.message ?? e) });
  }
});
