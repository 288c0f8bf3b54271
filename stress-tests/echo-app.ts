/**
 * The echo server's handlers, as a module every thread of a threaded server can load
 * (`serveThreads`), and that the single-thread `npm run echo` uses too: every text or binary
 * message is sent back as the same type, except the benchmark's burst control message.
 */
import type { Server, ServerOptionsInput } from '../src/index.js';
import { burstJson, burstPayload, parseBurst } from './burst.js';

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
