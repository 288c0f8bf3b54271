/**
 * `npm run example:jobs [-- --jobs N] [--capacity N]`: a bounded job queue per connection, built on
 * `Channel`, with backpressure all the way to the client.
 *
 * Each connection gets a `Channel` of capacity N and a worker task that takes jobs from it one at a
 * time (the "work" is a 10 ms timer, then a reply). `handleData` returns `jobs.send(...)`: while the
 * channel is full that promise is pending, and the connection stops reading the socket until it
 * settles, so a client that sends faster than the worker works is held back by TCP instead of
 * growing a queue in the server. When the connection closes, `close()` on the channel and the
 * AbortSignal end the worker's wait and any pending `send`.
 */
import { Channel, connect, Server } from '../../src/index.js';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const jobCount = arg('jobs', 20);
const capacity = arg('capacity', 4);

interface JobQueue {
  jobs: Channel<string>;
  abort: AbortController;
  /** The most jobs the channel held at once (it can never exceed its capacity). */
  maxQueued: number;
}

const server = new Server<JobQueue>();
server
  .handleUpgrade(() => ({ data: { jobs: new Channel<string>(capacity), abort: new AbortController(), maxQueued: 0 } }))
  .handleOpen((conn) => {
    // The worker: one job at a time, until the channel is closed.
    void (async () => {
      const q = conn.data;
      try {
        for await (const job of q.jobs) {
          await new Promise((r) => setTimeout(r, 10));
          await conn.write(`done: ${job.toUpperCase()}`);
        }
      } catch {
        // the connection closed while a reply was being written
      }
    })();
  })
  .handleData((conn, data) => {
    const q = conn.data;
    const sent = q.jobs.send(data.toString(), q.abort.signal);
    q.maxQueued = Math.max(q.maxQueued, q.jobs.length);
    return sent; // pending while the channel is full: the connection reads no more until then
  })
  .handleClose((conn) => {
    conn.data.abort.abort();
    conn.data.jobs.close();
    console.log(`server: the job queue held at most ${conn.data.maxQueued} of ${capacity} jobs`);
  });

const { port } = await server.listen({ host: '127.0.0.1', port: Number(process.env['PORT'] ?? 0) });
console.log(`wschan jobs example on ws://127.0.0.1:${port}: ${jobCount} jobs, a queue of ${capacity} per connection`);

// A client that sends every job at once, then reads the replies.
const client = await connect(`ws://127.0.0.1:${port}`);
const started = performance.now();
for (let i = 1; i <= jobCount; i++) void client.write(`job ${i}`);
let got = 0;
for await (const m of client) {
  got++;
  console.log(`client: ${m.data.toString()}`);
  if (got === jobCount) break;
}
console.log(`client: ${got} replies in order in ${Math.round(performance.now() - started)} ms`);
await client.close();
await server.close();
