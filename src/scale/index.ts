/** Every core: the threaded server (worker_threads + SO_REUSEPORT) and its cross-thread bus. */
export { serveThreads, ThreadedServer } from './serve-threads.js';
export type { ServeThreadsOptions, ThreadsOptions, ThreadExit, ThreadedStats, ThreadPublishResult } from './serve-threads.js';
export type { ThreadContext, ThreadStats } from './thread-types.js';
export type { BusLimits, LinkStats } from './bus-link.js';
export type { BusStats } from './bus-node.js';
