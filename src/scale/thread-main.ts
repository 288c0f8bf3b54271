/**
 * The entry of each thread of a threaded server (src/scale/serve-threads.ts): a `Server` made from
 * the options the main thread passed, its bus to the other threads attached, the application's
 * setup function run on it, then a listener on the shared port (SO_REUSEPORT).
 */
import { Server as NetServer, type AddressInfo } from 'node:net';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { Server } from '../server/server.js';
import type { TopicBus } from '../server/bus.js';
import { ErrorCode, WebSocketError } from '../protocol/errors.js';
import { BusNode } from './bus-node.js';
import type { FromThread, ThreadContext, ThreadData, ThreadStats, ToThread } from './thread-types.js';

const wd = workerData as ThreadData;
const port = parentPort!;
const server = new Server<unknown>(wd.serverOptions);

// Messages from other threads go to the local subscribers only (relay false): their publisher has
// already sent them to every thread and to every bus attached where it was published.
const node = new BusNode({
  limits: wd.limits,
  server: true,
  deliver: (topic, data, isBinary, key) => void server.deliver(topic, data, { isBinary, key }, bus, false),
});
const bus: TopicBus = {
  topicAdded: (topic) => node.addTopic(topic),
  topicRemoved: (topic) => node.removeTopic(topic),
  forward: (topic, data, isBinary, key) => void node.forward(topic, data, isBinary, key),
};
for (const l of wd.links) node.addPeer(l.peer, l.port);
server.attachBus(bus);

/** The listener the setup function returned, if it did. */
let listener: NetServer | undefined;
let nextAsk = 0;
const asks = new Map<number, (n: number) => void>();
const post = (msg: FromThread): void => port.postMessage(msg);

const context: ThreadContext = {
  index: wd.index,
  threads: wd.threads,
  threadId,
  data: wd.data,
  subscriberCount(topic: string): Promise<number> {
    const id = nextAsk++;
    return new Promise((resolve) => {
      asks.set(id, resolve);
      post({ k: 'count', id, topic });
    });
  },
};

function stats(): ThreadStats {
  const s = server.stats;
  const cpu = (process as { threadCpuUsage?: () => { user: number; system: number } }).threadCpuUsage?.();
  return { index: wd.index, threadId, connections: server.clientCount, published: s.published, delivered: s.delivered, dropped: s.dropped, cpu, bus: node.stats() };
}

port.on('message', (msg: ToThread) => {
  switch (msg.k) {
    case 'link':
      node.addPeer(msg.peer, msg.port);
      break;
    case 'unlink':
      node.removePeer(msg.peer);
      break;
    case 'stats':
      post({ k: 'reply', id: msg.id, value: stats() });
      break;
    case 'count':
      post({ k: 'reply', id: msg.id, value: server.subscriberCount(msg.topic) });
      break;
    case 'counted':
      asks.get(msg.id)?.(msg.value);
      asks.delete(msg.id);
      break;
    case 'close':
      void server.close().then(async () => {
        if (listener !== undefined) {
          const l = listener;
          const closed = new Promise<void>((resolve) => l.close(() => resolve()));
          (l as { closeAllConnections?: () => void }).closeAllConnections?.();
          await closed;
        }
        node.close();
        // The application's timers must not keep a closed thread alive.
        process.exit(0);
      });
      break;
  }
});

const mod = (await import(wd.app)) as { default?: unknown; setup?: unknown };
const setup = typeof mod.default === 'function' ? mod.default : mod.setup;
if (typeof setup !== 'function') {
  throw new WebSocketError(ErrorCode.InvalidArgument, `${wd.app} must export a setup function (export default function (server, thread) { ... })`);
}
const own = await (setup as (s: Server<unknown>, t: ThreadContext) => unknown)(server, context);
let addr: AddressInfo;
if (isNetServer(own)) {
  // The setup function made its own listener (a node:http server serving pages, with the Server
  // attached to it): the thread listens with that one.
  listener = own;
  await new Promise<void>((resolve, reject) => {
    own.once('error', reject);
    // reusePort: checked by serveThreads (Node >= 22.12); @types/node 20 does not know it yet.
    const opts: { port: number; host?: string; reusePort?: boolean } = { port: wd.port, reusePort: wd.reusePort };
    if (wd.host !== undefined) opts.host = wd.host;
    own.listen(opts, () => {
      own.off('error', reject);
      resolve();
    });
  });
  addr = own.address() as AddressInfo;
} else {
  addr = await server.listen({ port: wd.port, host: wd.host, reusePort: wd.reusePort });
}
post({ k: 'listening', port: addr.port, address: addr.address });

function isNetServer(x: unknown): x is NetServer {
  return x instanceof NetServer;
}
