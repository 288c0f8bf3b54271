// examples/threads/main.ts: the same handlers on every core (Node >= 22.12 for threads > 1).
import { serveThreads } from '../../src/index.js';

const server = await serveThreads(new URL('./app.js', import.meta.url), {
  threads: Number(process.env['THREADS'] ?? 2), // default: os.availableParallelism()
  port: Number(process.env['PORT'] ?? 8080),
  host: '127.0.0.1',
  maxQueuedFrames: 256, // any Server option, for every thread
  onThreadExit: (e) => console.error(`thread ${e.index} died (${String(e.error)}); replaced`),
});
console.log(`listening on ws://127.0.0.1:${server.port} on ${server.threads} threads`);

server.publish('chat', 'hello from the main thread'); // reaches every thread's subscribers
console.log(await server.subscriberCount('chat')); // summed over the threads
const { total, threads } = await server.stats(); // connections, delivered, dropped, bus counters
console.log(total, threads.length);
process.on('SIGTERM', () => void server.close()); // 1001 to every connection, every thread
