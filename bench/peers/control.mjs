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

// The burst messages themselves have one source, stress-tests/burst.ts, which wschan's echo
// server uses from source; every other peer (ws, Bun, the floor) takes them from its build here.
import { importBuild } from '../build-import.mjs';

const burst = await importBuild('stress-tests/burst.js', 'bench/peers/control.mjs');

export const BURST_PREFIX = burst.BURST_PREFIX;
export const burstJson = burst.burstJson;
export const burstPayload = burst.burstPayload;

/** Returns [count, size, json] when `text` is a valid burst command, otherwise null. */
export function parseBurst(text) {
  const b = burst.parseBurst(text);
  return b === undefined ? null : [b.count, b.size, b.json];
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
