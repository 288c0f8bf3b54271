/**
 * The echo server used by the stress tests, the benchmarks and the Autobahn|Testsuite: every text
 * or binary message is sent back as the same type.
 *
 *   npm run echo -- --port 9001 [--host 127.0.0.1] [--deflate] [--http2]
 *
 * With `--http2` it serves TLS with a self-signed certificate made at start (its SHA-256
 * fingerprint is printed): WebSockets over HTTP/2 streams (RFC 8441 extended CONNECT) and HTTP/1.1
 * upgrades on the same port (wss://).
 *
 * It prints one line when it listens. Limits are raised to what the Autobahn cases send (16 MiB
 * messages); everything else is the library's defaults.
 */
import { createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Server } from '../src/index.js';
import { intFlag, parseArgs } from './args.js';
import { makeSelfSigned } from './self-signed.js';

const { flags } = parseArgs(process.argv.slice(2));
const port = intFlag(flags, 'port', 9001);
const host = typeof flags.get('host') === 'string' ? (flags.get('host') as string) : '127.0.0.1';
const deflate = flags.has('deflate') && flags.get('deflate') !== 'false';
const http2 = flags.has('http2') && flags.get('http2') !== 'false';

const server = new Server({
  maxMessageSize: 64 * 1024 * 1024,
  maxFrameSize: 64 * 1024 * 1024,
  deflate: deflate ? { threshold: 0 } : false,
});

server.handleData((conn, data, isBinary) => {
  // Benchmark control (bench/README.md): text `__burst:<count>:<size>` makes the server broadcast
  // <count> binary messages of <size> bytes to every client. Two byte checks keep echo cheap.
  if (!isBinary && data.length >= 8 && data[0] === 0x5f && data[1] === 0x5f) {
    const burst = parseBurst(data.toString('latin1'));
    if (burst !== undefined) {
      for (let k = 0; k < burst.count; k++) server.broadcast(burstPayload(k, burst.size), true);
      return;
    }
  }
  return conn.write(data, isBinary);
});
if (flags.has('verbose')) {
  server.handleError((conn, err) => console.error(`conn ${conn.id}: ${err.code} ${err.message}`));
  server.handleUpgradeError((req, err) => console.error(`upgrade ${req?.url ?? "(no request)"}: ${err.status} ${err.message}`));
}

let stopListening: () => void = () => {};
if (http2) {
  const cert = makeSelfSigned();
  const h2 = createSecureServer({ cert: cert.cert, key: cert.key, allowHTTP1: true }, (req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end(`wschan echo: open a WebSocket here (HTTP/${req.httpVersion})\n`);
  });
  server.attach(h2);
  await new Promise<void>((resolve, reject) => {
    h2.once('error', reject);
    h2.listen(port, host, () => resolve());
  });
  stopListening = () => h2.close();
  const addr = h2.address() as AddressInfo;
  console.log(`certificate SHA-256 fingerprint ${cert.fingerprint256}`);
  console.log(`wschan echo server listening on wss://${addr.address}:${addr.port} (HTTP/2 RFC 8441 and HTTP/1.1)${deflate ? ' (permessage-deflate)' : ''}`);
} else {
  const addr = await server.listen({ port, host });
  console.log(`wschan echo server listening on ws://${addr.address}:${addr.port}${deflate ? ' (permessage-deflate)' : ''}`);
}

function parseBurst(text: string): { count: number; size: number } | undefined {
  const m = /^__burst:(\d{1,6}):(\d{1,7})$/.exec(text);
  if (m === null) return undefined;
  const count = Number(m[1]);
  const size = Number(m[2]);
  return count >= 1 && count <= 100_000 && size <= 1_048_576 ? { count, size } : undefined;
}

/** Message k of a burst: k as a big-endian uint32 in its first 4 bytes, then '*'. */
function burstPayload(k: number, size: number): Buffer {
  const buf = Buffer.alloc(size, 0x2a);
  if (size >= 4) buf.writeUInt32BE(k >>> 0, 0);
  return buf;
}

const stop = (): void => {
  stopListening();
  void server.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
