// One load worker: owns a share of the connections and drives them on its own event loop.
//
// Cost model (why it can outrun the servers it measures):
// - sends: every frame is pre-encoded and pre-masked once; a batch of k frames is one
//   socket.write of a subarray of a repeated-frame Buffer;
// - receives: sockets read into one reusable buffer (net `onread`), and frames are counted by
//   scanning headers and skipping payloads: nothing is copied or allocated per message;
// - latency: one message in `sampleEvery` has its send time remembered in a per-connection ring;
//   echoes come back in order, so the k-th sampled echo matches the k-th sampled send.

import net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { Histogram } from './histogram.js';
import {
  Opcode,
  checkHandshakeResponse,
  deflateMessage,
  encodeClientFrame,
  handshakeRequest,
  headerLength,
  repeatFrame,
} from './frames.js';
import {
  COUNTERS,
  Counter,
  absoluteNow,
  type FromWorker,
  type ToWorker,
  type WorkerInit,
  type WorkerResult,
} from './protocol.js';

const init = workerData as WorkerInit;
const opts = init.opts;
const port = parentPort!;
const counters = new Float64Array(init.counters, init.index * COUNTERS * 8, COUNTERS);

const CONNECT_TIMEOUT_MS = 15_000;
const CLOSE_GRACE_MS = 1000;

const State = { Connecting: 0, Handshaking: 1, Open: 2, Closing: 3, Closed: 4 } as const;
type State = (typeof State)[keyof typeof State];

function post(msg: FromWorker): void {
  port.postMessage(msg);
}

// ---- pre-encoded frames ---------------------------------------------------------------------

const requestPlain = handshakeRequest(opts.host, opts.port, opts.path, opts.deflate);
const closeFrame = encodeClientFrame(Opcode.Close, Uint8Array.of(0x03, 0xe8)); // 1000
const dataOpcode = opts.binary ? Opcode.Binary : Opcode.Text;
let frameLen = 0;
let batch: Buffer = Buffer.alloc(0);
let single: Buffer = batch; // batch's first frame (conn-churn sends one at a time)
let deflateBits = -1; // window bits the batch was compressed for; -1 = uncompressed

function prepareBatch(deflateWindowBits: number): void {
  if (deflateWindowBits === deflateBits && frameLen > 0) return;
  const frame =
    deflateWindowBits < 0
      ? encodeClientFrame(dataOpcode, opts.message)
      : encodeClientFrame(dataOpcode, deflateMessage(opts.message, deflateWindowBits), true);
  frameLen = frame.length;
  batch = repeatFrame(frame, Math.max(1, opts.window));
  single = batch.subarray(0, frameLen);
  deflateBits = deflateWindowBits;
}
prepareBatch(-1);

// ---- totals ---------------------------------------------------------------------------------

let sentMsgs = 0;
let recvMsgs = 0;
let sentBytes = 0;
let recvBytes = 0;
let opened = 0;
let failed = 0;
let errors = 0;
let closedEarly = 0;
let deflateAccepted = 0;
/** Data messages that came compressed (RSV1 set on their first frame). */
let compressedMsgs = 0;
let openCount = 0;
let firstError = '';
const hist = new Histogram();

let running = false; // echo: sending allowed
let stopping = false;

function noteError(reason: string): void {
  errors++;
  if (firstError === '') firstError = reason;
}

// ---- one connection -------------------------------------------------------------------------

const readBuffer = Buffer.allocUnsafe(256 * 1024);
const ringSize = Math.ceil(opts.window / opts.sampleEvery) + 2;

class Client {
  socket: net.Socket | null = null;
  state: State = State.Connecting;
  startedAt = 0;
  handshake: Buffer | null = null;
  /** Payload bytes of the current frame still to skip. */
  skip = 0;
  /** The current frame completes a data message. */
  skipIsMsg = false;
  /** Partial frame header carried over from the previous chunk (made when first needed). */
  hdr: Buffer | null = null;
  hdrLen = 0;
  sent = 0;
  recv = 0;
  credit = 0;
  /** Messages this connection may send in total (conn-churn); Infinity otherwise. */
  limit = Infinity;
  burstDone = false;
  closingSince = 0;
  nextSample = 0;
  // Plain arrays: a typed array per connection costs more to make than conn-churn can afford.
  readonly ringIdx: number[] = new Array<number>(ringSize).fill(0);
  readonly ringAt: number[] = new Array<number>(ringSize).fill(0);
  ringHead = 0;
  ringLen = 0;

  open(): void {
    this.startedAt = performance.now();
    const socket = net.connect({
      host: opts.host,
      port: opts.port,
      noDelay: true,
      // The server closes TCP first (see onControl): on its FIN, close the socket at once instead
      // of Node's default of a shutdown() first, one syscall less per connection.
      allowHalfOpen: true,
      // One reusable buffer for every socket of this worker: reads are dispatched one at a time
      // and parse() is synchronous, so no chunk outlives its callback.
      onread: { buffer: readBuffer, callback: (n: number) => this.onRead(n, readBuffer) },
    });
    this.socket = socket;
    socket.on('connect', () => {
      this.state = State.Handshaking;
      socket.write(requestPlain);
    });
    socket.on('error', (err: Error) => {
      noteError(err.message);
    });
    socket.on('end', destroyOnEnd);
    socket.on('close', () => this.onClose());
  }

  onRead(n: number, buf: Buffer): boolean {
    recvBytes += n;
    if (this.state === State.Handshaking) this.onHandshakeData(buf.subarray(0, n));
    else if (this.state >= State.Open) this.parse(buf, 0, n);
    return true;
  }

  onHandshakeData(chunk: Buffer): void {
    // chunk is a view of the shared read buffer: copy it only when the response is incomplete.
    const all = this.handshake === null ? chunk : Buffer.concat([this.handshake, chunk]);
    const end = all.indexOf('\r\n\r\n', 0, 'latin1');
    if (end < 0) {
      if (all.length > 16 * 1024) this.fail('handshake response too large');
      else this.handshake = Buffer.from(all);
      return;
    }
    this.handshake = null;
    const res = checkHandshakeResponse(all.toString('latin1', 0, end));
    if (!res.ok) {
      this.fail(res.reason);
      return;
    }
    if (res.deflate) {
      deflateAccepted++;
      prepareBatch(res.clientWindowBits);
    }
    this.state = State.Open;
    onOpened(this);
    if (end + 4 < all.length) this.parse(all, end + 4, all.length);
  }

  fail(reason: string): void {
    noteError(reason);
    const wasOpening = this.state < State.Open;
    this.state = State.Closed;
    this.socket?.destroy();
    if (wasOpening) onOpenFailed(this);
  }

  /** Counts the data messages in buf[i, end) by scanning frame headers only. */
  parse(buf: Buffer, i: number, end: number): void {
    let msgs = 0;
    if (this.skip > 0) {
      const take = Math.min(this.skip, end - i);
      this.skip -= take;
      i += take;
      if (this.skip === 0 && this.skipIsMsg) msgs++;
    }
    if (this.hdrLen > 0 && i < end) {
      // Complete the carried-over header, then continue in the chunk.
      const hdr = this.hdr!;
      while (this.hdrLen < 2 && i < end) hdr[this.hdrLen++] = buf[i++]!;
      if (this.hdrLen >= 2) {
        const need = headerLength(hdr[1]!);
        while (this.hdrLen < need && i < end) hdr[this.hdrLen++] = buf[i++]!;
        if (this.hdrLen === need) {
          this.hdrLen = 0;
          const len = payloadLength(hdr, 0);
          const b0 = hdr[0]!;
          const op = b0 & 0x0f;
          const isMsg = (b0 & 0x80) !== 0 && op < 8;
          if ((b0 & 0x40) !== 0 && op < 8) compressedMsgs++;
          if (op >= 8) this.onControl(op, buf, i, end, len);
          const take = Math.min(len, end - i);
          i += take;
          this.skip = len - take;
          this.skipIsMsg = isMsg;
          if (this.skip === 0 && isMsg) msgs++;
        }
      }
    }
    while (i < end) {
      const avail = end - i;
      if (avail < 2) {
        this.hdr ??= Buffer.allocUnsafe(14);
        this.hdr[0] = buf[i]!;
        this.hdrLen = 1;
        break;
      }
      const b0 = buf[i]!;
      const b1 = buf[i + 1]!;
      const hl = headerLength(b1);
      if (avail < hl) {
        this.hdr ??= Buffer.allocUnsafe(14);
        buf.copy(this.hdr, 0, i, end);
        this.hdrLen = avail;
        break;
      }
      const len7 = b1 & 0x7f;
      const len = len7 < 126 ? len7 : payloadLength(buf, i);
      i += hl;
      const op = b0 & 0x0f;
      // RFC 7692 §6: RSV1 on the first frame of a compressed message (the burst checks it).
      if ((b0 & 0x40) !== 0 && op < 8) compressedMsgs++;
      if (op >= 8) {
        this.onControl(op, buf, i, end, len);
        if (this.state === State.Closed) return;
      }
      const left = end - i;
      if (len <= left) {
        i += len;
        if ((b0 & 0x80) !== 0 && op < 8) msgs++;
      } else {
        this.skip = len - left;
        this.skipIsMsg = (b0 & 0x80) !== 0 && op < 8;
        i = end;
      }
    }
    if (msgs > 0) this.onMessages(msgs);
  }

  onControl(op: number, buf: Buffer, i: number, end: number, len: number): void {
    if (op === Opcode.Ping) {
      // RFC 6455 §5.5.2: answer with a Pong carrying the same payload (when it is all here).
      if (this.state === State.Open && i + len <= end) {
        this.socket!.write(encodeClientFrame(Opcode.Pong, buf.subarray(i, i + len)));
      }
    } else if (op === Opcode.Close) {
      // Answer a server-initiated close; after our own close frame, just wait. Either way the
      // server closes TCP first (RFC 6455 §7.1.1), so TIME_WAIT stays on the server's side and
      // runs of 10,000 connections do not use up the client's ephemeral ports.
      if (this.state === State.Open) {
        if (!stopping && opts.mode !== 'conn-churn') closedEarly++;
        this.state = State.Closing;
        this.closingSince = performance.now();
        this.socket!.write(closeFrame);
      }
    }
  }

  onMessages(n: number): void {
    this.recv += n;
    recvMsgs += n;
    if (opts.mode === 'burst-subscribe') {
      if (!this.burstDone && this.recv >= opts.burstCount) {
        this.burstDone = true;
        onBurstDone();
      }
      return;
    }
    if (this.ringLen > 0) {
      const now = performance.now();
      while (this.ringLen > 0 && this.ringIdx[this.ringHead]! < this.recv) {
        hist.record((now - this.ringAt[this.ringHead]!) * 1000);
        this.ringHead = (this.ringHead + 1) % ringSize;
        this.ringLen--;
      }
    }
    if (opts.mode === 'conn-churn') {
      if (this.recv >= this.limit) this.close();
      else if (this.recv === this.sent) this.send(1);
      return;
    }
    if (running && opts.rate === 0 && this.state === State.Open) {
      const room = opts.window - (this.sent - this.recv);
      if (room * 2 >= opts.window) this.send(room);
    }
  }

  send(k: number): void {
    const from = this.sent;
    this.sent += k;
    sentMsgs += k;
    const bytes = k * frameLen;
    sentBytes += bytes;
    if (this.nextSample < this.sent) {
      const now = performance.now();
      while (this.nextSample < this.sent) {
        if (this.nextSample >= from && this.ringLen < ringSize) {
          const at = (this.ringHead + this.ringLen) % ringSize;
          this.ringIdx[at] = this.nextSample;
          this.ringAt[at] = now;
          this.ringLen++;
        }
        this.nextSample += opts.sampleEvery;
      }
    }
    this.socket!.write(k === 1 ? single : k === opts.window ? batch : batch.subarray(0, bytes));
  }

  close(): void {
    if (this.state !== State.Open) {
      if (this.state < State.Open) this.socket?.destroy();
      return;
    }
    this.state = State.Closing;
    // No end(): the server answers the close frame and closes TCP first (see onControl).
    this.socket!.write(closeFrame);
    this.closingSince = performance.now(); // the watchdog destroys it after CLOSE_GRACE_MS
  }

  onClose(): void {
    const prev = this.state;
    this.state = State.Closed;
    clients.delete(this);
    if (prev < State.Open) {
      if (firstError === '') firstError = 'connection closed during the handshake';
      onOpenFailed(this);
      return;
    }
    openCount--;
    if (prev === State.Open && !stopping && opts.mode !== 'conn-churn') closedEarly++;
    onConnClosed(this);
  }
}

function destroyOnEnd(this: net.Socket): void {
  this.destroy();
}

function payloadLength(b: Buffer, i: number): number {
  const len7 = b[i + 1]! & 0x7f;
  if (len7 < 126) return len7;
  if (len7 === 126) return (b[i + 2]! << 8) | b[i + 3]!;
  return b.readUInt32BE(i + 2) * 2 ** 32 + b.readUInt32BE(i + 6);
}

// ---- the connection pool --------------------------------------------------------------------

// Connections not yet closed (a closed one leaves, so conn-churn does not keep 10,000 of them).
const clients = new Set<Client>();
let nextToOpen = 0;
let inFlight = 0; // opening (echo/burst/idle) or alive (conn-churn)
let openPhaseDone = false;
let openStartedAt = 0;
let openMs = 0;
let churnStartAt = 0;
let churnDoneAt = 0;
let churnCompleted = 0;
let burstComplete = 0;
let burstDoneAt = 0;

function pump(): void {
  while (!stopping && inFlight < opts.concurrency && nextToOpen < init.conns) {
    const c = new Client();
    if (opts.mode === 'conn-churn') c.limit = opts.churnMessages;
    clients.add(c);
    nextToOpen++;
    inFlight++;
    c.open();
  }
  checkOpenPhase();
}

function checkOpenPhase(): void {
  if (openPhaseDone || opened + failed < init.conns) return;
  openPhaseDone = true;
  openMs = performance.now() - openStartedAt;
  post({ type: 'opened', opened, failed, at: absoluteNow(), firstError });
}

function onOpened(c: Client): void {
  opened++;
  openCount++;
  if (opts.mode === 'conn-churn') {
    c.send(1);
    return;
  }
  inFlight--;
  if (running && opts.rate === 0) c.send(opts.window);
  pump();
}

function onOpenFailed(_c: Client): void {
  failed++;
  inFlight--;
  if (opts.mode === 'conn-churn') churnFinished();
  pump();
}

function onConnClosed(c: Client): void {
  if (opts.mode !== 'conn-churn') return;
  if (c.recv >= c.limit) churnCompleted++;
  inFlight--;
  churnFinished();
  pump();
}

function churnFinished(): void {
  if (opened + failed === init.conns && inFlight === 0 && churnDoneAt === 0) {
    churnDoneAt = absoluteNow();
    post({ type: 'churn-done', at: churnDoneAt });
  }
}

function onBurstDone(): void {
  burstComplete++;
  if (burstComplete === init.conns) {
    burstDoneAt = absoluteNow();
    post({ type: 'burst-done', at: burstDoneAt });
  }
}

// ---- timers (all cleared on stop) -----------------------------------------------------------

function flushCounters(): void {
  counters[Counter.SentMsgs] = sentMsgs;
  counters[Counter.RecvMsgs] = recvMsgs;
  counters[Counter.SentBytes] = sentBytes;
  counters[Counter.RecvBytes] = recvBytes;
  counters[Counter.Open] = openCount;
  counters[Counter.Errors] = errors;
  counters[Counter.Done] = opts.mode === 'conn-churn' ? churnCompleted : burstComplete;
}
const flushTimer = setInterval(flushCounters, 200);

const watchdog = setInterval(() => {
  const now = performance.now();
  for (const c of clients) {
    if (c.state < State.Open && now - c.startedAt > CONNECT_TIMEOUT_MS) c.fail('connect/handshake timeout');
    else if (c.state === State.Closing && c.closingSince > 0 && now - c.closingSince > CLOSE_GRACE_MS) c.socket?.destroy();
  }
}, 250);

let rateTimer: NodeJS.Timeout | undefined;
function startRate(): void {
  let last = performance.now();
  rateTimer = setInterval(() => {
    const now = performance.now();
    const dt = (now - last) / 1000;
    last = now;
    for (const c of clients) {
      if (c.state !== State.Open) continue;
      c.credit += opts.rate * dt;
      const room = opts.window - (c.sent - c.recv);
      const n = Math.min(Math.floor(c.credit), room);
      if (n > 0) {
        c.send(n);
        c.credit -= n;
      }
      if (c.credit > opts.window) c.credit = opts.window;
    }
  }, 5);
}

// ---- control from the main thread -----------------------------------------------------------

let goAt = 0;
let stopAt = 0;
let base = { sentMsgs: 0, recvMsgs: 0, sentBytes: 0, recvBytes: 0 };
let snapshot = base;

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'go') onGo();
  else if (msg.type === 'start') onStart();
  else if (msg.type === 'trigger') onTrigger();
  else if (msg.type === 'stop') void onStop();
});

function onGo(): void {
  openStartedAt = performance.now();
  if (opts.mode === 'conn-churn') churnStartAt = absoluteNow();
  pump();
}

/** echo: every connection is open (or failed); the measured window begins now. */
function onStart(): void {
  goAt = performance.now();
  base = { sentMsgs, recvMsgs, sentBytes, recvBytes };
  running = true;
  if (opts.rate > 0) startRate();
  else for (const c of clients) if (c.state === State.Open) c.send(opts.window);
}

function onTrigger(): void {
  let c: Client | undefined;
  for (const x of clients) {
    if (x.state === State.Open) {
      c = x;
      break;
    }
  }
  if (c === undefined) {
    post({ type: 'fatal', error: 'no open connection to send the burst trigger on' });
    return;
  }
  const trigger = encodeClientFrame(Opcode.Text, Buffer.from(`__burst:${opts.burstCount}:${opts.burstSize}${opts.burstJson ? ':json' : ''}`));
  const at = absoluteNow();
  c.socket!.write(trigger);
  post({ type: 'triggered', at });
}

function someClient(test: (c: Client) => boolean): boolean {
  for (const c of clients) if (test(c)) return true;
  return false;
}

async function onStop(): Promise<void> {
  if (stopping) return;
  stopAt = performance.now();
  snapshot = { sentMsgs, recvMsgs, sentBytes, recvBytes };
  running = false;
  stopping = true;
  if (rateTimer !== undefined) clearInterval(rateTimer);
  // Drain: wait (bounded) for the echoes of what was sent.
  const drainUntil = performance.now() + opts.drainMs;
  while (performance.now() < drainUntil && someClient((c) => c.state === State.Open && c.recv < c.sent)) {
    await sleep(20);
  }
  for (const c of clients) c.close();
  const closeUntil = performance.now() + CLOSE_GRACE_MS;
  while (performance.now() < closeUntil && someClient((c) => c.state !== State.Closed)) await sleep(20);
  for (const c of clients) if (c.state !== State.Closed) c.socket?.destroy();
  clearInterval(flushTimer);
  clearInterval(watchdog);
  flushCounters();
  const result: WorkerResult = {
    sentMsgs,
    recvMsgs,
    sentBytes,
    recvBytes,
    windowMs: goAt > 0 ? stopAt - goAt : 0,
    windowSentMsgs: snapshot.sentMsgs - base.sentMsgs,
    windowRecvMsgs: snapshot.recvMsgs - base.recvMsgs,
    windowSentBytes: snapshot.sentBytes - base.sentBytes,
    windowRecvBytes: snapshot.recvBytes - base.recvBytes,
    opened,
    failed,
    errors,
    closedEarly,
    deflateAccepted,
    compressedMsgs,
    openMs,
    hist: hist.counts,
    firstError,
    burstDoneAt,
    burstComplete,
    churnStartAt,
    churnDoneAt,
    churnCompleted,
  };
  port.postMessage({ type: 'result', result } satisfies FromWorker, [hist.counts.buffer as ArrayBuffer]);
  port.close();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

post({ type: 'ready' });
