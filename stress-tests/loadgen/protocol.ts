// Messages between the main thread and the load workers, and the shared progress counters.

import type { Options } from './options.js';

export interface WorkerInit {
  opts: Options;
  index: number;
  /** Connections this worker owns. */
  conns: number;
  /** Float64Array view: COUNTERS slots per worker, written by the worker a few times a second. */
  counters: SharedArrayBuffer;
}

export const Counter = {
  SentMsgs: 0,
  RecvMsgs: 1,
  SentBytes: 2,
  RecvBytes: 3,
  Open: 4,
  Errors: 5,
  Done: 6,
} as const;
export const COUNTERS = 8;

export type ToWorker = { type: 'go' } | { type: 'start' } | { type: 'trigger' } | { type: 'stop' };

export interface WorkerResult {
  sentMsgs: number;
  recvMsgs: number;
  sentBytes: number;
  recvBytes: number;
  /** Counters over the measured window only (from 'start' to 'stop', echo mode). */
  windowMs: number;
  windowSentMsgs: number;
  windowRecvMsgs: number;
  windowSentBytes: number;
  windowRecvBytes: number;
  opened: number;
  failed: number;
  errors: number;
  closedEarly: number;
  deflateAccepted: number;
  openMs: number;
  hist: Float64Array;
  firstError: string;
  /** burst-subscribe: absolute time (ms since epoch, fractional) the last client got its last copy. */
  burstDoneAt: number;
  /** Data messages received with RSV1 set (permessage-deflate compressed). */
  compressedMsgs: number;
  burstComplete: number;
  /** conn-churn: absolute start and finish. */
  churnStartAt: number;
  churnDoneAt: number;
  churnCompleted: number;
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'opened'; opened: number; failed: number; at: number; firstError: string }
  | { type: 'triggered'; at: number }
  | { type: 'burst-done'; at: number }
  | { type: 'churn-done'; at: number }
  | { type: 'result'; result: WorkerResult }
  | { type: 'fatal'; error: string };

/** Wall-clock milliseconds with sub-millisecond precision, comparable across threads. */
export function absoluteNow(): number {
  return performance.timeOrigin + performance.now();
}
