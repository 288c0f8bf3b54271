/**
 * The broadcast example: one Server attached to a node:http server that also serves a web page.
 * Every client subscribes to the topic `ticks` when it opens, and every `interval` ms the server
 * publishes a tick on it. The tick is framed once and the same buffer goes to every subscriber's
 * outbox; a client that cannot keep up gets the overflow policy (here: drop the oldest ticks,
 * since only the latest matters), never unbounded memory.
 *
 * No locks are needed for the connection set: JavaScript runs one callback at a time, and the
 * server's `connections` set is updated before handleOpen and after handleClose.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type ServerOptionsInput } from '../../src/index.js';
import { renderPage } from './page.js';

export interface BroadcastOptions {
  port?: number;
  host?: string;
  /** Milliseconds between ticks. */
  interval?: number;
  log?: (line: string) => void;
}

export interface BroadcastDemo {
  server: Server<{ joined: number; agent: string }>;
  http: HttpServer;
  url: string;
  close(): Promise<void>;
}

/** The broadcast server's options (also each thread's, in examples/broadcast/threaded.ts). */
export const BROADCAST_OPTIONS = {
  overflow: 'drop-oldest',
  maxQueuedFrames: 64,
  maxQueuedBytes: 64 * 1024,
  pingInterval: 5_000,
  // permessage-deflate without context takeover: one compressed frame serves every client of a
  // broadcast, and an idle client holds no compressor. Ticks are under the 1 KiB threshold, so
  // they go uncompressed; larger messages would not.
  deflate: { mode: 'shared' },
} satisfies ServerOptionsInput;

export type BroadcastServer = Server<{ joined: number; agent: string }>;

/**
 * The handlers, the same on one thread or many: every client subscribes to `ticks` when it opens.
 * With `thread` (threaded), each client is first told which thread serves it.
 */
export function setupBroadcast(server: BroadcastServer, log: (line: string) => void, thread?: number): void {
  server
    // The request (an UpgradeRequest) is there to decide on; here it only names the client.
    .handleUpgrade((req) => ({ data: { joined: Date.now(), agent: String(req.headers['user-agent'] ?? 'no User-Agent') } }))
    .handleOpen((conn) => {
      if (thread !== undefined) void conn.write(JSON.stringify({ type: 'welcome', thread }));
      conn.subscribe('ticks');
      const ext = conn.extensions ? `, ${conn.extensions}` : '';
      log(`client ${conn.id} joined from ${conn.remoteAddress}, ${conn.data.agent} (${server.clientCount} connected${ext})`);
    })
    .handleData((conn, data, isBinary) => {
      // The page measures its round-trip time with an application-level ping (browsers cannot
      // send WebSocket Ping frames): answer it on this connection only.
      if (!isBinary && data.includes('"ping"')) return conn.write(data, false);
      return undefined;
    })
    .handleClose((conn, info) => log(`client ${conn.id} left: ${info.code}${info.reason ? ` ${info.reason}` : ''} (${server.clientCount} connected)`))
    .handleError((conn, err) => log(`client ${conn.id}: ${err.code}: ${err.message}`));
}

/** The node:http server of the page, with `server` attached for the WebSocket upgrades. */
export function createPageServer(server: BroadcastServer, thread?: number): HttpServer {
  const page = renderPage(thread);
  const http = createServer((req, res) => {
    if (req.url === '/' || req.url === '/index.html') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(page);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
    }
  });
  server.attach(http);
  return http;
}

export async function startBroadcastServer(options: BroadcastOptions = {}): Promise<BroadcastDemo> {
  const log = options.log ?? ((line: string) => console.log(line));
  const server: BroadcastServer = new Server(BROADCAST_OPTIONS);
  setupBroadcast(server, log);
  const http = createPageServer(server);
  // A listen error (EADDRINUSE...) rejects instead of being an unhandled 'error' event.
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 8080, options.host ?? '127.0.0.1', () => {
      http.off('error', reject);
      resolve();
    });
  });
  const addr = http.address() as AddressInfo;

  let seq = 0;
  const ticker = setInterval(() => {
    seq++;
    server.publish('ticks', JSON.stringify({ type: 'tick', seq, time: Date.now(), clients: server.subscriberCount('ticks') }));
  }, options.interval ?? 100);

  return {
    server,
    http,
    url: `ws://${addr.address}:${addr.port}/`,
    async close() {
      clearInterval(ticker);
      await server.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
