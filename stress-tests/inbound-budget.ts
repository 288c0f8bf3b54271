/**
 * Inbound memory against the configured budget (issue 10): many connections each send large
 * messages to a slow handler, and the server's peak resident memory is compared with what its
 * limits promise (maxInboundBytes per connection × connections).
 *
 *   npm run stress:inbound -- [--connections 50] [--messages 10] [--size 2097152]
 *                             [--budget 4194304] [--handler-ms 100] [--only wschan,ws,ws-pause]
 *
 * For each server in turn (in a child process of its own, so its RSS is its alone): `wschan` with
 * maxInboundBytes = maxMessageSize = `--budget` and an async handleData that takes `--handler-ms`
 * a message; `ws` (devDependency) with maxPayload = `--budget` and the same handler run one
 * message at a time per connection (the usual async handler: ws reads on while it works);
 * `ws-pause`, the same with ws.pause() while a message is being handled and resume() after (what
 * a careful ws user writes). Raw TCP clients (in this process) open `--connections` connections,
 * wait until all are open (the server's RSS then is the baseline), then each writes `--messages`
 * binary frames of `--size` bytes as fast as TCP lets it. The server samples its RSS every 20 ms;
 * the run ends when every message has been handled (or after 120 s). Loopback only.
 */
import { fork } from 'node:child_process';
import { connect as netConnect, type Socket } from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import { intFlag, parseArgs } from './args.js';

const MiB = 1024 * 1024;
const mb = (n: number): string => (n / MiB).toFixed(0);
const { flags } = parseArgs(process.argv.slice(2));
const N = intFlag(flags, 'connections', 50);
const M = intFlag(flags, 'messages', 10);
const SIZE = intFlag(flags, 'size', 2 * MiB);
const BUDGET = intFlag(flags, 'budget', 4 * MiB);
const HANDLER_MS = intFlag(flags, 'handler-ms', 100);
const ROLE = flags.get('role');
const IMPL = String(flags.get('impl') ?? '');

type Report = { type: 'listening'; port: number } | { type: 'opened'; rss: number } | { type: 'done'; peak: number; baseline: number; handled: number; seconds: number; heldPeak: number; heldConnPeak: number };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------ server child

async function serve(): Promise<void> {
  const send = (r: Report): void => void process.send!(r);
  let peak = 0;
  let baseline = 0;
  let opened = 0;
  let handled = 0;
  let started = 0;
  const total = N * M;
  // wschan only: what its connections say they hold (Conn.inboundBytes), the quantity the budget bounds.
  let held: (() => number[]) | undefined;
  let heldPeak = 0;
  let heldConnPeak = 0;
  const sample = setInterval(() => {
    const rss = process.memoryUsage().rss;
    if (rss > peak) peak = rss;
    if (held !== undefined) {
      const each = held();
      heldPeak = Math.max(heldPeak, each.reduce((a, b) => a + b, 0));
      heldConnPeak = Math.max(heldConnPeak, ...each);
    }
  }, 20);
  const onOpen = (): void => {
    if (++opened === N) {
      baseline = process.memoryUsage().rss;
      peak = baseline;
      started = performance.now();
      send({ type: 'opened', rss: baseline });
    }
  };
  const onHandled = (): void => {
    if (++handled === total) {
      clearInterval(sample);
      send({ type: 'done', peak: Math.max(peak, process.memoryUsage().rss), baseline, handled, seconds: (performance.now() - started) / 1000, heldPeak, heldConnPeak });
    }
  };
  if (IMPL === 'wschan') {
    const { Server } = await import('../src/index.js');
    const server = new Server({ maxInboundBytes: BUDGET, maxMessageSize: BUDGET, maxFrameSize: BUDGET })
      .handleOpen(onOpen)
      .handleData(async () => {
        await sleep(HANDLER_MS);
        onHandled();
      });
    held = () => [...server.connections].map((c) => c.inboundBytes);
    const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
    send({ type: 'listening', port });
  } else {
    const { WebSocketServer } = await import('ws');
    const pause = IMPL === 'ws-pause';
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: BUDGET, perMessageDeflate: false });
    wss.on('connection', (ws) => {
      onOpen();
      let chain: Promise<void> = Promise.resolve();
      let pending = 0;
      ws.on('message', (data) => {
        pending++;
        if (pause) ws.pause();
        chain = chain.then(async () => {
          await sleep(HANDLER_MS);
          void data; // the handler holds its message until it is done, as wschan's does
          onHandled();
          if (--pending === 0 && pause) ws.resume();
        });
      });
    });
    await once(wss, 'listening');
    send({ type: 'listening', port: (wss.address() as { port: number }).port });
  }
}

// ------------------------------------------------------------------------------ orchestrator

async function openClient(port: number): Promise<Socket> {
  const s = netConnect({ port, host: '127.0.0.1' });
  await once(s, 'connect');
  s.on('error', () => {});
  s.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  let head = '';
  while (!head.includes('\r\n\r\n')) head += ((await once(s, 'data')) as [Buffer])[0].toString('latin1');
  s.on('data', () => {}); // keep reading whatever the server sends
  return s;
}

/** A masked binary frame of `size` bytes with the all-zero key (RFC 6455 §5.3 allows any key; the payload stays as is). */
function frame(size: number): Buffer {
  const header = Buffer.alloc(14);
  header[0] = 0x82;
  header[1] = 0x80 | 127;
  header.writeUInt32BE(Math.floor(size / 2 ** 32), 2);
  header.writeUInt32BE(size % 2 ** 32, 6);
  return Buffer.concat([header, Buffer.alloc(size, 0x61)]);
}

type Result = Omit<Extract<Report, { type: 'done' }>, 'type'> & { impl: string };
async function runOne(impl: string): Promise<Result | { impl: string; error: string }> {
  const child = fork(fileURLToPath(import.meta.url), [...process.argv.slice(2), '--role', 'server', '--impl', impl], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const messages: Report[] = [];
  let wake: (() => void) | undefined;
  child.on('message', (m: Report) => {
    messages.push(m);
    wake?.();
  });
  const next = async <T extends Report['type']>(type: T, ms: number): Promise<Extract<Report, { type: T }>> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = messages.find((x) => x.type === type);
      if (m !== undefined) return m as Extract<Report, { type: T }>;
      if (Date.now() > deadline) throw new Error(`${impl}: no '${type}' within ${ms} ms`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 200);
      });
    }
  };
  const sockets: Socket[] = [];
  try {
    const { port } = await next('listening', 10_000);
    for (let i = 0; i < N; i++) sockets.push(await openClient(port));
    await next('opened', 10_000);
    const f = frame(SIZE);
    for (const s of sockets) for (let i = 0; i < M; i++) s.write(f);
    const done = await next('done', 120_000);
    const { type: _, ...rest } = done;
    return { impl, ...rest };
  } catch (err) {
    return { impl, error: err instanceof Error ? err.message : String(err) };
  } finally {
    for (const s of sockets) s.destroy();
    child.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const only = String(flags.get('only') ?? 'wschan,ws,ws-pause').split(',');
  const promised = N * BUDGET;
  console.log(`inbound budget: ${N} connections x ${M} messages of ${mb(SIZE)} MiB, handler ${HANDLER_MS} ms a message; budget ${mb(BUDGET)} MiB a connection (x ${N} = ${mb(promised)} MiB); Node ${process.version}, ${cpus().length} cores`);
  console.log('server    baseline MiB  peak MiB  peak-baseline MiB  vs budget x conns  handled  seconds  held peak MiB (all / one conn)');
  for (const impl of only) {
    const r = await runOne(impl);
    if ('error' in r) {
      console.log(`${impl.padEnd(9)} error: ${r.error}`);
      continue;
    }
    const grew = r.peak - r.baseline;
    console.log(
      `${impl.padEnd(9)} ${mb(r.baseline).padStart(12)}  ${mb(r.peak).padStart(8)}  ${mb(grew).padStart(17)}  ${(grew / promised).toFixed(2).padStart(17)}  ${String(r.handled).padStart(7)}  ${r.seconds.toFixed(1).padStart(7)}  ${impl === 'wschan' ? `${(r.heldPeak / MiB).toFixed(1)} / ${(r.heldConnPeak / MiB).toFixed(2)}` : 'n/a'}`,
    );
  }
}

if (ROLE === 'server') await serve();
else await main();
