/**
 * The echo server used by the stress tests, the benchmarks and the Autobahn|Testsuite: every text
 * or binary message is sent back as the same type (handlers in stress-tests/echo-app.ts).
 *
 *   npm run echo -- --port 9001 [--host 127.0.0.1] [--deflate] [--deflate-mode shared|dedicated] [--deflate-threshold N] [--http2 | --threads N] [--verbose]
 *
 * With `--http2` it serves TLS with a self-signed certificate made at start (its SHA-256
 * fingerprint is printed): WebSockets over HTTP/2 streams (RFC 8441 extended CONNECT) and HTTP/1.1
 * upgrades on the same port (wss://). With `--threads N` it runs on N worker threads sharing the
 * port (serveThreads; N > 1 needs Node >= 22.12).
 *
 * It prints one line when it listens (with --threads, when every thread listens). Limits are
 * raised to what the Autobahn cases send (16 MiB messages); everything else is the library's
 * defaults.
 */
import { createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Server, serveThreads } from '../src/index.js';
import { intFlag, parseArgs } from './args.js';
import setupEcho, { echoOptions } from './echo-app.js';
import { makeSelfSigned } from './self-signed.js';

const { flags } = parseArgs(process.argv.slice(2));
const port = intFlag(flags, 'port', 9001);
const host = typeof flags.get('host') === 'string' ? (flags.get('host') as string) : '127.0.0.1';
const deflate = flags.has('deflate') && flags.get('deflate') !== 'false';
const modeFlag = flags.get('deflate-mode');
if (modeFlag !== undefined && modeFlag !== 'shared' && modeFlag !== 'dedicated') {
  console.error(`wschan echo server: --deflate-mode expects shared or dedicated, got ${String(modeFlag)}`);
  process.exit(1);
}
const mode = modeFlag as 'shared' | 'dedicated' | undefined;
const threshold = intFlag(flags, 'deflate-threshold', 0);
const http2 = flags.has('http2') && flags.get('http2') !== 'false';
const verbose = flags.has('verbose');
const suffix = deflate ? ' (permessage-deflate)' : '';

let close: () => Promise<void>;
if (flags.has('threads')) {
  if (http2) {
    console.error('wschan echo server: --threads and --http2 do not go together (the threads listen with SO_REUSEPORT on plain TCP)');
    process.exit(1);
  }
  const threads = intFlag(flags, 'threads', 0) || undefined;
  try {
    const s = await serveThreads(new URL('./echo-app.js', import.meta.url), { threads, port, host, appData: { verbose }, ...echoOptions(deflate, mode, threshold) });
    console.log(`wschan echo server listening on ws://${s.address}:${s.port} on ${s.threads} thread${s.threads === 1 ? '' : 's'}${suffix}`);
    close = () => s.close();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    console.error(`wschan echo server: ${typeof code === 'string' ? `${code}: ` : ''}${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
} else {
  const server = new Server(echoOptions(deflate, mode, threshold));
  setupEcho(server, { data: { verbose } });
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
    console.log(`wschan echo server listening on wss://${addr.address}:${addr.port} (HTTP/2 RFC 8441 and HTTP/1.1)${suffix}`);
  } else {
    const addr = await server.listen({ port, host });
    console.log(`wschan echo server listening on ws://${addr.address}:${addr.port}${suffix}`);
  }
  close = () => {
    stopListening();
    return server.close();
  };
}

const stop = (): void => {
  void close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
