/**
 * The broadcast example's handlers as a module every thread loads (`serveThreads`): the same
 * handlers as the single-thread server, and the page's own node:http server, which the thread
 * listens with (the setup function returns it). The page names the thread that served it.
 */
import type { Server as HttpServer } from 'node:http';
import type { ThreadContext } from '../../src/index.js';
import { createPageServer, setupBroadcast, type BroadcastServer } from './server.js';

export default function setup(server: BroadcastServer, thread: ThreadContext): HttpServer {
  const quiet = (thread.data as { quiet?: boolean } | undefined)?.quiet === true;
  setupBroadcast(server, quiet ? () => {} : (line) => console.log(`[thread ${thread.index}] ${line}`), thread.index);
  return createPageServer(server, thread.index);
}
