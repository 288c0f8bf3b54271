/**
 * The soak's client process: N wschan `connect()` clients (permessage-deflate offered from the
 * client's own options), driven over IPC by soak-deflate.ts. Every echo is checked byte for byte
 * against the message sent (each connection keeps a FIFO of what it has in flight).
 *
 *   argv: --port P --size BYTES
 * IPC in:  open | exchange | run | sample | stop-run | close (see the handlers below)
 */
import { connect, type Conn } from '../../src/index.js';
import type { DeflateSettings } from '../../src/index.js';
import { intFlag, parseArgs } from '../args.js';
import { makePool } from './messages.js';

export interface ClientCounters {
  open: number;
  sent: number;
  received: number;
  mismatches: number;
  errors: number;
  unexpectedCloses: number;
  /** A send skipped because that connection already had maxInflight messages unanswered. */
  skipped: number;
  /** Sends the pacer could not fit in (the client fell behind the rate). */
  behind: number;
  firstError: string;
}

interface State {
  fifo: number[];
  closing: boolean;
}

const { flags } = parseArgs(process.argv.slice(2));
const port = intFlag(flags, 'port', 0);
const POOL = 4096;
const pool = makePool(POOL, intFlag(flags, 'size', 1024));
const url = `ws://127.0.0.1:${port}/`;

const conns: Conn<State>[] = [];
const c: ClientCounters = { open: 0, sent: 0, received: 0, mismatches: 0, errors: 0, unexpectedCloses: 0, skipped: 0, behind: 0, firstError: '' };
let stopping = false;
let deflated = 0;
let onReceive: (() => void) | undefined;
const note = (s: string): void => {
  if (c.firstError === '') c.firstError = s;
};
const send = (m: object): void => {
  process.send?.(m);
};

function sendOne(conn: Conn<State>): boolean {
  const idx = Math.floor(Math.random() * POOL);
  const r = conn.tryWrite(pool.text[idx]!);
  if (r !== 'queued') {
    c.errors++;
    note(`tryWrite: ${r}`);
    return false;
  }
  conn.data.fifo.push(idx);
  c.sent++;
  return true;
}

const handlers = {
  handleData(conn: Conn<State>, data: Buffer, isBinary: boolean): void {
    const idx = conn.data.fifo.shift();
    c.received++;
    if (idx === undefined || isBinary || !data.equals(pool.bytes[idx]!)) {
      c.mismatches++;
      note(`conn ${conn.id}: echo differs from what was sent (${data.length} bytes, binary=${isBinary})`);
    }
    onReceive?.();
  },
  handleError(conn: Conn<State>, err: { code: string; message: string }): void {
    c.errors++;
    note(`conn ${conn.id}: ${err.code} ${err.message}`);
  },
  handleClose(conn: Conn<State>, info: { code: number; reason: string }): void {
    c.open--;
    if (!stopping && !conn.data.closing) {
      c.unexpectedCloses++;
      note(`conn ${conn.id}: closed ${info.code} ${info.reason}`);
    }
  },
};

async function open(n: number, deflate: boolean | Partial<DeflateSettings>, concurrency: number): Promise<void> {
  const t0 = performance.now();
  let next = 0;
  let failed = 0;
  const one = async (): Promise<void> => {
    while (next < n) {
      next++;
      try {
        const conn = await connect<State>(url, { deflate, data: { fifo: [], closing: false }, ...handlers });
        conns.push(conn);
        c.open++;
        if (conn.extensions?.includes('permessage-deflate')) deflated++;
      } catch (err) {
        failed++;
        note(`connect: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, one));
  send({ type: 'opened', ok: conns.length, failed, deflated, ms: performance.now() - t0, extensions: conns[0]?.extensions ?? '' });
}

/** Every connection sends `perConn` messages, at most `maxInflight` unanswered; resolves when all came back. */
function exchange(perConn: number, maxInflight: number): Promise<void> {
  const t0 = performance.now();
  const left = new Map<Conn<State>, number>();
  let outstanding = 0;
  for (const conn of conns) {
    left.set(conn, perConn);
    outstanding += perConn;
  }
  return new Promise((resolve) => {
    const pump = (): void => {
      for (const conn of conns) {
        let l = left.get(conn)!;
        while (l > 0 && conn.data.fifo.length < maxInflight && conn.state === 'open') {
          if (!sendOne(conn)) break;
          l--;
        }
        left.set(conn, l);
      }
    };
    const target = c.received + outstanding;
    const timer = setInterval(pump, 5);
    const check = setInterval(() => {
      if (c.received >= target || c.open < conns.length) {
        clearInterval(timer);
        clearInterval(check);
        send({ type: 'exchanged', ms: performance.now() - t0, complete: c.received >= target });
        resolve();
      }
    }, 20);
    pump();
  });
}

let pacer: NodeJS.Timeout | undefined;
function run(rate: number, maxInflight: number): void {
  let cursor = 0;
  let budget = 0;
  let last = performance.now();
  pacer = setInterval(() => {
    const now = performance.now();
    budget += (rate * (now - last)) / 1000;
    last = now;
    // Bound the catch-up after a stall to 100 ms of messages; what is beyond is counted as behind.
    const cap = rate / 10;
    if (budget > cap) {
      c.behind += Math.floor(budget - cap);
      budget = cap;
    }
    let tries = 0;
    while (budget >= 1 && tries < conns.length) {
      const conn = conns[cursor]!;
      cursor = cursor + 1 === conns.length ? 0 : cursor + 1;
      tries++;
      if (conn.state !== 'open') continue;
      if (conn.data.fifo.length >= maxInflight) {
        c.skipped++;
        continue;
      }
      if (sendOne(conn)) budget--;
    }
  }, 10);
}

async function stopRun(): Promise<void> {
  if (pacer) clearInterval(pacer);
  pacer = undefined;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && c.received < c.sent && c.open === conns.length) await new Promise((r) => setTimeout(r, 20));
  send({ type: 'drained', pending: c.sent - c.received });
}

async function closeAll(): Promise<void> {
  stopping = true;
  const closes = conns.map((conn) => {
    conn.data.closing = true;
    return conn.state === 'open' || conn.state === 'closing'
      ? Promise.race([conn.close(1000, 'done'), new Promise((r) => setTimeout(r, 10_000))])
      : Promise.resolve();
  });
  await Promise.all(closes);
  send({ type: 'result', ...c, deflated });
}

process.on('message', (m: { type: string; [k: string]: unknown }) => {
  switch (m.type) {
    case 'open':
      void open(m.conns as number, m.deflate as boolean | Partial<DeflateSettings>, (m.concurrency as number) ?? 64);
      break;
    case 'exchange':
      void exchange(m.perConn as number, (m.maxInflight as number) ?? 4);
      break;
    case 'run':
      run(m.rate as number, (m.maxInflight as number) ?? 4);
      break;
    case 'sample': {
      const mem = process.memoryUsage();
      send({ type: 'sample', ...c, rss: mem.rss });
      break;
    }
    case 'stop-run':
      void stopRun();
      break;
    case 'close':
      void closeAll().then(() => {
        process.disconnect?.();
        setTimeout(() => process.exit(0), 100).unref();
      });
      break;
  }
});
process.on('disconnect', () => {
  if (!stopping) process.exit(3);
});
send({ type: 'ready' });
