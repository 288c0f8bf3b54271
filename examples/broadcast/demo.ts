/**
 * `npm start`: the broadcast server plus one Node client in the same process, so you can see
 * messages flow; open the printed URL in a browser to add more clients.
 *
 *   npm start                       # runs until Ctrl-C
 *   npm start -- --seconds 5        # stops by itself (the test uses this)
 *   npm start -- --threads 2        # on 2 threads (Node >= 22.12): the page names its thread
 *   PORT=9000 npm start
 */
import { startBroadcastServer } from './server.js';
import { startThreadedBroadcast } from './threaded.js';
import { runTickClient } from './client.js';

const argv = process.argv.slice(2);
const numberArg = (name: string): number | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : undefined;
};
const seconds = numberArg('--seconds');
const threads = numberArg('--threads');
const port = process.env['PORT'] !== undefined ? Number(process.env['PORT']) : 8080;
const host = process.env['HOST'] ?? '127.0.0.1';

const start = threads === undefined ? startBroadcastServer({ port, host }) : startThreadedBroadcast({ port, host, threads });
const demo = await start.catch((err: NodeJS.ErrnoException) => {
  // A busy port is the usual first-run problem: say which, and how to choose another, in one line.
  if (err.code !== 'EADDRINUSE' && err.code !== 'EACCES') throw err;
  const why = err.code === 'EADDRINUSE' ? 'is already in use' : 'needs privileges this process lacks';
  console.error(`wschan demo: port ${port} on ${host} ${why} (${err.code}); choose another with PORT=<port> npm start (PORT=0 picks a free one)`);
  process.exit(1);
});
const http = demo.url.replace(/^ws/, 'http');
const where = threads === undefined ? '' : ` on ${threads} threads`;
console.log(`wschan broadcast demo${where}: WebSocket ${demo.url}, web page ${http}`);
console.log('a tick is published every 100 ms to every client; Ctrl-C to stop');

const client = runTickClient(demo.url, { every: 10 });
const stop = async (): Promise<void> => {
  await demo.close();
  const { received } = await client;
  console.log(`demo stopped: the Node client received ${received} ticks`);
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
if (seconds !== undefined && Number.isFinite(seconds)) setTimeout(() => void stop(), seconds * 1000);
