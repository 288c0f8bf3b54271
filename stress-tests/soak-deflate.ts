/**
 * permessage-deflate soak and memory-per-connection measurement (issue 3).
 *
 *   npm run soak:deflate -- [--mode dedicated|shared|ws|both|all] [--conns 2000] [--seconds 180]
 *                           [--rate 3000] [--interval 5] [--max-inflight 4] [--size 1024]
 *   npm run soak:deflate -- --memory [--conns 2000] [--configs none,dedicated,shared,client-nct,ws-none,ws]
 *
 * Three processes on loopback: this one (the conductor: it only samples and prints), the echo
 * server (soak/server.ts: a wschan Server with deflate, or `ws` for comparison; forked with
 * --expose-gc so its RSS is its own) and the clients (soak/clients.ts: wschan connect() clients
 * offering permessage-deflate, so the server inflates and deflates for real, both ways with
 * context takeover unless the mode says otherwise). Messages are 1 KiB JSON-like texts from a
 * pool of 4096 distinct ones (drawn at random, so a 32 KiB window rarely holds an earlier copy), sent at a steady aggregate rate and echoed; every echo is compared
 * with what was sent.
 *
 * Soak: every --interval seconds the server's RSS, heapUsed, external and arrayBuffers are
 * printed with the message rate; at the end, the middle and last thirds of the run are compared
 * (mean and least-squares slope of RSS) to say whether RSS reached a plateau. Exit status 1 if a
 * connection failed to open, closed unexpectedly, reported an error, or an echo differed.
 *
 * Memory: for each configuration, a fresh server; 50 connections warm it up and leave; after a
 * GC its RSS is the baseline; then N connections open, each exchanges one compressed message
 * (so its zlib streams exist), GC, sample; then 40 more each (the 32 KiB windows are full), GC,
 * sample. Reports (RSS - baseline) / N.
 */
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { intFlag, parseArgs } from './args.js';
import type { ClientCounters } from './soak/clients.js';
import type { ServerSample } from './soak/server.js';
import { fmtMiB, mean, MiB, slope } from './soak/stats.js';

const { flags } = parseArgs(process.argv.slice(2));
if (flags.has('help')) {
  console.log(
    (await import('node:fs')).readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 9).join('\n').replace(/^ \* ?/gm, ''),
  );
  process.exit(0);
}
const conns = intFlag(flags, 'conns', 2000);
const seconds = intFlag(flags, 'seconds', 180);
const rate = intFlag(flags, 'rate', 3000);
const interval = intFlag(flags, 'interval', 5);
const maxInflight = intFlag(flags, 'max-inflight', 4);
const size = intFlag(flags, 'size', 1024);
const modeFlag = String(flags.get('mode') ?? 'both');
const modes = modeFlag === 'both' ? ['dedicated', 'shared'] : modeFlag === 'all' ? ['dedicated', 'shared', 'ws'] : modeFlag.split(',');
for (const m of modes) if (!['dedicated', 'shared', 'ws'].includes(m)) throw new Error(`--mode: unknown ${m} (dedicated, shared, ws, both, all)`);

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

// ------------------------------------------------------------------ child processes over IPC

type Msg = { type: string; [k: string]: unknown };

class Child {
  readonly proc: ChildProcess;
  readonly #waiting = new Map<string, (m: Msg) => void>();
  #exited = false;
  exitCode: number | null = null;

  constructor(script: string, args: string[], gc: boolean, readonly name: string) {
    this.proc = fork(here(script), args, { execArgv: gc ? ['--expose-gc'] : [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.proc.on('message', (m: Msg) => {
      const w = this.#waiting.get(m.type);
      if (w !== undefined) {
        this.#waiting.delete(m.type);
        w(m);
      }
    });
    this.proc.on('exit', (code) => {
      this.#exited = true;
      this.exitCode = code;
    });
  }

  /** Wait for the next message of `type` (after sending `msg`, if given). */
  ask<T = Msg>(type: string, msg?: Msg, timeoutMs = 60_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        this.#waiting.delete(type);
        reject(new Error(`${this.name}: no '${type}' within ${timeoutMs} ms${this.#exited ? ` (exited ${this.exitCode})` : ''}`));
      }, timeoutMs);
      this.#waiting.set(type, (m) => {
        clearTimeout(t);
        resolve(m as T);
      });
      if (msg !== undefined) this.proc.send(msg);
    });
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  }
}

async function startServer(impl: 'wschan' | 'ws', deflate: 'off' | 'dedicated' | 'shared'): Promise<{ server: Child; port: number }> {
  const server = new Child('./soak/server.js', ['--impl', impl, '--deflate', deflate], true, 'server');
  const { port } = await server.ask<{ port: number }>('listening');
  return { server, port };
}

function startClients(port: number): Child {
  return new Child('./soak/clients.js', ['--port', String(port), '--size', String(size)], false, 'clients');
}

async function stopServer(server: Child): Promise<void> {
  await server.ask('closed', { type: 'exit' }, 20_000).catch(() => server.proc.kill('SIGKILL'));
  await server.stop();
}

const sampleServer = (s: Child, gc = false): Promise<ServerSample> => s.ask<ServerSample>('sample', { type: 'sample', gc });
const pad = (s: string | number, n: number): string => String(s).padStart(n);
const load = (): string => os.loadavg().map((x) => x.toFixed(2)).join(' ');

// ------------------------------------------------------------------ soak

interface SoakRow {
  t: number;
  s: ServerSample;
  c: ClientCounters & { rss: number };
}

interface SoakResult {
  mode: string;
  ok: boolean;
  rows: SoakRow[];
  msgsPerSec: number;
  plateau: boolean;
  middle: { mean: number; slope: number };
  last: { mean: number; slope: number };
  final: ServerSample;
  afterGc: ServerSample;
  clients: ClientCounters & { deflated: number };
  serverCpu: number;
  wireOutPerMsg: number;
  wireInPerMsg: number;
  loadStart: string;
  loadEnd: string;
  extensions: string;
}

async function soak(mode: string): Promise<SoakResult> {
  const impl = mode === 'ws' ? 'ws' : 'wschan';
  const loadStart = load();
  console.log(`\n== soak: ${impl === 'ws' ? 'ws (perMessageDeflate: true, its defaults)' : `wschan deflate mode ${mode}`}; ${conns} connections, ${rate} msg/s, ${size}-byte text, ${seconds} s; load average ${loadStart}`);
  const { server, port } = await startServer(impl, impl === 'ws' ? 'dedicated' : (mode as 'dedicated' | 'shared'));
  const clients = startClients(port);
  await clients.ask('ready');
  const opened = await clients.ask<{ ok: number; failed: number; deflated: number; ms: number; extensions: string }>(
    'opened',
    { type: 'open', conns, deflate: true, concurrency: 64 },
    180_000,
  );
  console.log(`opened ${opened.ok}/${conns} in ${(opened.ms / 1000).toFixed(1)} s, ${opened.deflated} with permessage-deflate ("${opened.extensions}"), ${opened.failed} failed`);

  // One message each first, so every zlib stream exists before the clock starts.
  await clients.ask('exchanged', { type: 'exchange', perConn: 1, maxInflight: 1 }, 120_000);
  const rows: SoakRow[] = [];
  const header = `${pad('t(s)', 5)} ${pad('rss MiB', 8)} ${pad('heapUsed', 8)} ${pad('external', 8)} ${pad('arrayBuf', 8)} ${pad('conns', 5)} ${pad('msg/s', 6)} ${pad('srv cpu', 7)} ${pad('out B/msg', 9)} ${pad('errors', 6)}`;
  console.log(header);
  let prev: SoakRow | undefined;
  const t0 = performance.now();
  const takeRow = async (): Promise<SoakRow> => {
    const [s, c] = await Promise.all([sampleServer(server), clients.ask<ClientCounters & { rss: number }>('sample', { type: 'sample' })]);
    const row: SoakRow = { t: (performance.now() - t0) / 1000, s, c };
    const dt = prev ? row.t - prev.t : NaN;
    const mps = prev ? (c.received - prev.c.received) / dt : NaN;
    const cpu = prev ? (s.cpuMs - prev.s.cpuMs) / 10 / dt : NaN;
    const outPerMsg = prev ? (s.bytesOut - prev.s.bytesOut) / Math.max(1, s.messages - prev.s.messages) : NaN;
    const errs = c.errors + c.mismatches + c.unexpectedCloses + s.errors + s.unexpectedCloses;
    console.log(
      `${pad(row.t.toFixed(0), 5)} ${pad(fmtMiB(s.rss), 8)} ${pad(fmtMiB(s.heapUsed), 8)} ${pad(fmtMiB(s.external), 8)} ${pad(fmtMiB(s.arrayBuffers), 8)} ${pad(s.conns, 5)} ${pad(Number.isNaN(mps) ? '-' : mps.toFixed(0), 6)} ${pad(Number.isNaN(cpu) ? '-' : cpu.toFixed(0) + '%', 7)} ${pad(Number.isNaN(outPerMsg) ? '-' : outPerMsg.toFixed(0), 9)} ${pad(errs, 6)}`,
    );
    prev = row;
    return row;
  };
  rows.push(await takeRow());
  clients.proc.send({ type: 'run', rate, maxInflight });
  for (let k = 1; k * interval <= seconds; k++) {
    const wait = t0 + k * interval * 1000 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    rows.push(await takeRow());
  }
  const drained = await clients.ask<{ pending: number }>('drained', { type: 'stop-run' }, 30_000);
  const final = await sampleServer(server);
  const afterGc = await sampleServer(server, true);
  const result = await clients.ask<ClientCounters & { deflated: number }>('result', { type: 'close' }, 60_000);
  await clients.stop();
  await new Promise((r) => setTimeout(r, 1000));
  const closed = await sampleServer(server, true);
  await stopServer(server);
  const loadEnd = load();

  // Plateau: compare the middle and last thirds of the run.
  const first = rows[0]!;
  const lastRow = rows[rows.length - 1]!;
  const T = lastRow.t - first.t;
  const third = (a: number, b: number): { mean: number; slope: number } => {
    const rs = rows.filter((r) => r.t - first.t > a * T && r.t - first.t <= b * T);
    return { mean: mean(rs.map((r) => r.s.rss)), slope: slope(rs.map((r) => r.t / 60), rs.map((r) => r.s.rss)) };
  };
  const middle = third(1 / 3, 2 / 3);
  const last = third(2 / 3, 1);
  // Plateau: the last third grows by less than 1% of its mean per minute, and its mean is within
  // 2% of the middle third's.
  const plateau = Math.abs(last.slope) <= 0.01 * last.mean && (last.mean - middle.mean) / middle.mean <= 0.02;
  const msgs = lastRow.c.received - first.c.received;
  const msgsPerSec = msgs / T;
  const serverCpu = (lastRow.s.cpuMs - first.s.cpuMs) / 10 / T;
  const wireOutPerMsg = (lastRow.s.bytesOut - first.s.bytesOut) / Math.max(1, lastRow.s.messages - first.s.messages);
  const wireInPerMsg = (lastRow.s.bytesIn - first.s.bytesIn) / Math.max(1, lastRow.s.messages - first.s.messages);
  const errors = result.errors + result.mismatches + result.unexpectedCloses + closed.errors + closed.unexpectedCloses;
  const ok = opened.failed === 0 && opened.ok === conns && errors === 0 && drained.pending === 0 && server.exitCode === 0;

  console.log(`echoed ${msgs} messages in ${T.toFixed(0)} s: ${msgsPerSec.toFixed(0)} msg/s (target ${rate}); server CPU ${serverCpu.toFixed(0)}% of a core`);
  console.log(`wire bytes per ${size}-byte message: in ${wireInPerMsg.toFixed(0)} (client to server), out ${wireOutPerMsg.toFixed(0)} (server to client)`);
  console.log(`RSS middle third: mean ${fmtMiB(middle.mean)} MiB, slope ${(middle.slope / MiB).toFixed(2)} MiB/min; last third: mean ${fmtMiB(last.mean)} MiB, slope ${(last.slope / MiB).toFixed(2)} MiB/min -> plateau: ${plateau ? 'yes' : 'NO'}`);
  console.log(`after the run: RSS ${fmtMiB(final.rss)} MiB; after gc(): RSS ${fmtMiB(afterGc.rss)}, heapUsed ${fmtMiB(afterGc.heapUsed)}, external ${fmtMiB(afterGc.external)} MiB; with 0 connections, after gc(): RSS ${fmtMiB(closed.rss)}, heapUsed ${fmtMiB(closed.heapUsed)}, external ${fmtMiB(closed.external)} MiB`);
  console.log(`errors: client ${result.errors}, echo mismatches ${result.mismatches}, unexpected closes client ${result.unexpectedCloses} server ${closed.unexpectedCloses}, server errors ${closed.errors}, unanswered at stop ${drained.pending}; sends skipped (${maxInflight} in flight) ${result.skipped}, pacer behind ${result.behind}`);
  if (result.firstError || closed.firstError) console.log(`first error: ${result.firstError || closed.firstError}`);
  console.log(`load average: start ${loadStart}, end ${loadEnd} -> ${ok ? 'OK' : 'FAILED'}`);
  return { mode, ok, rows, msgsPerSec, plateau, middle, last, final, afterGc, clients: result, serverCpu, wireOutPerMsg, wireInPerMsg, loadStart, loadEnd, extensions: opened.extensions };
}

// ------------------------------------------------------------------ memory per connection

interface MemConfig {
  name: string;
  impl: 'wschan' | 'ws';
  server: 'off' | 'dedicated' | 'shared';
  client: boolean | { clientNoContextTakeover: boolean };
  what: string;
}
const MEM_CONFIGS: MemConfig[] = [
  { name: 'none', impl: 'wschan', server: 'off', client: false, what: 'wschan, no deflate' },
  { name: 'dedicated', impl: 'wschan', server: 'dedicated', client: true, what: 'wschan deflate dedicated (context takeover, 15-bit windows)' },
  { name: 'shared', impl: 'wschan', server: 'shared', client: true, what: 'wschan deflate shared (server_no_context_takeover)' },
  { name: 'client-nct', impl: 'wschan', server: 'dedicated', client: { clientNoContextTakeover: true }, what: 'wschan dedicated, client offers client_no_context_takeover' },
  { name: 'ws-none', impl: 'ws', server: 'off', client: false, what: 'ws, perMessageDeflate: false' },
  { name: 'ws', impl: 'ws', server: 'dedicated', client: true, what: 'ws, perMessageDeflate: true (defaults)' },
];

async function memory(): Promise<boolean> {
  const names = String(flags.get('configs') ?? MEM_CONFIGS.map((c) => c.name).join(',')).split(',');
  const kib = (b: number): string => (b / 1024).toFixed(1);
  const rows: string[] = [];
  let ok = true;
  console.log(`\n== memory per connection: N = ${conns}, ${size}-byte text; load average ${load()}`);
  for (const name of names) {
    const cfg = MEM_CONFIGS.find((c) => c.name === name);
    if (cfg === undefined) throw new Error(`--configs: unknown ${name}`);
    const { server, port } = await startServer(cfg.impl, cfg.server);
    // Warm-up: JIT, first buffers, the shared compressor; then they leave.
    const warm = startClients(port);
    await warm.ask('ready');
    await warm.ask('opened', { type: 'open', conns: 50, deflate: cfg.client, concurrency: 16 });
    await warm.ask('exchanged', { type: 'exchange', perConn: 5, maxInflight: 2 });
    await warm.ask('result', { type: 'close' });
    await warm.stop();
    await new Promise((r) => setTimeout(r, 1000));
    const base = await sampleServer(server, true);

    const clients = startClients(port);
    await clients.ask('ready');
    const opened = await clients.ask<{ ok: number; failed: number; deflated: number; extensions: string }>(
      'opened',
      { type: 'open', conns, deflate: cfg.client, concurrency: 64 },
      180_000,
    );
    const x1 = await clients.ask<{ complete: boolean }>('exchanged', { type: 'exchange', perConn: 1, maxInflight: 1 }, 120_000);
    await new Promise((r) => setTimeout(r, 1000));
    const s1 = await sampleServer(server, true);
    const x40 = await clients.ask<{ complete: boolean }>('exchanged', { type: 'exchange', perConn: 40, maxInflight: 4 }, 300_000);
    await new Promise((r) => setTimeout(r, 1000));
    const s40 = await sampleServer(server, true);
    const result = await clients.ask<ClientCounters>('result', { type: 'close' }, 60_000);
    await clients.stop();
    await stopServer(server);
    const errs = result.errors + result.mismatches + result.unexpectedCloses + s40.errors + s40.unexpectedCloses;
    const good = opened.ok === conns && errs === 0 && x1.complete && x40.complete;
    ok &&= good;
    const per = (s: ServerSample, k: keyof ServerSample): string => kib(((s[k] as number) - (base[k] as number)) / conns);
    const row =
      `| ${cfg.what} | ${opened.deflated}/${opened.ok} | \`${opened.extensions || '-'}\` | ${fmtMiB(base.rss)} | ${per(s1, 'rss')} | ${per(s1, 'external')} | ${per(s1, 'heapUsed')} | ` +
      `${per(s40, 'rss')} | ${per(s40, 'external')} | ${per(s40, 'heapUsed')} |${good ? '' : ' FAILED: ' + (result.firstError || s40.firstError)}`;
    console.log(row);
    rows.push(row);
  }
  console.log('\n| server | deflate negotiated | extension answered | baseline RSS MiB | RSS KiB/conn after 1 msg | external | heapUsed | RSS KiB/conn after 41 msgs | external | heapUsed |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  console.log(`load average at the end: ${load()}`);
  return ok;
}

// ------------------------------------------------------------------ main

console.log(`soak-deflate: node ${process.version}, ${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${new Date().toISOString()}`);
let allOk = true;
if (flags.has('memory')) {
  allOk = await memory();
} else {
  const results: SoakResult[] = [];
  for (const m of modes) {
    const r = await soak(m);
    results.push(r);
    allOk &&= r.ok;
  }
  if (results.length > 1) {
    console.log('\n| server | msg/s | server CPU | wire out B/msg | RSS mid-third mean (MiB) | slope MiB/min | last-third mean | slope MiB/min | plateau | errors |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    for (const r of results) {
      const e = r.clients.errors + r.clients.mismatches + r.clients.unexpectedCloses;
      console.log(
        `| ${r.mode} | ${r.msgsPerSec.toFixed(0)} | ${r.serverCpu.toFixed(0)}% | ${r.wireOutPerMsg.toFixed(0)} | ${fmtMiB(r.middle.mean)} | ${(r.middle.slope / MiB).toFixed(2)} | ${fmtMiB(r.last.mean)} | ${(r.last.slope / MiB).toFixed(2)} | ${r.plateau ? 'yes' : 'no'} | ${e} |`,
      );
    }
  }
}
process.exit(allOk ? 0 : 1);
