// wschan load generator: a tcpkali-like WebSocket client for benchmarks and stress tests.
//
//   node dist/stress-tests/loadgen/main.js --ws -c 100 -m 'hello world!!13212312!' -r 10k -T 10s 127.0.0.1:8080
//
// The main thread only coordinates: it splits the connections over worker threads, tells them
// when to open, start, trigger and stop, prints progress once a second on stderr, and merges
// their results into a tcpkali-style summary (plus one JSON line with --json). Every phase has a
// deadline, so a run ends by itself whatever the server does.

import { Worker } from 'node:worker_threads';
import { Histogram } from './histogram.js';
import { USAGE, UsageError, parseOptions, type Options } from './options.js';
import {
  COUNTERS,
  Counter,
  absoluteNow,
  type FromWorker,
  type ToWorker,
  type WorkerInit,
  type WorkerResult,
} from './protocol.js';

const CONNECT_BUDGET_MS = 60_000;
const RESULT_BUDGET_MS = 10_000;

let opts: Options;
try {
  opts = parseOptions(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError) {
    if (err.message !== '') process.stderr.write(`loadgen: ${err.message}\n`);
    process.stderr.write(`${USAGE}\n`);
    process.exit(err.message === '' ? 0 : 2);
  }
  throw err;
}

// A last-resort deadline: nothing below may keep the process alive past it.
const hardDeadlineMs = CONNECT_BUDGET_MS + opts.settleMs + opts.durationMs + opts.drainMs + RESULT_BUDGET_MS + 10_000;
setTimeout(() => {
  process.stderr.write('loadgen: hard deadline reached, exiting\n');
  process.exit(3);
}, hardDeadlineMs).unref();

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
  });
}

const counterBuffer = new SharedArrayBuffer(opts.workers * COUNTERS * 8);
const counters = new Float64Array(counterBuffer);

interface WorkerState {
  worker: Worker;
  ready: boolean;
  opened: { opened: number; failed: number; at: number; firstError: string } | null;
  triggeredAt: number;
  burstDoneAt: number;
  churnDoneAt: number;
  result: WorkerResult | null;
  exited: boolean;
  fatal: string;
}

const workers: WorkerState[] = [];
for (let i = 0; i < opts.workers; i++) {
  const share = Math.floor(opts.conns / opts.workers) + (i < opts.conns % opts.workers ? 1 : 0);
  const init: WorkerInit = { opts, index: i, conns: share, counters: counterBuffer };
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: init });
  const st: WorkerState = {
    worker,
    ready: false,
    opened: null,
    triggeredAt: 0,
    burstDoneAt: 0,
    churnDoneAt: 0,
    result: null,
    exited: false,
    fatal: '',
  };
  worker.on('message', (msg: FromWorker) => {
    switch (msg.type) {
      case 'ready': st.ready = true; break;
      case 'opened': st.opened = msg; break;
      case 'triggered': st.triggeredAt = msg.at; break;
      case 'burst-done': st.burstDoneAt = msg.at; break;
      case 'churn-done': st.churnDoneAt = msg.at; break;
      case 'result': st.result = msg.result; break;
      case 'fatal': st.fatal = msg.error; break;
    }
  });
  worker.on('error', (err) => {
    st.fatal = String(err);
  });
  worker.on('exit', () => {
    st.exited = true;
  });
  workers.push(st);
}

function sendAll(msg: ToWorker): void {
  for (const w of workers) if (!w.exited) w.worker.postMessage(msg);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until pred() holds, the deadline passes, a worker fails or the run is interrupted. */
async function waitUntil(pred: () => boolean, timeoutMs: number): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  while (!pred()) {
    if (interrupted || performance.now() >= until || workers.some((w) => w.fatal !== '' || w.exited)) return false;
    await sleep(5);
  }
  return true;
}

function sum(field: number): number {
  let s = 0;
  for (let i = 0; i < opts.workers; i++) s += counters[i * COUNTERS + field]!;
  return s;
}

// ---- progress (stderr, once a second) -------------------------------------------------------

let progressTimer: NodeJS.Timeout | undefined;
function startProgress(): void {
  if (opts.quiet) return;
  let last = { t: performance.now(), sm: 0, rm: 0, sb: 0, rb: 0 };
  progressTimer = setInterval(() => {
    const now = { t: performance.now(), sm: sum(Counter.SentMsgs), rm: sum(Counter.RecvMsgs), sb: sum(Counter.SentBytes), rb: sum(Counter.RecvBytes) };
    const dt = (now.t - last.t) / 1000;
    const line =
      `Traffic ${fmtMbps((now.rb - last.rb) / dt)}↓, ${fmtMbps((now.sb - last.sb) / dt)}↑ Mbps ` +
      `(conns ${sum(Counter.Open)}/${opts.conns}; errors ${sum(Counter.Errors)}); ` +
      `${fmtRate((now.rm - last.rm) / dt)}↓ ${fmtRate((now.sm - last.sm) / dt)}↑ msg/s` +
      (opts.mode === 'conn-churn' || opts.mode === 'burst-subscribe' ? `; done ${sum(Counter.Done)}/${opts.conns}` : '');
    process.stderr.write(`${line}\n`);
    last = now;
  }, 1000);
}

function fmtMbps(bytesPerSec: number): string {
  return ((bytesPerSec * 8) / 1e6).toFixed(1);
}

function fmtRate(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0);
}

function fmtMs(us: number): string {
  return `${(us / 1000).toFixed(us < 10_000 ? 3 : 1)} ms`;
}

// ---- the run --------------------------------------------------------------------------------

async function run(): Promise<number> {
  if (!(await waitUntil(() => workers.every((w) => w.ready), 10_000))) return fail('workers did not start');
  const target = `${opts.host}:${opts.port}`;
  process.stdout.write(`Destination: [${target}] mode ${opts.mode}, ${opts.conns} connections, ${opts.workers} worker(s)\n`);
  startProgress();
  const goAt = absoluteNow();
  sendAll({ type: 'go' });

  let extra: Record<string, unknown> = {};
  if (opts.mode === 'conn-churn') {
    const done = await waitUntil(() => workers.every((w) => w.churnDoneAt > 0), opts.durationMs);
    const startAt = goAt;
    const endAt = done ? Math.max(...workers.map((w) => w.churnDoneAt)) : absoluteNow();
    extra = { churn: { complete: done, totalMs: endAt - startAt, messagesPerConn: opts.churnMessages } };
  } else {
    const ok = await waitUntil(() => workers.every((w) => w.opened !== null), CONNECT_BUDGET_MS);
    const opened = workers.reduce((s, w) => s + (w.opened?.opened ?? 0), 0);
    const openAt = Math.max(...workers.map((w) => w.opened?.at ?? absoluteNow()));
    process.stdout.write(`Ramped up to ${opened} connections${ok ? '' : ' (connect phase cut short)'} in ${((openAt - goAt) / 1000).toFixed(2)} s.\n`);
    if (opened < opts.conns) {
      const reason = workers.map((w) => w.opened?.firstError ?? '').find((e) => e !== '') ?? 'unknown';
      process.stderr.write(`loadgen: ${opts.conns - opened} connections failed (first error: ${reason})\n`);
    }
    if (opts.mode === 'echo') {
      // With --json, the moment the measured window opens (bench/threads.mjs reads the server's CPU then).
      if (opts.json) process.stdout.write(`${JSON.stringify({ event: 'start' })}\n`);
      sendAll({ type: 'start' });
      await waitUntil(() => false, opts.durationMs);
    } else if (opts.mode === 'idle') {
      const ready = { event: 'ready', open: opened, openMs: openAt - goAt };
      if (opts.json) process.stdout.write(`${JSON.stringify(ready)}\n`);
      await waitUntil(() => false, opts.durationMs);
    } else {
      await waitUntil(() => false, opts.settleMs);
      const first = workers.find((w) => (w.opened?.opened ?? 0) > 0);
      if (first === undefined) return fail('no connection opened');
      if (opts.json) process.stdout.write(`${JSON.stringify({ event: 'trigger' })}\n`);
      first.worker.postMessage({ type: 'trigger' } satisfies ToWorker);
      const done = await waitUntil(() => first.triggeredAt > 0 && workers.every((w) => w.burstDoneAt > 0), opts.durationMs);
      const trig = first.triggeredAt;
      const endAt = done ? Math.max(...workers.map((w) => w.burstDoneAt)) : absoluteNow();
      extra = { burst: { complete: done, durationMs: endAt - trig, count: opts.burstCount, size: opts.burstSize, json: opts.burstJson } };
    }
  }
  sendAll({ type: 'stop' });
  const gotAll = await waitUntil(
    () => workers.every((w) => w.result !== null),
    opts.drainMs + RESULT_BUDGET_MS,
  );
  if (progressTimer !== undefined) clearInterval(progressTimer);
  const results = workers.map((w) => w.result).filter((r): r is WorkerResult => r !== null);
  if (!gotAll && results.length === 0) return fail(workers.find((w) => w.fatal !== '')?.fatal || 'workers gave no result');
  report(results, extra);
  return 0;
}

function fail(reason: string): number {
  if (progressTimer !== undefined) clearInterval(progressTimer);
  const fatal = workers.find((w) => w.fatal !== '')?.fatal;
  process.stderr.write(`loadgen: ${reason}${fatal ? ` (${fatal})` : ''}\n`);
  if (opts.json) process.stdout.write(`${JSON.stringify({ tool: 'wschan-loadgen', mode: opts.mode, error: reason })}\n`);
  return 1;
}

function report(results: WorkerResult[], extra: Record<string, unknown>): void {
  const total = (f: (r: WorkerResult) => number): number => results.reduce((s, r) => s + f(r), 0);
  const hist = new Histogram();
  for (const r of results) hist.merge(new Histogram(r.hist));
  const sentBytes = total((r) => r.sentBytes);
  const recvBytes = total((r) => r.recvBytes);
  const opened = total((r) => r.opened);
  // Echo rates are over the measured window ('start' to 'stop'); other modes over the whole run.
  const windowS = Math.max(...results.map((r) => r.windowMs)) / 1000;
  const sendRate = total((r) => (r.windowMs > 0 ? r.windowSentMsgs / (r.windowMs / 1000) : 0));
  const recvRate = total((r) => (r.windowMs > 0 ? r.windowRecvMsgs / (r.windowMs / 1000) : 0));
  const upBps = total((r) => (r.windowMs > 0 ? r.windowSentBytes / (r.windowMs / 1000) : 0));
  const downBps = total((r) => (r.windowMs > 0 ? r.windowRecvBytes / (r.windowMs / 1000) : 0));
  const mib = (n: number): string => (n / 1048576).toFixed(3);
  const out: string[] = [];
  out.push(`Total data sent:     ${mib(sentBytes)} MiB (${sentBytes} bytes)`);
  out.push(`Total data received: ${mib(recvBytes)} MiB (${recvBytes} bytes)`);
  if (opts.mode === 'echo') {
    const perChannel = opened > 0 ? ((upBps + downBps) * 8) / 1e6 / opened : 0;
    out.push(`Bandwidth per channel: ${perChannel.toFixed(3)}⇅ Mbps (${(((upBps + downBps) / Math.max(1, opened)) / 1000).toFixed(1)} kBps)`);
    out.push(`Aggregate bandwidth: ${fmtMbps(downBps)}↓, ${fmtMbps(upBps)}↑ Mbps`);
    out.push(`Packet rate estimate: ${recvRate.toFixed(1)}↓, ${sendRate.toFixed(1)}↑ (messages/s)`);
    out.push(`Test duration: ${windowS.toFixed(1)} s.`);
    out.push(
      `Latency: p50 ${fmtMs(hist.quantile(0.5))} p90 ${fmtMs(hist.quantile(0.9))} p99 ${fmtMs(hist.quantile(0.99))} ` +
        `p99.9 ${fmtMs(hist.quantile(0.999))} max ${fmtMs(hist.max)} (${hist.count} samples)`,
    );
  }
  const burst = extra['burst'] as { complete: boolean; durationMs: number } | undefined;
  let deliveries = 0;
  if (burst !== undefined) {
    deliveries = total((r) => r.recvMsgs);
    out.push(
      `Burst: ${deliveries} deliveries to ${opened} clients in ${burst.durationMs.toFixed(1)} ms ` +
        `(${fmtRate(deliveries / (burst.durationMs / 1000))} deliveries/s)${burst.complete ? '' : ' INCOMPLETE'}`,
    );
    if (opts.deflate) out.push(`Burst: ${total((r) => r.compressedMsgs)}/${deliveries} messages came compressed`);
  }
  const churn = extra['churn'] as { complete: boolean; totalMs: number } | undefined;
  if (churn !== undefined) {
    out.push(
      `Churn: ${total((r) => r.churnCompleted)}/${opts.conns} connections × ${opts.churnMessages} echoes in ` +
        `${(churn.totalMs / 1000).toFixed(2)} s${churn.complete ? '' : ' INCOMPLETE'}`,
    );
  }
  const errors = total((r) => r.errors);
  const failed = total((r) => r.failed);
  const closedEarly = total((r) => r.closedEarly);
  if (errors + failed + closedEarly > 0) {
    const first = results.map((r) => r.firstError).find((e) => e !== '') ?? '';
    out.push(`Errors: ${errors}, failed connections: ${failed}, closed by the server early: ${closedEarly}${first ? ` (first: ${first})` : ''}`);
  }
  if (opts.deflate) out.push(`permessage-deflate accepted by ${total((r) => r.deflateAccepted)}/${opened} connections`);
  process.stdout.write(`${out.join('\n')}\n`);
  if (!opts.json) return;
  const q = (x: number): number => Math.round(hist.quantile(x)) / 1000;
  const json = {
    tool: 'wschan-loadgen',
    mode: opts.mode,
    target: `${opts.host}:${opts.port}`,
    conns: opts.conns,
    opened,
    failed,
    errors,
    closedEarly,
    firstError: results.map((r) => r.firstError).find((e) => e !== '') ?? '',
    messageBytes: opts.message.length,
    binary: opts.binary,
    rate: opts.rate,
    window: opts.window,
    durationS: windowS,
    openMs: Math.max(...results.map((r) => r.openMs)),
    sent: { messages: total((r) => r.sentMsgs), bytes: sentBytes },
    received: { messages: total((r) => r.recvMsgs), bytes: recvBytes },
    sentPerSec: sendRate,
    receivedPerSec: recvRate,
    mbpsDown: (downBps * 8) / 1e6,
    mbpsUp: (upBps * 8) / 1e6,
    latencyMs: { p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999), max: hist.max / 1000, samples: hist.count },
    deflate: { offered: opts.deflate, accepted: total((r) => r.deflateAccepted) },
    ...(burst !== undefined
      ? { burst: { ...burst, deliveries, deliveriesPerSec: deliveries / (burst.durationMs / 1000), clientsComplete: total((r) => r.burstComplete), compressed: total((r) => r.compressedMsgs) } }
      : {}),
    ...(churn !== undefined ? { churn: { ...churn, completed: total((r) => r.churnCompleted) } } : {}),
  };
  process.stdout.write(`${JSON.stringify(json)}\n`);
}

const code = await run();
// Workers close their ports after posting results; terminate any that did not.
await Promise.all(workers.map((w) => (w.exited ? undefined : w.worker.terminate())));
process.exit(code);
