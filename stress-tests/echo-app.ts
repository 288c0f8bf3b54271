/**
 * The echo server's handlers, as a module every thread of a threaded server can load
 * (`serveThreads`), and that the single-thread `npm run echo` uses too: every text or binary
 * message is sent back as the same type, except the benchmark's burst control message.
 */
import type { Server, ServerOptionsInput } from '../src/index.js';

/**
 * Limits raised to what the Autobahn cases send (16 MiB messages); the rest are the defaults.
 * Every message is compressed (threshold 0) unless `threshold` says otherwise; `mode` overrides
 * the default permessage-deflate mode (bench/run.mjs compares them).
 */
export function echoOptions(deflate: boolean, mode?: 'shared' | 'dedicated', threshold = 0): ServerOptionsInput {
  return {
    maxMessageSize: 64 * 1024 * 1024,
    maxFrameSize: 64 * 1024 * 1024,
    deflate: deflate ? { threshold, ...(mode === undefined ? {} : { mode }) } : false,
  };
}

export default function setupEcho(server: Server<any>, thread?: { data: unknown }): void {
  server.handleData((conn, data, isBinary) => {
    // Benchmark control (bench/README.md): text `__burst:<count>:<size>` makes the server broadcast
    // <count> binary messages of <size> bytes to every client (on every thread, through the bus).
    // Two byte checks keep echo cheap.
    if (!isBinary && data.length >= 8 && data[0] === 0x5f && data[1] === 0x5f) {
      const burst = parseBurst(data.toString('latin1'));
      if (burst !== undefined) {
        if (burst.json) for (let k = 0; k < burst.count; k++) server.broadcast(burstJson(k, burst.size));
        else for (let k = 0; k < burst.count; k++) server.broadcast(burstPayload(k, burst.size), true);
        return;
      }
    }
    return conn.write(data, isBinary);
  });
  if ((thread?.data as { verbose?: boolean } | undefined)?.verbose === true) {
    server.handleError((conn, err) => console.error(`conn ${conn.id}: ${err.code} ${err.message}`));
    server.handleUpgradeError((req, err) => console.error(`upgrade ${req?.url ?? '(no request)'}: ${err.status} ${err.message}`));
  }
}

export function parseBurst(text: string): { count: number; size: number; json: boolean } | undefined {
  const m = /^__burst:(\d{1,6}):(\d{1,7})(:json)?$/.exec(text);
  if (m === null) return undefined;
  const count = Number(m[1]);
  const size = Number(m[2]);
  const json = m[3] !== undefined;
  return count >= 1 && count <= 100_000 && size <= 1_048_576 && (!json || size >= 64) ? { count, size, json } : undefined;
}

/**
 * Text message k of a `:json` burst: a JSON-like tick of exactly `size` ASCII bytes. The twin of
 * burstJson in bench/peers/control.mjs, which the other peers use (test/bench/control.test.ts).
 */
export function burstJson(k: number, size: number): string {
  const items: { id: number; sym: string; px: number; qty: number; side: string }[] = [];
  let s = '';
  for (let i = 0; ; i++) {
    const n = k * 31 + i;
    items.push({ id: i, sym: `SYM${(n * 7919) % 1000}`, px: 100 + ((n * 37) % 1000) / 100, qty: (n * 13) % 500, side: n % 2 ? 'buy' : 'sell' });
    const next = JSON.stringify({ type: 'tick', seq: k, ts: 1764720000000 + k, items });
    if (next.length > size) break;
    s = next;
  }
  if (s === '') s = JSON.stringify({ type: 'tick', seq: k }).slice(0, size);
  return s.padEnd(size, ' ');
}

/** Message k of a burst: k as a big-endian uint32 in its first 4 bytes, then '*'. */
export function burstPayload(k: number, size: number): Buffer {
  const buf = Buffer.alloc(size, 0x2a);
  if (size >= 4) buf.writeUInt32BE(k >>> 0, 0);
  return buf;
}
