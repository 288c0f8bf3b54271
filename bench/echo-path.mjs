#!/usr/bin/env node
// The small-message echo path of wschan in process, without sockets: a real Conn (server role) over
// an in-memory Duplex that discards what it writes, fed chunks of 2,000 pipelined masked 22-byte
// text frames (as one TCP read brings them under tcpkali), echoing each with conn.write. Prints ns
// per echoed message: parse, unmask, UTF-8 check, handleData, write, the batched flush.
//
//   node bench/echo-path.mjs [<root with dist/>] [--reps 300]
//
// On a shared machine the minimum and the 10th percentile of many short repetitions are the steady
// figures (a repetition is ~4 ms); compare builds by running this for each, alternately (issue 15
// in bench/RESULTS.md). Not a peer benchmark: for wschan against ws, Bun and the node:net floor
// see bench/run.mjs (echo-small, tcpkali-echo-small).
import { Duplex } from 'node:stream';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const repsAt = args.indexOf('--reps');
const REPS = repsAt >= 0 ? Number(args[repsAt + 1]) : 300;
const rootArg = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--reps');
const root = path.resolve(rootArg ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'));
const { defaultConnOptions, Conn } = await import(pathToFileURL(path.join(root, 'dist/src/conn/conn.js')).href);

const MESSAGE = Buffer.from('hello world!!13212312!'); // tcpkali's published test message
const FRAMES = 2000;
const CHUNKS = 10;
const KEY = [0x12, 0x34, 0x56, 0x78];
const frame = Buffer.alloc(6 + MESSAGE.length);
frame[0] = 0x81; // FIN, text
frame[1] = 0x80 | MESSAGE.length;
for (let i = 0; i < 4; i++) frame[2 + i] = KEY[i];
for (let i = 0; i < MESSAGE.length; i++) frame[6 + i] = MESSAGE[i] ^ KEY[i & 3];
const template = Buffer.concat(Array.from({ length: FRAMES }, () => frame));

let written = 0;
const socket = new Duplex({
  read() {},
  write(chunk, _enc, cb) {
    written += chunk.length;
    cb();
  },
});
const conn = new Conn({ socket, role: 'server', options: defaultConnOptions, handlers: { handleData: (c, data, isBinary) => c.write(data, isBinary) }, data: undefined });

const perMessage = [];
for (let rep = 0; rep < REPS; rep++) {
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < CHUNKS; k++) {
    const chunk = Buffer.allocUnsafe(template.length); // the parser unmasks in place: a fresh copy per read
    template.copy(chunk);
    socket.emit('data', chunk);
  }
  perMessage.push(Number(process.hrtime.bigint() - t0) / (CHUNKS * FRAMES));
}
const expected = REPS * CHUNKS * FRAMES * (2 + MESSAGE.length);
if (written !== expected) throw new Error(`echoed ${written} bytes, expected ${expected}`);
const s = perMessage.slice(Math.floor(REPS / 6)).sort((a, b) => a - b); // the first sixth warms up
const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))].toFixed(1);
console.log(`${path.relative(process.cwd(), root) || '.'}: min ${at(0)} p10 ${at(0.1)} median ${at(0.5)} ns per echoed message (${s.length} repetitions of ${CHUNKS * FRAMES})`);
conn.terminate();
