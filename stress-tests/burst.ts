/**
 * The benchmark's burst messages (bench/README.md, "Control protocol"), in one place for every
 * peer server: wschan's echo server (stress-tests/echo-app.ts) imports it from source, and ws,
 * Bun and the node:net floor import the build (dist/stress-tests/burst.js) through
 * bench/peers/control.mjs, so that each does exactly the same work. No wschan import here: the
 * other peers load nothing of wschan but these functions.
 *
 * A client sends the TEXT message `__burst:<count>:<size>` (count 1..100000, size 0..1048576):
 * the server broadcasts <count> BINARY messages of <size> bytes (`burstPayload`) to every client;
 * with `:json` (size 64..1048576) they are TEXT JSON-like ticks (`burstJson`).
 */

export const BURST_PREFIX = '__burst:';

/** The burst a control message asks for, or undefined when `text` is not a valid one. */
export function parseBurst(text: string): { count: number; size: number; json: boolean } | undefined {
  const m = /^__burst:(\d{1,6}):(\d{1,7})(:json)?$/.exec(text);
  if (m === null) return undefined;
  const count = Number(m[1]);
  const size = Number(m[2]);
  const json = m[3] !== undefined;
  return count >= 1 && count <= 100_000 && size <= 1_048_576 && (!json || size >= 64) ? { count, size, json } : undefined;
}

/**
 * Text message k of a `:json` burst: `{"type":"tick","seq":k,"ts":…,"items":[…]}` with as many
 * items as fit in `size` bytes, padded with spaces to exactly `size` (ASCII, so bytes = chars;
 * compressible as real JSON is).
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

/** Binary message k of a burst: k as a big-endian uint32 in its first 4 bytes (when size >= 4), then '*' (0x2a). */
export function burstPayload(k: number, size: number): Buffer {
  const buf = Buffer.alloc(size, 0x2a);
  if (size >= 4) buf.writeUInt32BE(k >>> 0, 0);
  return buf;
}
