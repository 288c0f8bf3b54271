import { Deadlines, type DeadlineNode } from '../conn/deadlines.js';
import type { Duplex } from 'node:stream';
import type { RequestHeadReader } from '../protocol/http-request.js';
import type { UpgradeRequest } from '../protocol/handshake.js';

/**
 * A handshake in progress: a listen() socket whose request head is still arriving, or a request
 * whose async `handleUpgrade` has not decided yet. It is a node of `PendingHandshakes`' list.
 */
export class PendingHandshake implements DeadlineNode<PendingHandshake> {
  prev: PendingHandshake | undefined = undefined;
  next: PendingHandshake | undefined = undefined;
  /** Its deadline (performance.now(), ms): for listen(), counted from when the TCP connection was accepted. */
  at = 0;
  /** listen(): the request head being read, and the server's function that feeds it (this, chunk). */
  reader: RequestHeadReader | undefined;
  onHead: ((p: PendingHandshake, chunk: Buffer) => void) | undefined = undefined;
  /** Set once the request is read, while handleUpgrade decides. */
  req: UpgradeRequest | undefined = undefined;
  /** listen(): a plain HTTP request (not a handshake) whose async `handleRequest` has not answered. */
  plain = false;
  /** listen(): the socket was paused while handleUpgrade decides (it must be resumed after). */
  paused = false;
  /** The deadline passed, or close() ended it: whatever is decided later is ignored. */
  over = false;

  /** listen(): the socket's data while the head is read (see listenEarly in conn.ts). */
  receive(_socket: Duplex, chunk: Buffer): void {
    this.onHead?.(this, chunk);
  }

  constructor(
    readonly socket: Duplex,
    reader?: RequestHeadReader,
  ) {
    this.reader = reader;
  }
}

/**
 * The handshakes in progress and their one deadline, `timeout` ms after each started: a
 * `Deadlines` list (one unref'd interval for all of them, sweeping every max(100, timeout / 4)
 * ms). A socket that closed while its head was still arriving leaves at the next sweep, silently:
 * it is not kept until its deadline.
 */
export class PendingHandshakes extends Deadlines<PendingHandshake> {
  /** `onExpire` is called for each handshake past its deadline, after it has left the list. */
  constructor(timeout: number, onExpire: (p: PendingHandshake) => void) {
    super(timeout, onExpire, { minGranularity: 100, drop: (p) => p.req === undefined && p.socket.destroyed });
  }
}
