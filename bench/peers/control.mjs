// The benchmark control protocol, shared by every peer server (ws, Bun, wschan) so that each
// one does exactly the same work. See bench/README.md, "Control protocol".
//
// A client sends the TEXT message `__burst:<count>:<size>` (ASCII, count 1..100000, size
// 0..1048576). The server does not echo it. Instead it sends <count> BINARY messages of <size>
// bytes to every connected client (the sender included), in order, each message framed once
// and the same frame given to every client. Message k (k = 0..count-1) carries k as a 32-bit
// big-endian integer in its first 4 bytes (when size >= 4); every other byte is 0x2a ('*').
// With a third field, `__burst:<count>:<size>:json` (size 64..1048576), the <count> messages are
// TEXT, message k being `burstJson(k, size)`: a JSON-like market tick of exactly <size> bytes
// (compressible as real JSON is). Peers with permessage-deflate send these compressed.
// Any other message (text or binary) is echoed back unchanged with the same type.

export const BURST_PREFIX = '__burst:';

/** Returns [count, size, json] when `text` is a valid burst command, otherwise null. */
export function parseBurst(text) {
  const m = /^__burst:(\d{1,6}):(\d{1,7})(:json)?$/.exec(text);
  if (m === null) return null;
  const count = Number(m[1]);
  const size = Number(m[2]);
  const json = m[3] !== undefined;
  if (count < 1 || count > 100000 || size > 1048576 || (json && size < 64)) return null;
  return [count, size, json];
}

/**
 * The text of JSON burst message k: `{"type":"tick","seq":k,"ts":…,"items":[…]}` with as many
 * items as fit in `size` bytes, padded with spaces to exactly `size` (ASCII, so bytes = chars).
 * Twin: burstJson in stress-tests/echo-app.ts (test/bench/control.test.ts checks they agree).
 */
export function burstJson(k, size) {
  const items = [];
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

/** The payload of burst message k. */
export function burstPayload(k, size) {
  const buf = Buffer.alloc(size, 0x2a);
  if (size >= 4) buf.writeUInt32BE(k >>> 0, 0);
  return buf;
}

/**
 * `--port P [--deflate [--compress-all]] [--host H]`. `--compress-all` (bun-echo.ts): compress
 * every message sent (Bun's `send` compresses only when asked), so that Bun does the same work as
 * the other servers in the deflate scenario.
 */
export function parseServerArgs(argv) {
  const out = { port: 0, host: '127.0.0.1', deflate: false, compressAll: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') out.port = Number(argv[++i]);
    else if (a === '--host') out.host = argv[++i];
    else if (a === '--deflate') out.deflate = true;
    else if (a === '--compress-all') out.compressAll = true;
    else throw new Error(`unknown argument: ${a}`);
  }
  if (!Number.isInteger(out.port) || out.port <= 0) throw new Error('--port P is required');
  return out;
}
