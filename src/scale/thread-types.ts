/**
 * What the main thread and the threads of a threaded server say to each other over the worker's
 * own port (the bus between threads has its own ports: src/scale/bus-link.ts), and the public
 * types an application module sees.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ServerOptionsInput } from '../server/options.js';
import type { BusLimits, LinkStats } from './bus-link.js';

/** The second argument of the application's setup function, in each thread. */
export interface ThreadContext {
  /** This thread's slot, 0 .. threads-1 (a replacement takes the slot of the thread it replaces). */
  readonly index: number;
  /** How many threads the server runs. */
  readonly threads: number;
  /** node:worker_threads' threadId of this thread (a replacement gets a new one). */
  readonly threadId: number;
  /** `appData` given to serveThreads (structured-cloned; a SharedArrayBuffer is shared). */
  readonly data: unknown;
  /** Subscribers of `topic` on every thread of the server. */
  subscriberCount(topic: string): Promise<number>;
}

/** Counters of one thread. */
export interface ThreadStats {
  index: number;
  threadId: number;
  /** Open connections. */
  connections: number;
  /** Publish, publishTo and broadcast calls made on this thread (by the application or the bus). */
  published: number;
  /** Data messages handed to sockets. */
  delivered: number;
  /** Data messages dropped by the connections' overflow policies. */
  dropped: number;
  /** CPU time of this thread in µs (`process.threadCpuUsage()`; undefined on a Node without it, before 22.19 / 23.9). */
  cpu: { user: number; system: number } | undefined;
  /** The bus at this thread: messages sent to and received from other threads, and dropped. */
  bus: { sent: number; received: number; dropped: number; droppedBytes: number; queuedBytes: number; peakQueuedBytes: number; links: LinkStats[] };
}

export interface ThreadData {
  app: string;
  index: number;
  threads: number;
  data: unknown;
  serverOptions: ServerOptionsInput | undefined;
  port: number;
  host: string | undefined;
  reusePort: boolean;
  limits: BusLimits;
  links: Array<{ peer: number; port: MessagePort }>;
}

/** Main → thread. */
export type ToThread =
  | { k: 'link'; peer: number; port: MessagePort }
  | { k: 'unlink'; peer: number }
  | { k: 'stats'; id: number }
  | { k: 'count'; id: number; topic: string }
  | { k: 'counted'; id: number; value: number }
  | { k: 'close' };

/** Thread → main. */
export type FromThread =
  | { k: 'listening'; port: number; address: string }
  | { k: 'reply'; id: number; value: unknown }
  | { k: 'count'; id: number; topic: string };

/** The main thread's id on the bus. */
export const MAIN_PEER = -1;
