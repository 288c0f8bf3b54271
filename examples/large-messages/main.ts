/**
 * `npm run example:large-messages [-- --mb N] [--threshold BYTES]`: the large-messages server and
 * two clients in one process. One client uploads N MiB (16 by default) of compressible text; the
 * other plays ping-pong with small messages meanwhile. Printed: the upload's size on the wire,
 * the reply, how many small round trips completed during the upload, and the event-loop delay
 * (`perf_hooks.monitorEventLoopDelay`) while it ran. `--threshold 1073741824` keeps every message
 * on the event loop, to see the stall the thread pool avoids.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { connect } from '../../src/index.js';
import { startLargeMessageServer } from './server.js';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const mb = arg('mb', 16);
const threshold = arg('threshold', 128 * 1024);

const app = await startLargeMessageServer({ port: Number(process.env['PORT'] ?? 8082), threadPoolThreshold: threshold });
console.log(`wschan large-messages example on ${app.url}: threadPoolThreshold ${threshold} bytes, up to 2 zlib jobs on the thread pool`);

// The client's own large messages are compressed on its thread pool too (same options).
const uploader = await connect(app.url, { deflate: { threadPoolThreshold: threshold }, maxMessageSize: 32 * 1024 * 1024 });
const pinger = await connect(app.url, { deflate: true });

// Compressible text: JSON-like lines, as a log or a document upload would be.
const line = (i: number): string => `{"seq":${i},"user":"ada","text":"hello from the large-messages example"}\n`;
const parts: string[] = [];
for (let n = 0, i = 0; n < mb * 1024 * 1024; i++) {
  const l = line(i);
  parts.push(l);
  n += l.length;
}
const upload = Buffer.from(parts.join('')).subarray(0, mb * 1024 * 1024);

const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
let done = false;
let rounds = 0;
const pings = (async () => {
  const it = pinger[Symbol.asyncIterator]();
  while (!done) {
    await pinger.write(`tick ${rounds}`);
    await it.next();
    rounds++;
  }
})();
const sentBefore = uploader.bytesOut;
const replies = uploader[Symbol.asyncIterator]();
await uploader.write(upload, true);
const reply = await replies.next();
done = true;
await pings;
delay.disable();
const ms = (ns: number): string => (ns / 1e6).toFixed(1);
console.log(`client: sent ${mb} MiB as ${((uploader.bytesOut - sentBefore) / 1024).toFixed(0)} KiB on the wire`);
console.log(`client: reply "${reply.done === true ? '' : reply.value.data.toString()}"`);
console.log(`meanwhile: ${rounds} small round trips on another connection`);
console.log(`event-loop delay during the upload: p99 ${ms(delay.percentile(99))} ms, max ${ms(delay.max)} ms`);

await Promise.all([uploader.close(), pinger.close()]);
await app.close();
