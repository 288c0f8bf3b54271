/**
 * Slow consumers (issue 5): 1,000 subscribers of a topic, of which 100 never read.
 *
 *   npm run stress:slow -- [--policy drop-oldest|conflate|close] [--seconds 30] [--rate 500]
 *                          [--subscribers 1000] [--slow 100] [--size 64] [--budget 65536] [--keys 64]
 *                          [--warmup 10]
 *
 * The server (this process) publishes `--size`-byte binary messages on the topic `ticks` at
 * `--rate` messages a second for `--seconds`, each connection with an outbox budget of
 * `--budget` payload bytes and the overflow policy `--policy` (with `conflate`, message i has the
 * key `k{i % keys}`). The clients run in a child process: raw TCP clients that complete the
 * handshake; the fast ones parse every frame and check the sequence numbers, the slow ones never
 * read again. Before the timed run, the slow connections' socket and kernel buffers are filled
 * with 64 KiB binary fillers written to them directly (about 4 MB each on Linux loopback; at the
 * publishing rate alone that would take minutes), so the whole run sees writers that cannot
 * write; the fillers are counted apart.
 *
 * A warm-up of `--warmup` seconds at the same rate comes first, while the slow clients' kernel
 * buffers still take everything: its peak resident memory is the baseline (the load itself,
 * garbage included, with no backlog anywhere).
 *
 * It prints, once a second, the server's resident memory, and at the end: whether every fast
 * client received every message in order, the memory against the budget (1,000 × budget +
 * baseline), and the balance: published × subscribers = received by the fast clients + handed to
 * the slow ones' sockets (unread) + dropped + conflated + still queued + unsent at close +
 * refused because the connection was closing. Loopback only; bounded in time and count.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { connect as netConnect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { cpus, totalmem } from 'node:os';
import { Server, type Conn } from '../src/index.js';
import { intFlag, parseArgs } from './args.js';

type Policy = 'drop-oldest' | 'conflate' | 'close';

interface FastReport {
  received: number;
  outOfOrder: number;
  firstSeq: number;
  lastSeq: number;
}
interface ChildReport {
  type: 'report';
  fast: FastReport[];
  slowBytes: number[];
  rss: number;
}

const MiB = 1024 * 1024;
const mb = (n: number): string => (n / MiB).toFixed(1);

// ------------------------------------------------------------------------------------ clients

function upgradeRequest(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
}

/** A raw client that counts the binary frames it reads and checks their sequence numbers. */
class FastClient {
  readonly stats: FastReport = { received: 0, outOfOrder: 0, firstSeq: -1, lastSeq: -1 };
  #buf: Buffer = Buffer.alloc(0);
  #open = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
  }

  #onData(chunk: Buffer): void {
    let buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    let off = 0;
    if (!this.#open) {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) {
        this.#buf = buf;
        return;
      }
      this.#open = true;
      off = end + 4;
    }
    const s = this.stats;
    while (buf.length - off >= 2) {
      let len = buf[off + 1]! & 0x7f;
      let h = 2;
      if (len === 126) {
        if (buf.length - off < 4) break;
        len = buf.readUInt16BE(off + 2);
        h = 4;
      } else if (len === 127) {
        if (buf.length - off < 10) break;
        len = Number(buf.readBigUInt64BE(off + 2));
        h = 10;
      }
      if (buf.length - off < h + len) break;
      if ((buf[off]! & 0x0f) === 2 && len >= 4) {
        const seq = buf.readUInt32BE(off + h);
        if (s.firstSeq < 0) s.firstSeq = seq;
        else if (seq !== s.lastSeq + 1) s.outOfOrder++;
        s.lastSeq = seq;
        s.received++;
      }
      off += h + len;
    }
    buf = buf.subarray(off);
    this.#buf = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
  }
}

function openClient(port: number, path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ port, host: '127.0.0.1' });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.setNoDelay(true);
      socket.write(upgradeRequest(path));
      resolve(socket);
    });
  });
}

async function runClients(port: number, fastCount: number, slowCount: number): Promise<void> {
  const fast: FastClient[] = [];
  const slowBytes: number[] = [];
  // The slow ones spread evenly among the fast ones (every tenth, by default).
  const total = fastCount + slowCount;
  const all = Array.from({ length: total }, (_, i) => ({
    path: Math.floor(((i + 1) * slowCount) / total) > Math.floor((i * slowCount) / total) ? '/slow' : '/fast',
  }));
  for (let i = 0; i < all.length; i += 50) {
    await Promise.all(
      all.slice(i, i + 50).map(async ({ path }) => {
        const socket = await openClient(port, path);
        socket.on('error', () => {});
        if (path === '/fast') {
          fast.push(new FastClient(socket));
          return;
        }
        // A slow client reads the 101 response, then never reads again.
        const idx = slowBytes.push(0) - 1;
        await new Promise<void>((resolve) => {
          const onData = (c: Buffer): void => {
            slowBytes[idx]! += c.length;
            if (c.includes('\r\n\r\n')) {
              socket.off('data', onData);
              socket.pause();
              resolve();
            }
          };
          socket.on('data', onData);
        });
      }),
    );
  }
  const report = (): void => {
    const msg: ChildReport = { type: 'report', fast: fast.map((f) => f.stats), slowBytes, rss: process.memoryUsage().rss };
    process.send!(msg);
  };
  process.send!({ type: 'ready' });
  process.on('message', (m: { type: string }) => {
    if (m.type === 'report') report();
    if (m.type === 'exit') process.exit(0);
  });
}

// ------------------------------------------------------------------------------------ server

async function main(): Promise<void> {
  const { flags } = parseArgs(process.argv.slice(2));
  if (flags.has('child')) {
    await runClients(intFlag(flags, 'port', 0), intFlag(flags, 'fast', 900), intFlag(flags, 'slow', 100));
    return;
  }
  const policy = (flags.get('policy') ?? 'drop-oldest') as Policy;
  if (!['drop-oldest', 'conflate', 'close'].includes(policy)) throw new Error(`--policy: drop-oldest, conflate or close, not ${String(policy)}`);
  const seconds = Number(flags.get('seconds') ?? 30);
  const rate = intFlag(flags, 'rate', 500);
  const subscribers = intFlag(flags, 'subscribers', 1000);
  const slowCount = intFlag(flags, 'slow', 100);
  const size = Math.max(8, intFlag(flags, 'size', 64));
  const budget = intFlag(flags, 'budget', 64 * 1024);
  const keyCount = intFlag(flags, 'keys', 64);
  const warmup = intFlag(flags, 'warmup', 10);
  const fastCount = subscribers - slowCount;

  console.log(`wschan slow consumers: ${subscribers} subscribers (${slowCount} never read), policy ${policy}, budget ${budget} B/connection, ` +
    `${size}-byte messages at ${rate}/s for ${seconds} s${policy === 'conflate' ? `, ${keyCount} keys` : ''}`);
  console.log(`machine: ${cpus()[0]?.model ?? '?'} × ${cpus().length}, ${mb(totalmem())} MiB, Node ${process.version}, ${process.platform}; ${new Date().toISOString()}`);

  const server = new Server<{ slow: boolean; fillers: number; unsent: number }>({
    overflow: policy,
    maxQueuedBytes: budget,
    maxQueuedFrames: 1 << 20, // the byte budget is the bound
    shutdownTimeout: 1000,
    closeTimeout: 2000,
  });
  const conns: Conn<{ slow: boolean; fillers: number; unsent: number }>[] = [];
  server
    .handleUpgrade((req) => ({ data: { slow: req.url === '/slow', fillers: 0, unsent: 0 } }))
    .handleOpen((conn) => {
      conn.subscribe('ticks');
      conns.push(conn);
    })
    .handleClose((conn, info) => {
      conn.data.unsent = info.unsent;
    });
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });

  const here = fileURLToPath(import.meta.url);
  const child: ChildProcess = fork(here, ['--child', '--port', String(port), '--fast', String(fastCount), '--slow', String(slowCount)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let lastReport: ChildReport | undefined;
  let onReport: (() => void) | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: { type: string }) => {
      if (m.type === 'ready') resolve();
      if (m.type === 'report') {
        lastReport = m as ChildReport;
        onReport?.();
      }
    });
    child.on('exit', (code) => reject(new Error(`the client process exited (${code})`)));
  });
  const askReport = (): Promise<ChildReport> =>
    new Promise((resolve) => {
      onReport = () => resolve(lastReport!);
      child.send({ type: 'report' });
    });
  await ready;
  const deadline = Date.now() + 20_000;
  while (server.subscriberCount('ticks') < subscribers) {
    if (Date.now() > deadline) throw new Error(`only ${server.subscriberCount('ticks')} subscribers after 20 s`);
    await sleep(20);
  }
  const slow = conns.filter((c) => c.data.slow);
  const fast = conns.filter((c) => !c.data.slow);

  const idleRss = process.memoryUsage().rss;

  // Publishing at a steady rate: `publishFor(ms)` publishes until `ms` more milliseconds have passed.
  const keys = Array.from({ length: keyCount }, (_, i) => `k${i}`);
  const totals = { queued: 0, conflated: 0, dropped: 0, closed: 0 };
  // A steady rate: at most 100 ms worth in one turn (a stalled loop falls behind instead of
  // bursting), and with keys at most one message per key, so a fast client's outbox never conflates.
  const burst = Math.max(1, Math.ceil(rate / 10));
  const perTurn = policy === 'conflate' ? Math.min(burst, keyCount) : burst;
  let maxLag = 0;
  let lastSample = performance.now();
  let seq = 0;
  let phase = 'warm-up';
  let maxRss = 0;
  const t00 = performance.now();
  const sampler = setInterval(() => {
    const mem = process.memoryUsage();
    if (mem.rss > maxRss) maxRss = mem.rss;
    const now = performance.now();
    const lag = now - lastSample - 1000;
    lastSample = now;
    if (phase === 'run' && lag > maxLag) maxLag = lag;
    const second = ((performance.now() - t00) / 1000).toFixed(1);
    let qBytes = 0;
    for (const c of slow) qBytes += c.state === 'closed' ? 0 : c.queuedBytes;
    const st = server.stats;
    console.log(`${second.padStart(5)} s ${phase.padEnd(7)} published ${seq}  lag ${Math.max(0, Math.round(lag))} ms  rss ${mb(mem.rss)} MiB (heap ${mb(mem.heapUsed)}, buffers ${mb(mem.arrayBuffers)})  ` +
      `slow outboxes ${mb(qBytes)} MiB  dropped ${st.dropped}  conflated ${st.conflated}  closed for slowness ${st.closedForSlowness}`);
  }, 1000);
  const publishFor = async (ms: number): Promise<number> => {
    const first = seq;
    const start = performance.now();
    const want = Math.floor((ms / 1000) * rate);
    let behind = 0;
    const ticker = setInterval(() => {
      // Behind schedule by more than a burst: drop the debt (the rate achieved is printed).
      const target = Math.floor(((performance.now() - start) / 1000) * rate) - behind;
      if (target - (seq - first) > perTurn) behind += target - (seq - first) - perTurn;
      const due = first + Math.min(want, Math.floor(((performance.now() - start) / 1000) * rate) - behind);
      for (let n = 0; seq < due && n < perTurn; n++) {
        const payload = Buffer.allocUnsafe(size).fill(0);
        payload.writeUInt32BE(seq, 0);
        payload.writeDoubleBE(Date.now(), 4);
        const r = server.publish('ticks', payload, policy === 'conflate' ? { key: keys[seq % keyCount]! } : undefined);
        totals.queued += r.queued;
        totals.conflated += r.conflated;
        totals.dropped += r.dropped;
        totals.closed += r.closed;
        seq++;
      }
    }, 10);
    while (seq < first + want) await sleep(20);
    clearInterval(ticker);
    return (performance.now() - start) / 1000;
  };

  // 1. Warm-up: the same load while every client reads what it gets (the slow ones' kernel
  //    buffers take it all), to measure the memory of the load itself, garbage included.
  await publishFor(warmup * 1000);
  const baseline = maxRss;

  // 2. Fill the slow connections' socket and kernel buffers: their writers end up waiting for 'drain'.
  phase = 'filling';
  const t0 = Date.now();
  const filler = Buffer.alloc(64 * 1024, 0x61);
  let blocked = 0;
  while (blocked < slow.length) {
    if (Date.now() - t0 > 60_000) throw new Error(`only ${blocked} slow connections blocked after 60 s`);
    blocked = 0;
    for (const c of slow) {
      if (c.socketBufferedBytes > 0 && c.queuedFrames === 0) blocked++;
      else if (c.queuedFrames === 0) {
        c.tryWrite(filler);
        c.data.fillers++;
      }
    }
    await sleep(2);
  }
  const fillers = slow.reduce((n, c) => n + c.data.fillers, 0);
  const kernelBytes = (fillers * filler.length - slow.reduce((n, c) => n + c.socketBufferedBytes, 0)) / slow.length;
  console.log(`filled ${slow.length} slow connections in ${Date.now() - t0} ms: ${fillers} fillers, ~${mb(kernelBytes)} MiB each in socket and kernel buffers`);

  // The fillers went through this process: let their garbage go before measuring again.
  phase = 'settle';
  (globalThis as { gc?: () => void }).gc?.();
  await sleep(2000);

  // 3. The run: the slow ones read nothing more.
  phase = 'run';
  maxRss = 0;
  const runStart = seq;
  const took = await publishFor(seconds * 1000);
  const published = seq;

  // Let the fast clients read what is in flight.
  let report = await askReport();
  const wantFast = published * fastCount;
  const drainUntil = Date.now() + 15_000;
  while (report.fast.reduce((n, f) => n + f.received, 0) < wantFast && Date.now() < drainUntil) {
    await sleep(200);
    report = await askReport();
  }
  clearInterval(sampler);

  // ---- results
  const receivedFast = report.fast.reduce((n, f) => n + f.received, 0);
  const complete = report.fast.filter((f) => f.received === published && f.firstSeq === 0 && f.lastSeq === published - 1 && f.outOfOrder === 0).length;
  const outOfOrder = report.fast.reduce((n, f) => n + f.outOfOrder, 0);
  const deliveredFast = fast.reduce((n, c) => n + c.delivered, 0);
  const deliveredSlow = slow.reduce((n, c) => n + c.delivered - c.data.fillers, 0);
  const dropped = conns.reduce((n, c) => n + c.dropped, 0);
  const conflated = conns.reduce((n, c) => n + c.conflated, 0);
  const queued = conns.reduce((n, c) => n + (c.state === 'closed' ? 0 : c.queuedFrames), 0);
  const unsent = conns.reduce((n, c) => n + c.data.unsent, 0);
  const closedSlow = slow.filter((c) => c.state !== 'open').length;
  const st = server.stats;

  console.log('');
  const addressed = totals.queued + totals.conflated + totals.dropped + totals.closed;
  console.log(`published ${published} messages (${warmup} s warm-up + ${seconds} s run at ${rate}/s; the run took ${took.toFixed(1)} s: ` +
    `${Math.round((published - runStart) / took)}/s, event loop lag up to ${Math.round(maxLag)} ms) to ${subscribers} subscribers`);
  console.log(`fast clients: ${complete} of ${fastCount} received all ${published} in order (received ${receivedFast} of ${wantFast}; ${outOfOrder} out of order); ` +
    `server handed them ${deliveredFast}`);
  console.log(`slow clients: ${closedSlow} of ${slowCount} closed (closedForSlowness ${st.closedForSlowness}); bytes they read after the 101: ${report.slowBytes.reduce((a, b) => a + b, 0)}`);
  console.log(`publish results: queued ${totals.queued} + conflated ${totals.conflated} + dropped ${totals.dropped} + closed ${totals.closed} = ${addressed} copies addressed ` +
    `(published × subscribers = ${published * subscribers}; ${published * subscribers - addressed} went to nobody: published after a subscriber had been closed and left the topic)`);
  const sum = receivedFast + deliveredSlow + dropped + conflated + queued + unsent + totals.closed;
  console.log('balance: copies addressed = received by fast + handed to slow sockets (unread) + dropped + conflated + still queued + unsent at close + refused (closing)');
  console.log(`         ${addressed} = ${receivedFast} + ${deliveredSlow} + ${dropped} + ${conflated} + ${queued} + ${unsent} + ${totals.closed} = ${sum}  ` +
    `(${sum === addressed ? 'balanced' : `OFF BY ${addressed - sum}`})`);
  const bound = baseline + subscribers * budget;
  console.log(`memory: baseline ${mb(baseline)} MiB (max rss of the warm-up, same load, no backlog; idle after connecting: ${mb(idleRss)} MiB) ` +
    `+ ${subscribers} × ${budget} B budget (${mb(subscribers * budget)} MiB) = ${mb(bound)} MiB; max rss of the run ${mb(maxRss)} MiB ` +
    `(${maxRss <= bound ? 'within' : 'OVER'}: ${maxRss >= baseline ? '+' : ''}${mb(maxRss - baseline)} MiB over baseline); client process rss ${mb(report.rss)} MiB`);

  child.send({ type: 'exit' });
  await server.close();
  const ok = complete === fastCount && sum === addressed && maxRss <= bound;
  process.exit(ok ? 0 : 1);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(2);
});
