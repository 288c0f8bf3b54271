// The churn scenario's client, run by Bun: N connections, K at a time; each opens, completes the
// WebSocket handshake, sends M small text messages one after the other (each after the echo of the
// one before), then the close handshake, and leaves the TCP close to the server (RFC 6455 §7.1.1).
//
//   bun bench/peers/churn-client-bun.ts --port P [--host 127.0.0.1] [-c 10000] [--messages 10]
//       [--concurrency 256] [-T 120s] [-m TEXT]
//
// Why a second client: the project's load generator (stress-tests/loadgen, Node) spends ~0.45 ms
// of CPU per connection in this scenario, which caps it at ~0.7× ws's time whatever the server
// (see bench/RESULTS.md, "Connection churn"). Bun's sockets cost less per connection, so with this
// client the servers, not the client, set the time. It does what the Node generator's conn-churn
// mode does, byte for byte on the wire (it builds them with the same functions), and prints
// one JSON line in the same shape (`churn.totalMs`, `churn.complete`, `opened`, `failed`).

import { Opcode, checkHandshakeResponse, encodeClientFrame, handshakeRequest, headerLength } from '../../stress-tests/loadgen/frames.ts';

const argv = process.argv.slice(2);
function arg(names: string[], fallback: string): string {
  for (const n of names) {
    const i = argv.indexOf(n);
    if (i >= 0 && i + 1 < argv.length) return argv[i + 1]!;
  }
  return fallback;
}
function duration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (m === null) throw new Error(`bad duration: ${s}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

const host = arg(['--host'], '127.0.0.1');
const port = Number(arg(['--port'], '0'));
const conns = Number(arg(['-c', '--connections'], '10000'));
const messages = Number(arg(['--messages'], '10'));
const concurrency = Number(arg(['--concurrency'], '256'));
const limitMs = duration(arg(['-T', '--duration'], '120s'));
const text = arg(['-m', '--message'], 'hello world!!13212312!');
if (!Number.isInteger(port) || port <= 0) throw new Error('--port P is required');

// ---- what goes on the wire: the load generator's own request and frames -----------------

if (Buffer.byteLength(text) > 125) throw new Error('messages over 125 bytes are not supported here');
const request = handshakeRequest(host, port, '/', false);
const dataFrame = encodeClientFrame(Opcode.Text, Buffer.from(text));
const closeFrame = encodeClientFrame(Opcode.Close, Uint8Array.of(0x03, 0xe8)); // 1000

// ---- connections ---------------------------------------------------------------------------

const HANDSHAKING = 0;
const OPEN = 1;
const CLOSING = 2;
const DONE = 3;

interface State {
  phase: number;
  head: string;
  recv: number;
  /** Payload bytes of the current server frame still to skip. */
  skip: number;
  skipIsMsg: boolean;
  /** Partial frame header carried over between reads. */
  hdr: number[];
}

let started = 0;
let opened = 0;
let failed = 0;
let completed = 0;
let finished = 0;
let firstError = '';
const t0 = performance.now();
let doneAt = 0;

function fail(reason: string): void {
  if (firstError === '') firstError = reason;
}

/** Counts whole data messages in bytes; answers nothing (the server does not ping here). */
function scan(st: State, b: Uint8Array, i: number): number {
  let msgs = 0;
  const end = b.length;
  while (i < end) {
    if (st.skip > 0) {
      const take = Math.min(st.skip, end - i);
      st.skip -= take;
      i += take;
      if (st.skip === 0 && st.skipIsMsg) msgs++;
      continue;
    }
    // Assemble a header (possibly split across reads).
    const hdr = st.hdr;
    while (hdr.length < 2 && i < end) hdr.push(b[i++]!);
    if (hdr.length < 2) break;
    const need = headerLength(hdr[1]!);
    while (hdr.length < need && i < end) hdr.push(b[i++]!);
    if (hdr.length < need) break;
    const len7 = hdr[1]! & 0x7f;
    const len = len7 < 126 ? len7 : len7 === 126 ? (hdr[2]! << 8) | hdr[3]! : Number.MAX_SAFE_INTEGER;
    const op = hdr[0]! & 0x0f;
    const isMsg = (hdr[0]! & 0x80) !== 0 && op < 8;
    if (op === 0x8) st.phase = CLOSING; // the server's Close (an answer to ours)
    hdr.length = 0;
    if (len === 0) {
      if (isMsg) msgs++;
      continue;
    }
    st.skip = len;
    st.skipIsMsg = isMsg;
  }
  return msgs;
}

function finish(st: State): void {
  if (st.phase === DONE) return;
  if (st.phase === HANDSHAKING) failed++;
  else if (st.recv >= messages) completed++;
  st.phase = DONE;
  finished++;
  if (finished === conns) {
    doneAt = performance.now();
    report();
  } else {
    pump();
  }
}

function open(): void {
  const st: State = { phase: HANDSHAKING, head: '', recv: 0, skip: 0, skipIsMsg: false, hdr: [] };
  Bun.connect<State>({
    hostname: host,
    port,
    data: st,
    socket: {
      open(sock) {
        sock.setNoDelay?.(true);
        sock.write(request);
      },
      data(sock, data) {
        const s = sock.data;
        let from = 0;
        if (s.phase === HANDSHAKING) {
          s.head += data.toString('latin1');
          const end = s.head.indexOf('\r\n\r\n');
          if (end < 0) {
            if (s.head.length > 16 * 1024) {
              fail('handshake response too large');
              sock.terminate();
            }
            return;
          }
          const checked = checkHandshakeResponse(s.head.slice(0, end));
          if (!checked.ok) {
            fail(checked.reason);
            sock.terminate();
            return;
          }
          s.phase = OPEN;
          opened++;
          from = data.length - (s.head.length - (end + 4));
          s.head = '';
          sock.write(dataFrame);
        }
        const n = scan(s, data, from);
        if (n === 0 || s.phase !== OPEN) return;
        s.recv += n;
        if (s.recv >= messages) {
          s.phase = CLOSING;
          sock.write(closeFrame);
        } else {
          sock.write(dataFrame);
        }
      },
      end(sock) {
        // The server closed its side (after the close handshake): close ours.
        sock.end();
      },
      close(sock) {
        finish(sock.data);
      },
      error(_sock, err) {
        fail(err.message);
      },
    },
  }).catch((err: Error) => {
    fail(err.message);
    finish(st);
  });
}

function pump(): void {
  while (started < conns && started - finished < concurrency) {
    started++;
    open();
  }
}

function report(): void {
  const totalMs = (doneAt || performance.now()) - t0;
  const complete = completed === conns;
  console.log(
    JSON.stringify({
      tool: 'wschan-bun-churn',
      mode: 'conn-churn',
      target: `${host}:${port}`,
      conns,
      opened,
      failed,
      errors: firstError === '' ? 0 : 1,
      firstError,
      churn: { complete, totalMs, messagesPerConn: messages, completed },
    }),
  );
  process.exit(complete ? 0 : 1);
}

setTimeout(() => {
  fail(`not done within ${limitMs} ms`);
  report();
}, limitMs).unref?.();
pump();
