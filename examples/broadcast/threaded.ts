/**
 * The broadcast example on several threads (`npm start -- --threads N`): every thread runs the same
 * handlers and serves the page on the same port (serveThreads, SO_REUSEPORT), and the main thread
 * publishes the ticks once: the bus carries each tick to every thread that has a subscriber, and
 * each thread frames it once for its own clients. `clients` counts the subscribers on every thread.
 */
import { serveThreads, type ThreadedServer } from '../../src/index.js';
import { BROADCAST_OPTIONS } from './server.js';

export interface ThreadedBroadcastOptions {
  threads?: number;
  port?: number;
  host?: string;
  /** Milliseconds between ticks. */
  interval?: number;
  /** No line per client joining and leaving. */
  quiet?: boolean;
}

export interface ThreadedBroadcastDemo {
  server: ThreadedServer;
  url: string;
  close(): Promise<void>;
}

export async function startThreadedBroadcast(options: ThreadedBroadcastOptions = {}): Promise<ThreadedBroadcastDemo> {
  const server = await serveThreads(new URL('./thread-app.js', import.meta.url), {
    ...BROADCAST_OPTIONS,
    threads: options.threads,
    port: options.port ?? 8080,
    host: options.host ?? '127.0.0.1',
    appData: { quiet: options.quiet === true },
  });
  let seq = 0;
  let clients = 0;
  const ticker = setInterval(() => {
    seq++;
    server.publish('ticks', JSON.stringify({ type: 'tick', seq, time: Date.now(), clients }));
    // The count of the whole server comes from every thread (a round trip): it shows in the next tick.
    void server.subscriberCount('ticks').then((n) => (clients = n));
  }, options.interval ?? 100);
  return {
    server,
    url: `ws://${server.address}:${server.port}/`,
    async close() {
      clearInterval(ticker);
      await server.close();
    },
  };
}
