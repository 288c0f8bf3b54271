// The global `Buffer` is an accessor on globalThis (a getter call per use); the module binding is
// a constant. toBuffer() per write read it: 1.2% of the small-echo profile was that getter.
import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { CloseCode, MAX_CONTROL_PAYLOAD, Opcode, type Role } from '../protocol/constants.js';
import { ConnectionError, ErrorCode, ProtocolError, WebSocketError } from '../protocol/errors.js';
import { encodeClosePayload, parseClosePayload } from '../protocol/close.js';
import { DEFAULT_MAX_FRAGMENTS, FrameParser, ParseStatus, type Frame } from '../protocol/frame-parser.js';
import { copySmall, frameHeaderSize, writeFrame, writeFrameHeader } from '../protocol/frame-encoder.js';
import { MessageAssembler, type Inflater } from '../protocol/message-assembler.js';
import { kHeldBuffers, type CodecJob } from '../protocol/deflate-codec.js';
import { applyMask, defaultMaskKeys, type MaskKeySource } from '../protocol/mask.js';
import { isValidUtf8 } from '../protocol/utf8.js';
import { Channel } from './channel.js';
import { runCodecJob } from './codec-scheduler.js';
import { Deadlines, type DeadlineNode } from './deadlines.js';
import { connCloseChannel, connOpenChannel } from './diagnostics.js';
import { reportError } from './report.js';
import { transportOf, type Transport } from './transport.js';
import { batchBuffer, settle, sharesSlab } from './write-slab.js';

export type ConnState = 'connecting' | 'open' | 'closing' | 'closed';

/**
 * What happens to a write when the outbox is full (over `maxQueuedFrames` or `maxQueuedBytes`):
 * - `wait`: `write()` waits for room (bounded by `maxWaiters`); `tryWrite()` answers `'full'`.
 * - `drop-newest`: the new message is not queued; the result says `'dropped'`.
 * - `drop-oldest`: the oldest queued data messages are dropped to make room (never control frames).
 * - `close`: the connection is closed with `overflowCloseCode` (1008 or 1013); the write rejects.
 * - `conflate`: a published message with a `key` replaces the unsent message with the same key
 *   still in the outbox, full or not (the outbox does not grow). A message without a key, or one
 *   whose key matches nothing queued, meets a full outbox as under `drop-oldest`.
 *   Under the other policies keys are ignored: every message takes its own place.
 */
export type OverflowPolicy = 'wait' | 'drop-newest' | 'drop-oldest' | 'close' | 'conflate';
export type WriteResult = 'queued' | 'dropped';
export type TryWriteResult = 'queued' | 'dropped' | 'full' | 'closed';
/** What a publish did on one connection: `conflated` means it replaced a queued message with the same key. */
export type PublishWriteResult = 'queued' | 'conflated' | 'dropped' | 'closed';
/** A publish's outcomes summed over its subscribers (the fields of server.ts's PublishResult). */
export interface PublishCounts {
  queued: number;
  conflated: number;
  dropped: number;
  closed: number;
}

/**
 * Where a server keeps its topics. A Conn made by a Server has one; a client's Conn has none, and
 * `subscribe` throws there. The host owns the registry; the Conn only forwards to it.
 */
export interface TopicHost {
  subscribe(conn: Conn<any>, topic: string): boolean;
  unsubscribe(conn: Conn<any>, topic: string): boolean;
  topicsOf(conn: Conn<any>): ReadonlySet<string>;
}

export interface CloseInfo {
  /** The code from the peer's Close frame; else the code we failed the connection with; else 1006. */
  code: number;
  reason: string;
  /** Both Close frames were exchanged and no error ended the connection. */
  wasClean: boolean;
  /** What ended the connection, when something went wrong. */
  error: WebSocketError | undefined;
  /** Data frames that were queued (or waiting to be) and never written to the socket. */
  unsent: number;
}

export interface Message {
  data: Buffer;
  isBinary: boolean;
}

/**
 * The callbacks a connection reports to. One object is shared by every connection of a server;
 * handlers receive the connection as their first argument, so no closure is made per connection.
 */
export interface ConnHandlers<D = unknown> {
  handleOpen?: ((conn: Conn<D>) => void | Promise<void>) | undefined;
  /**
   * A whole message. `data` is valid UTF-8 when `isBinary` is false. It may be a view into the
   * socket's read buffer: copy it if you keep it long. Return a Promise to process messages one at
   * a time: the next message waits for it, and the socket is paused when `inboxSize` fill up.
   */
  handleData?: ((conn: Conn<D>, data: Buffer, isBinary: boolean) => unknown) | undefined;
  handlePing?: ((conn: Conn<D>, payload: Buffer) => void) | undefined;
  /** Pongs answering your own pings (and unsolicited ones); the keepalive's own pongs only update `conn.rtt`. */
  handlePong?: ((conn: Conn<D>, payload: Buffer) => void) | undefined;
  handleClose?: ((conn: Conn<D>, info: CloseInfo) => void) | undefined;
  handleError?: ((conn: Conn<D>, error: WebSocketError) => void) | undefined;
  /** Every frame as it is parsed, before assembly (a fresh object per frame: for debugging and tools). */
  handleFrame?: ((conn: Conn<D>, frame: Frame) => void) | undefined;
}

export interface ConnOptions {
  maxMessageSize: number;
  maxFrameSize: number;
  maxQueuedFrames: number;
  maxQueuedBytes: number;
  overflow: OverflowPolicy;
  overflowCloseCode: 1008 | 1013;
  maxWaiters: number;
  inboxSize: number;
  /**
   * The inbound budget in bytes: what the parser, the assembler, the inbox and the message an async
   * handler is working on hold for this connection. Reading pauses when it is reached (and a
   * message is waiting downstream to release it); a single message up to maxMessageSize can always complete.
   */
  maxInboundBytes: number;
  /** Most frames in one message (the first one included); more closes with 1009. */
  maxFragments: number;
  /** A frame or fragmented message must be whole within this many ms of its first byte; else 1008 (0: no deadline). */
  messageTimeout: number;
  pingInterval: number;
  pongTimeout: number;
  closeTimeout: number;
}

export const defaultConnOptions: ConnOptions = {
  maxMessageSize: 16 * 1024 * 1024,
  maxFrameSize: 16 * 1024 * 1024,
  maxQueuedFrames: 4096,
  maxQueuedBytes: 4 * 1024 * 1024,
  overflow: 'wait',
  overflowCloseCode: 1008,
  maxWaiters: 1024,
  inboxSize: 64,
  maxInboundBytes: 16 * 1024 * 1024,
  maxFragments: DEFAULT_MAX_FRAGMENTS,
  messageTimeout: 60_000,
  pingInterval: 0,
  pongTimeout: 10_000,
  closeTimeout: 5_000,
};

/** A negotiated permessage-deflate codec, as the connection uses it. */
export interface DeflateCodec extends Inflater {
  compress(data: Uint8Array): Buffer;
  /** The payload at once (small messages), or a job that runs over later turns (large ones). */
  startCompress(data: Uint8Array): Buffer | CodecJob<Buffer | WebSocketError>;
  /**
   * `decompress`, or a job for a frame whose output is large; null when such a frame needs more
   * than `room` bytes of the inbound budget (call `continueInflate` once downstream released some).
   */
  startInflate(data: Uint8Array, fin: boolean, maxBytes: number, room?: number): Buffer | ProtocolError | CodecJob<Buffer | ProtocolError> | null;
  continueInflate(room: number): Buffer | ProtocolError | CodecJob<Buffer | ProtocolError> | null;
  /** Bytes held for the frame being inflated (compressed input, output chunks, a join in progress). */
  readonly held: number;
  /** Tests: the same, found by walking the buffers. */
  [kHeldBuffers](): { input: Uint8Array; output: number };
  close(): void;
}

/**
 * Tests (issue 15, memory): what a connection really holds inbound, `inboundBytes` with the
 * codec's part found by walking its buffers (and a compressed payload the parser still
 * references counted too), to compare with what the budget counts. Not a Conn member: not public.
 */
export let inboundHeldBuffers: (conn: Conn<any>) => number;

export interface ConnInit<D> {
  socket: Duplex;
  role: Role;
  options: ConnOptions;
  handlers: ConnHandlers<D>;
  data: D;
  id?: number;
  protocol?: string | undefined;
  extensions?: string | undefined;
  remoteAddress?: string | undefined;
  /** Bytes read past the handshake. */
  head?: Buffer | undefined;
  /** Internal: the socket has had `listenEarly` (its 'data' and 'error' listeners are ours already). */
  listening?: boolean | undefined;
  /** `paramsKey` null: our compressor keeps its context, so its frames cannot be shared. */
  deflate?: { codec: DeflateCodec; threshold: number; paramsKey: string | null } | undefined;
  /** Client side: where masking keys come from (RFC 6455 §5.3). */
  maskKeys?: MaskKeySource | undefined;
  /** Server side: the topic registry that `subscribe` and `unsubscribe` use. */
  topics?: TopicHost | undefined;
}

// Entry flags in the outbox.
const F_OPCODE = 0x0f;
const F_FRAMED = 0x10; // a whole frame already encoded (broadcast)
const F_RSV1 = 0x20;
/**
 * Above the flag bits, an entry's message count minus one: contiguous broadcast frames queued one
 * after another share one entry (a run, see #tryWriteFrame), so a burst of 100 messages costs each
 * connection one outbox entry instead of 100.
 */
const RUN_SHIFT = 8;
const RUN_ONE = 1 << RUN_SHIFT;
const RUN_MAX = 1 << 30;

/** Payloads at least this large are written by reference (server side) instead of copied into the batch. */
const LARGE = 16 * 1024;
const MAX_PENDING_PONGS = 16;
/** Drop-oldest: compact the outbox once this many dropped slots lead it. */
const COMPACT_AT = 1024;
/** A batch of more messages than this is big: see #emptyOutbox. */
const SMALL_BATCH = 64;
const EMPTY = Buffer.alloc(0);
// The echoed bodies of the usual Close frames (only ever read: copied into the batch).
const CLOSE_NORMAL = Buffer.from([0x03, 0xe8]);
const CLOSE_GOING_AWAY = Buffer.from([0x03, 0xe9]);
// Shared empty queues: a connection makes its own arrays on its first push, so an idle connection
// holds none (10 arrays were 320 B of its ~1.3 KiB). Only the marked sites push, after swapping
// the shared one for a new array; nothing else may write to these.
const NO_DATA: (Buffer | string | undefined)[] = [];
const NO_NUMBERS: number[] = [];
const NO_WAITERS: WriteWaiter[] = [];
const NO_FRAMES: Buffer[] = [];
const NO_TOPICS: ReadonlySet<string> = new Set<string>();

/** Shared, already settled results, so that the common write allocates no Promise. */
const QUEUED: Promise<WriteResult> = Promise.resolve('queued');
const DROPPED: Promise<WriteResult> = Promise.resolve('dropped');
function noop(): void {}
function rejected(error: Error): Promise<never> {
  const p = Promise.reject(error);
  p.catch(noop); // a fire-and-forget write must not crash the process; awaiting still throws
  return p;
}

interface WriteWaiter {
  data: Buffer | string;
  flags: number;
  length: number;
  resolve: (r: WriteResult) => void;
  reject: (e: Error) => void;
}

/**
 * Ids are counted per role, so that a process that is both a server and a client (the demo, a
 * test, a proxy) numbers its server connections 1, 2, 3... whatever its clients do.
 */
const nextId: Record<Role, number> = { server: 1, client: 1 };
const kConn = Symbol('wschan.conn');

/** A closing connection's node in the deadline list of its closeTimeout (made when it starts closing). */
class CloseDeadline implements DeadlineNode<CloseDeadline> {
  prev: CloseDeadline | undefined = undefined;
  next: CloseDeadline | undefined = undefined;
  at = 0;
  constructor(readonly conn: Conn<any>) {}
}
/** A connection's node in the deadline list of its messageTimeout, while a frame or message is in progress. */
class MessageDeadline implements DeadlineNode<MessageDeadline> {
  prev: MessageDeadline | undefined = undefined;
  next: MessageDeadline | undefined = undefined;
  at = 0;
  constructor(readonly conn: Conn<any>) {}
}
/**
 * Internal (server.ts's broadcast; not exported from the package): the per-subscriber steps of a
 * publish, kept off Conn's public surface. Plain functions set once in Conn's static block, so a
 * call costs what a method call did (see bench/RESULTS.md, "Conn internals").
 */
export interface ConnInternals {
  /**
   * undefined when `conn` does not compress `length` bytes; `null` when it does with context
   * takeover (it must compress the message itself); otherwise the key of its parameter set,
   * shared by every connection whose compressed frames are identical.
   */
  deflateKeyFor(conn: Conn<any>, length: number): string | null | undefined;
  /**
   * Queue a frame that is already encoded (unmasked, server side): a broadcast framed once and
   * shared by every subscriber. `payloadLength` is what counts against the outbox byte budget.
   * Publishing never waits: under the policy `wait`, a full outbox drops the frame (counted in
   * `dropped`), as `drop-newest` does. With a `key` under the policy `conflate`, the frame replaces
   * the unsent one with the same key (`'conflated'`).
   */
  tryWriteFrame(conn: Conn<any>, frame: Buffer, payloadLength: number, key?: string): PublishWriteResult;
  /**
   * `tryWriteFrame` on each of `targets`, the outcomes added to `counts`: a publish's whole loop
   * in one function, for a server whose connections compress nothing. A burst is mostly spent
   * before the JIT has optimized this path (each benchmark run is a fresh process), and there every
   * call and every result compared per subscriber costs (bench/RESULTS.md, issue 15, 1,000
   * subscribers).
   */
  fanOutFrame(targets: Iterable<Conn<any>>, frame: Buffer, payloadLength: number, key: string | undefined, counts: PublishCounts): void;
  /** Like `tryWriteFrame` for a payload the connection frames (and compresses) itself. */
  tryPublish(conn: Conn<any>, data: Buffer, isBinary: boolean, key?: string): PublishWriteResult;
  /**
   * A slot for `wschan/typed` (src/typed/endpoint.ts): the connection's typed view, set once, so
   * that each message reads a field instead of looking the connection up in a WeakMap. undefined
   * for an object that is not a Conn.
   */
  typedView(conn: Conn<any>): unknown;
  setTypedView(conn: Conn<any>, view: unknown): void;
}
/** Set in Conn's static block (the only code that can reach its private methods). */
export let connInternals: ConnInternals;

/**
 * Internal (server.ts): what a socket given `listenEarly` holds in its Conn slot until its
 * Conn exists (listen()'s pending handshake): its data goes to `receive`.
 */
export interface EarlyReceiver {
  receive(socket: Duplex, chunk: Buffer): void;
}
/** One property per socket for both phases: adding a second and a third cost map transitions. */
type SlotSocket = Duplex & { [kConn]?: Conn<unknown> | EarlyReceiver | undefined };
let listenEarlyWith: (socket: Duplex, receiver: EarlyReceiver) => void;

/**
 * Internal (listen(); not exported from the package): give a socket the 'data' and 'error'
 * listeners its Conn will use, before the Conn exists. Until then its data goes to `receiver` and
 * its errors are dropped; a Conn made later with `listening: true` adds neither listener again.
 * One pair of listeners for the socket's life, instead of a head reader's and then the Conn's
 * (on, off, on: each an EventEmitter operation per connection).
 */
export function listenEarly(socket: Duplex, receiver: EarlyReceiver): void {
  listenEarlyWith(socket, receiver);
}

/** Internal: stop giving a listenEarly socket's data to its receiver (dropped until a Conn exists). */
export function leaveEarly(socket: Duplex): void {
  (socket as SlotSocket)[kConn] = undefined;
}

/** Internal: whether `socket` has had listenEarly (its 'data' and 'error' listeners are a Conn's). */
export function isEarly(socket: Duplex): boolean {
  return kConn in socket;
}

/**
 * One WebSocket connection: a reader loop (socket → FrameParser → MessageAssembler → handler or
 * inbox) and a writer loop (outbox → one batched socket write per turn of the event loop), joined
 * only through bounded queues.
 *
 * Invariants:
 * - `write()` may be called from any task at any time; it never blocks the reader.
 * - The outbox is bounded in frames and bytes; a full outbox gets the overflow policy.
 * - Control frames (pong, close) go on their own lane, are never dropped, and a pong goes before
 *   queued data. A Close frame goes after the data queued before `close()` was called.
 * - Exactly one Close frame is ever sent; `close()` is idempotent.
 * - Every wait (a `write` waiting for room, the async iterator) ends when the connection closes.
 */
export class Conn<D = undefined> implements AsyncIterable<Message> {
  readonly id: number;
  readonly role: Role;
  /**
   * The peer's IP address. Read from the socket on first use (no getpeername per connection that
   * never asks) and kept; read it while the connection is open (handleOpen, say) if you need it
   * after the socket has gone, when it can no longer be asked.
   */
  get remoteAddress(): string | undefined {
    if (this.#remoteAddress === null) this.#remoteAddress = (this.#socket as Duplex & { remoteAddress?: string }).remoteAddress;
    return this.#remoteAddress;
  }
  #remoteAddress: string | undefined | null;
  /** wschan/typed's view of this connection (connInternals.typedView). */
  #typedView: unknown = undefined;
  /** `'http2'` when the connection is a stream of an HTTP/2 session (RFC 8441), else `'http1'`. */
  get transport(): Transport {
    return transportOf(this.#socket);
  }
  readonly protocol: string | undefined;
  readonly extensions: string | undefined;
  /** Your per-connection context. */
  data: D;
  /** Resolves once, when the connection has closed, with how it closed. */
  get closed(): Promise<CloseInfo> {
    // Made on first use: most connections of a server are never awaited this way.
    if (this.#closed === undefined) {
      const info = this.#closeInfo;
      this.#closed = info !== undefined ? Promise.resolve(info) : new Promise((resolve) => (this.#resolveClosed = resolve));
    }
    return this.#closed;
  }

  /** Round-trip time of the last keepalive ping, in milliseconds (NaN until one is answered). */
  rtt = Number.NaN;
  bytesIn = 0;
  bytesOut = 0;
  messagesIn = 0;
  messagesOut = 0;
  /**
   * Data messages dropped by the overflow policy: refused (`drop-newest`, a publish under `wait`)
   * or evicted from the outbox (`drop-oldest`, `conflate` without a matching key).
   */
  dropped = 0;
  /** Queued messages replaced by a newer one with the same key (policy `conflate`); never sent. */
  conflated = 0;
  /**
   * Data messages handed to the socket by the writer. Once the outbox is empty:
   * messagesOut = delivered + (dropped that were evicted) + conflated + CloseInfo.unsent (outbox part).
   */
  delivered = 0;

  #state: ConnState = 'open';
  readonly #socket: Duplex;
  readonly #opts: ConnOptions;
  readonly #handlers: ConnHandlers<D>;
  readonly #parser: FrameParser;
  /** Made for the first fragmented or compressed message; a one-frame message needs none. */
  #assembler: MessageAssembler | undefined;
  readonly #deflate: { codec: DeflateCodec; threshold: number; paramsKey: string | null } | undefined;
  readonly #maskKeys: MaskKeySource | undefined;
  readonly #topicHost: TopicHost | undefined;
  #closed: Promise<CloseInfo> | undefined;
  // Large compressed messages (src/conn/codec-scheduler.ts): at most one per direction at a time.
  /** The message the writer took from the outbox and is compressing; nothing after it is written until it is. */
  #deflateJob: CodecJob<Buffer | WebSocketError> | undefined;
  /** The frame being inflated; reading is paused until it is, so messages stay in order. */
  #inflateJob: CodecJob<Buffer | ProtocolError> | undefined;
  #inflateFin = false;
  #inflateOpcode = 0;
  /** A large frame waits for room in the inbound budget before it is inflated (codec.continueInflate). */
  #inflateParked = false;
  #resolveClosed: ((info: CloseInfo) => void) | undefined;
  #closeInfo: CloseInfo | undefined;

  // Outbox (data lane): parallel arrays, consumed whole by each flush.
  // Entries are [#qHead, #qTail); the arrays keep their length between flushes (truncating four
  // arrays per flush was 9% of the per-message path), slots past #qTail are undefined or stale numbers.
  #qData: (Buffer | string | undefined)[] = NO_DATA;
  #qTail = 0;
  #qFlags: number[] = NO_NUMBERS;
  #qLen: number[] = NO_NUMBERS;
  #qTime: number[] = NO_NUMBERS;
  /** The last batch the writer took had more than SMALL_BATCH messages (see #emptyOutbox). */
  #bigBatch = false;
  #qHead = 0;
  #qBytes = 0;
  /** Policy `conflate`: key -> index of its unsent entry; made on the first keyed publish, cleared by each flush. */
  #qKeys: Map<string, number> | undefined;
  #waiters: WriteWaiter[] = NO_WAITERS;
  // Control lane.
  #pongs: Buffer[] = NO_FRAMES;
  #pings: Buffer[] = NO_FRAMES;
  #closeFrame: Buffer | undefined;
  #closeSent = false;
  /** We are closing because of an error: the outbox was discarded and TCP ends after our Close frame. */
  #failing = false;
  /** Frames dropped by a close before they could be written. */
  #unsent = 0;

  /** Messages merged into earlier entries (runs): the outbox holds entries + #qExtra messages. */
  #qExtra = 0;
  /** The open run: entry #runAt (the tail) holds frames contiguous in memory up to byte offset #runEnd of its buffer; -1 when none. */
  #runAt = -1;
  #runEnd = 0;
  /** Compressed frames may form runs too: the overflow policy never drops from the front. */
  readonly #runsAnyFrame: boolean;
  #flushScheduled = false;
  /** Batches are built in the shared slab (src/conn/write-slab.ts): a plain TCP socket. */
  readonly #sharesSlab: boolean;
  /** Inside #onData: writes made now are flushed when it returns, not in a nextTick of their own. */
  #reading = false;
  #draining = false;
  /** The 'drain' listener is added the first time the socket refuses more (most never do). */
  #drainListener = false;
  #ended = false;

  // Reader.
  #inputDone = false;
  #readPaused = false;
  #dispatching = false;
  #inbox: Channel<Message> | undefined;
  #closeReceived: { code: number; reason: string } | undefined;
  #error: WebSocketError | undefined;
  /** Bytes of delivered messages not yet released: in the inbox, or held by an async handler or the iterator. */
  #inHeld = 0;
  /** Bytes of the message an async handleData (or the iterator's consumer) is working on. */
  #handlingBytes = 0;
  /**
   * The text message handleData is being called with, for the length of that call: its bytes were
   * checked for UTF-8 as they arrived, so writing the same Buffer back as text (an echo, a relay)
   * skips a second check (18 ns of 145 per 22-byte echo in bench/echo-path.mjs). A handler that
   * changes the bytes in place before writing them back sends what it made (README, write()).
   */
  #handlingText: Buffer | undefined;
  /** Armed while a frame or fragmented message is in progress (messageTimeout). */
  #messageDeadline: MessageDeadline | undefined;

  // Timers.
  /** The closing handshake's deadline (closeTimeout), in the list shared by connections with the same timeout. */
  #closeDeadline: CloseDeadline | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #pongTimer: NodeJS.Timeout | undefined;
  #pingPayload: Buffer | undefined;
  #pingSentAt = 0;
  #pingSeq = 0;

  // Continuations of an async handleData, made the first time one returns a Promise.
  #onHandlerDone: (() => void) | undefined;
  #onHandlerError: ((err: unknown) => void) | undefined;

  // One function per socket event for every connection (the Conn hangs off the socket), instead of
  // five closures per connection: with 10,000 idle connections that is ~1 MiB less heap.
  static #onSocketData: (this: Duplex, chunk: Buffer) => void;
  static #onSocketDrain: (this: Duplex) => void;
  static #onSocketEnd: (this: Duplex) => void;
  static #onSocketClose: (this: Duplex) => void;
  static #onSocketErr: (this: Duplex, err: Error) => void;
  /**
   * Connections whose writer has a turn pending, taken in one nextTick for all of them rather than
   * one nextTick each: a broadcast schedules every subscriber at once, and 1,000 nextTicks were
   * ~9 % of a 1,000-subscriber burst's profile (bench/RESULTS.md, issue 15, 1,000 subscribers).
   * Order is kept: first scheduled, first flushed.
   */
  static #pending: Conn<any>[] = [];
  static #flushPending: () => void;
  /** One deadline list per closeTimeout value in use (a server's connections share one). */
  static #deadlineLists = new Map<number, Deadlines<CloseDeadline>>();
  static #messageDeadlineLists = new Map<number, Deadlines<MessageDeadline>>();
  static #messageDeadlines(timeout: number): Deadlines<MessageDeadline> {
    let list = Conn.#messageDeadlineLists.get(timeout);
    if (list === undefined) {
      list = new Deadlines<MessageDeadline>(timeout, (d) => d.conn.#onMessageTimeout(d));
      Conn.#messageDeadlineLists.set(timeout, list);
    }
    return list;
  }
  static #closeDeadlines(timeout: number): Deadlines<CloseDeadline> {
    let list = Conn.#deadlineLists.get(timeout);
    if (list === undefined) {
      list = new Deadlines<CloseDeadline>(timeout, (d) => d.conn.#onCloseTimeout());
      Conn.#deadlineLists.set(timeout, list);
    }
    return list;
  }
  static {
    inboundHeldBuffers = (conn) => conn.#walkInbound();
    const of = (socket: Duplex): Conn<unknown> => (socket as Duplex & { [kConn]: Conn<unknown> })[kConn];
    this.#onSocketData = function (chunk) {
      const slot = (this as SlotSocket)[kConn];
      if (slot instanceof Conn) slot.#onData(chunk);
      else if (slot !== undefined) slot.receive(this, chunk);
    };
    this.#onSocketDrain = function () {
      of(this).#onDrain();
    };
    this.#onSocketEnd = function () {
      of(this).#onEnd();
    };
    this.#onSocketClose = function () {
      of(this).#finish();
    };
    this.#onSocketErr = function (err) {
      // (Before its Conn exists, an error on a socket given listenEarly is dropped: the socket's
      // 'close' follows, and the handshake in progress ends with it.)
      const slot = (this as SlotSocket)[kConn];
      if (slot instanceof Conn) slot.#onSocketError(err);
    };
    this.#flushPending = () => {
      const pending = Conn.#pending;
      let i = 0;
      try {
        // A connection scheduled while this runs (a flush that admits waiters, say) joins the end.
        for (; i < pending.length; i++) {
          const conn = pending[i]!;
          if (conn.#flushScheduled) conn.#flush();
        }
      } finally {
        // Should a flush throw, the connections after it still get their turn, in the next tick.
        if (i < pending.length) {
          pending.splice(0, i + 1);
          if (pending.length > 0) process.nextTick(Conn.#flushPending);
        } else {
          pending.length = 0;
        }
      }
    };
    connInternals = {
      deflateKeyFor: (conn, length) => conn.#deflateKeyFor(length),
      tryWriteFrame: (conn, frame, payloadLength, key) => conn.#tryWriteFrame(frame, payloadLength, key),
      fanOutFrame: (targets, frame, payloadLength, key, counts) => {
        let queued = 0;
        const visit = (conn: Conn<any>): void => {
          if (conn.#growRun(frame, payloadLength, key)) {
            queued++;
            return;
          }
          const r = conn.#tryWriteFrame(frame, payloadLength, key);
          if (r === 'queued') queued++;
          else counts[r]++;
        };
        // A Set (the server's connections, a topic's subscribers) by forEach, an array by index:
        // until for-of is optimized, each step allocates its result object, 0.8-4 MB per 100,000
        // steps, and a burst's scavenges then copy every young connection (bench/RESULTS.md,
        // issue 15).
        if (targets instanceof Set) targets.forEach(visit);
        else if (Array.isArray(targets)) for (let i = 0; i < targets.length; i++) visit(targets[i] as Conn<any>);
        else for (const conn of targets) visit(conn);
        counts.queued += queued;
      },
      tryPublish: (conn, data, isBinary, key) => conn.#tryPublish(data, isBinary, key),
      typedView: (conn) => (#typedView in conn ? conn.#typedView : undefined),
      setTypedView: (conn, view) => {
        if (#typedView in conn) conn.#typedView = view;
      },
    };
    listenEarlyWith = (socket, receiver) => {
      (socket as SlotSocket)[kConn] = receiver;
      socket.on('data', Conn.#onSocketData);
      socket.on('error', Conn.#onSocketErr);
    };
  }

  constructor(init: ConnInit<D>) {
    this.id = init.id ?? nextId[init.role]++;
    this.role = init.role;
    this.#socket = init.socket;
    this.#sharesSlab = sharesSlab(init.socket);
    this.#runsAnyFrame = init.options.overflow !== 'drop-oldest' && init.options.overflow !== 'conflate';
    this.#opts = init.options;
    this.#handlers = init.handlers;
    this.data = init.data;
    this.protocol = init.protocol;
    this.extensions = init.extensions;
    this.#remoteAddress = init.remoteAddress ?? null;
    this.#deflate = init.deflate;
    this.#maskKeys = init.role === 'client' ? (init.maskKeys ?? defaultMaskKeys) : undefined;
    this.#topicHost = init.topics;
    const o = init.options;
    this.#parser = new FrameParser({
      role: init.role,
      maxFrameSize: o.maxFrameSize,
      maxMessageSize: o.maxMessageSize,
      allowRsv1: init.deflate !== undefined,
      maxFragments: o.maxFragments,
    });

    const socket = init.socket as Duplex & { setNoDelay?: (v: boolean) => void; setTimeout?: (ms: number) => void; timeout?: number };
    socket.setNoDelay?.(true);
    // An idle timeout set before us (an http server's `timeout`, say) must not end a quiet
    // WebSocket; the keepalive is ours to run. (Only when one is set: clearing costs a timer call.)
    if (socket.timeout) socket.setTimeout?.(0);
    (socket as Duplex & { [kConn]: Conn<D> })[kConn] = this;
    if (init.listening !== true) socket.on('data', Conn.#onSocketData);
    // A socket that allows no half-open connection (net's default, and listen()'s) ends itself
    // when the peer's FIN arrives; only a half-open-capable duplex needs our 'end' listener (a
    // second listener next to net's own would cost an array per socket and a copy per 'end').
    if ((socket as Duplex & { allowHalfOpen?: boolean }).allowHalfOpen !== false) socket.on('end', Conn.#onSocketEnd);
    socket.on('close', Conn.#onSocketClose);
    if (init.listening !== true) socket.on('error', Conn.#onSocketErr);
    if (o.pingInterval > 0) this.#startKeepalive();
    if (init.head !== undefined && init.head.length > 0) {
      // Bytes that came with the handshake: parse them once the caller has had the conn. They come
      // before anything the socket already holds (a client may send frames before our 101, and
      // they pile up while an async handleUpgrade runs), so hold the socket until they are parsed.
      const head = init.head;
      socket.pause();
      process.nextTick(() => {
        this.#onData(head);
        if (!this.#readPaused) socket.resume();
      });
    }
    if (connOpenChannel.hasSubscribers) connOpenChannel.publish({ conn: this });
  }

  get state(): ConnState {
    return this.#state;
  }
  /** Data frames waiting in the outbox. */
  get queuedFrames(): number {
    return this.#qTail - this.#qHead + this.#qExtra;
  }
  /** Payload bytes waiting in the outbox. */
  get queuedBytes(): number {
    return this.#qBytes;
  }
  /**
   * Inbound bytes this connection holds now (issue 10): the parser's unparsed and partial payload
   * buffers, the assembler's message in progress, the inbox, and the message an async handleData
   * (or the iterator's consumer) is working on. Reading pauses when it reaches maxInboundBytes.
   */
  get inboundBytes(): number {
    return this.#inHeld + this.#parser.held + (this.#assembler?.held ?? 0) + (this.#deflate?.codec.held ?? 0);
  }

  #walkInbound(): number {
    let n = this.#inHeld + this.#parser.held + (this.#assembler?.held ?? 0);
    const codec = this.#deflate?.codec;
    if (codec === undefined) return n;
    const { input, output } = codec[kHeldBuffers]();
    n += input.length + output;
    const payload = this.#parser.payload;
    if ((this.#inflateJob !== undefined || this.#inflateParked) && payload !== input) n += payload.length;
    return n;
  }
  /** Reading is paused by backpressure: the inbox is full or inboundBytes reached maxInboundBytes. */
  get readingPaused(): boolean {
    return this.#readPaused;
  }
  /** Writers waiting for room (policy `wait`). */
  get waitingWrites(): number {
    return this.#waiters.length;
  }
  /** Bytes handed to the socket and not yet sent by the kernel. */
  get socketBufferedBytes(): number {
    return this.#socket.writableLength;
  }
  /** Age in ms of the oldest message still in the outbox (0 when empty). */
  get oldestQueuedAge(): number {
    if (this.#qHead >= this.#qTail) return 0;
    const t = this.#qTime[this.#qHead]!;
    return t === 0 ? 0 : performance.now() - t;
  }
  /** See `ConnInternals.deflateKeyFor`. */
  #deflateKeyFor(length: number): string | null | undefined {
    const d = this.#deflate;
    if (d === undefined || length < d.threshold || length === 0) return undefined;
    return d.paramsKey;
  }

  // ---------------------------------------------------------------- topics

  /**
   * Receive what the server publishes to `topic`. True if this connection was not subscribed yet;
   * false if it was, or if it is closed (a closed connection holds no subscription). Every
   * subscription ends when the connection closes, before `handleClose` is called.
   * Server side only: a client's connection throws WS_ERR_INVALID_ARGUMENT.
   */
  subscribe(topic: string): boolean {
    const host = this.#topics(topic, 'subscribe');
    if (this.#state === 'closed') return false;
    return host.subscribe(this, topic);
  }

  /** Stop receiving `topic`. True if this connection was subscribed to it. */
  unsubscribe(topic: string): boolean {
    return this.#topics(topic, 'unsubscribe').unsubscribe(this, topic);
  }

  /** The topics this connection is subscribed to now (empty once closed). */
  get topics(): ReadonlySet<string> {
    return this.#topicHost?.topicsOf(this) ?? NO_TOPICS;
  }

  #topics(topic: string, verb: string): TopicHost {
    const host = this.#topicHost;
    if (host === undefined) {
      throw new WebSocketError(
        ErrorCode.InvalidArgument,
        `${verb}() is for connections accepted by a Server (topics live on the server); this ${this.role} connection has none`,
      );
    }
    if (typeof topic !== 'string' || topic.length === 0) {
      throw new WebSocketError(ErrorCode.InvalidArgument, `${verb}() takes a non-empty string topic`);
    }
    return host;
  }

  // ---------------------------------------------------------------- writing

  /** Send a message: a string as text, bytes as binary (or as text when `isBinary` is false). */
  write(data: string | Uint8Array, isBinary?: boolean): Promise<WriteResult> {
    if (typeof data === 'string') return this.#write(data, isBinary === true ? Opcode.Binary : Opcode.Text);
    return this.#write(data, isBinary === false ? Opcode.Text : Opcode.Binary);
  }
  writeText(data: string | Uint8Array): Promise<WriteResult> {
    return this.#write(data, Opcode.Text);
  }
  writeBinary(data: Uint8Array | string): Promise<WriteResult> {
    return this.#write(data, Opcode.Binary);
  }

  /** Queue without waiting. `'full'`: nothing was queued (policy `wait`); `'closed'`: the connection is closing or closed. */
  tryWrite(data: string | Uint8Array, isBinary?: boolean): TryWriteResult {
    const op = typeof data === 'string' ? (isBinary === true ? Opcode.Binary : Opcode.Text) : isBinary === false ? Opcode.Text : Opcode.Binary;
    const payload = typeof data === 'string' ? data : this.#bytes(data, op);
    if (typeof payload !== 'string' && !(payload instanceof Uint8Array)) throw payload;
    const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    if (this.#state !== 'open') return 'closed';
    if (this.#waiters.length === 0 && this.#fits(length)) {
      this.#enqueue(payload, op, length);
      return 'queued';
    }
    return this.#overflow(payload, op, length, false) as TryWriteResult;
  }

  /** See `ConnInternals.tryWriteFrame`. */
  #tryWriteFrame(frame: Buffer, payloadLength: number, key: string | undefined): PublishWriteResult {
    if (this.#growRun(frame, payloadLength, key)) return 'queued';
    if (this.#state !== 'open') return 'closed';
    if (key !== undefined && this.#opts.overflow === 'conflate') return this.#publishKeyed(frame, F_FRAMED, payloadLength, key);
    if (this.#waiters.length === 0 && this.#fits(payloadLength)) {
      this.#enqueue(frame, F_FRAMED, payloadLength);
      // Under drop-oldest (and conflate, which drops the oldest unkeyed messages) only plain frames
      // form runs (RSV1 clear): their payload length is in their header, so #dropOldest can take
      // one message off a run's front. A compressed frame's header does not give the size the
      // byte budget counts; the other policies never take from the front, so any frame may run.
      if ((frame[0]! & 0x40) === 0 || this.#runsAnyFrame) {
        this.#runAt = this.#qTail - 1;
        this.#runEnd = frame.byteOffset + frame.length;
      }
      return 'queued';
    }
    if (this.#opts.overflow === 'wait') {
      this.dropped++;
      return 'dropped';
    }
    return this.#overflow(frame, F_FRAMED, payloadLength, false) as PublishWriteResult;
  }

  /**
   * A burst's common case, tried first and without calls: `frame` starts where the open run's last
   * frame ends (the server encodes the frames of consecutive publishes side by side,
   * src/server/frame-arena.ts), and it may join the run: the run grows instead of the outbox. The
   * bytes are the two frames back to back, so sending the range sends both. The conditions are
   * those of queueing at all (open, nobody waiting, room in the outbox: #fits with the run's entry
   * in it), and no keyed replacement to look for. False: nothing was done, take the general path.
   */
  #growRun(frame: Buffer, payloadLength: number, key: string | undefined): boolean {
    const t = this.#runAt;
    if (frame.byteOffset !== this.#runEnd || t < 0 || t !== this.#qTail - 1 || this.#state !== 'open' || this.#waiters.length !== 0) return false;
    if (this.#qTail - this.#qHead + this.#qExtra >= this.#opts.maxQueuedFrames || this.#qBytes + payloadLength > this.#opts.maxQueuedBytes) return false;
    if (frame.buffer !== (this.#qData[t] as Buffer).buffer || this.#qFlags[t]! >= RUN_MAX) return false;
    if ((frame[0]! & 0x40) !== 0 && !this.#runsAnyFrame) return false;
    if (key !== undefined && this.#opts.overflow === 'conflate') return false;
    this.#runEnd += frame.length;
    this.#qFlags[t]! += RUN_ONE;
    this.#qLen[t]! += payloadLength;
    this.#qBytes += payloadLength;
    this.#qExtra++;
    this.messagesOut++;
    return true;
  }

  /** See `ConnInternals.tryPublish`. */
  #tryPublish(data: Buffer, isBinary: boolean, key: string | undefined): PublishWriteResult {
    if (this.#state !== 'open') return 'closed';
    const op = isBinary ? Opcode.Binary : Opcode.Text;
    if (key !== undefined && this.#opts.overflow === 'conflate') return this.#publishKeyed(data, op, data.length, key);
    if (this.#waiters.length === 0 && this.#fits(data.length)) {
      this.#enqueue(data, op, data.length);
      return 'queued';
    }
    if (this.#opts.overflow === 'wait') {
      this.dropped++;
      return 'dropped';
    }
    return this.#overflow(data, op, data.length, false) as PublishWriteResult;
  }

  /**
   * Policy `conflate`, a message with a key: replace the unsent entry with the same key in place
   * (same position, so order by first arrival is kept), else queue it as any other message.
   * A replacement that would take the outbox over its byte budget is queued as a new message
   * instead (and meets the policy), so the budget holds.
   */
  #publishKeyed(data: Buffer, flags: number, length: number, key: string): PublishWriteResult {
    const keys = this.#qKeys;
    const i = keys?.get(key);
    if (i !== undefined && i >= this.#qHead) {
      const old = this.#qLen[i]!;
      if (length <= old || this.#qBytes - old + length <= this.#opts.maxQueuedBytes) {
        this.#qData[i] = data;
        this.#qFlags[i] = flags;
        this.#qLen[i] = length;
        this.#qBytes += length - old;
        this.messagesOut++;
        this.conflated++;
        return 'conflated';
      }
    }
    let r: PublishWriteResult;
    if (this.#waiters.length === 0 && this.#fits(length)) {
      this.#enqueue(data, flags, length);
      r = 'queued';
    } else {
      r = this.#overflow(data, flags, length, false) as PublishWriteResult;
    }
    if (r === 'queued') (this.#qKeys ??= new Map()).set(key, this.#qTail - 1);
    return r;
  }

  /**
   * Send a Ping (RFC 6455 §5.5.2) with up to 125 bytes of payload. False if the connection is not
   * open, or if 16 Pings already wait to be written (a peer that does not read): the lane is
   * bounded, as every queue is.
   */
  ping(payload: string | Uint8Array = EMPTY): boolean {
    const buf = this.#control(payload);
    if (this.#state !== 'open' || this.#pings.length >= MAX_PENDING_PONGS) return false;
    if (this.#pings === NO_FRAMES) this.#pings = []; // push site
    this.#pings.push(buf);
    this.#schedule();
    return true;
  }

  /** Send an unsolicited Pong (RFC 6455 §5.5.3: a unidirectional heartbeat). */
  pong(payload: string | Uint8Array = EMPTY): boolean {
    const buf = this.#control(payload);
    if (this.#state !== 'open') return false;
    this.#queuePong(buf);
    return true;
  }

  /**
   * Start the closing handshake (RFC 6455 §7.1.2) after the data already queued. Idempotent: only
   * the first call sends a Close frame; every call returns the same `closed` promise. Throws
   * WS_ERR_INVALID_ARGUMENT for a code that may not be sent or a reason over 123 bytes.
   */
  close(code: number = CloseCode.NormalClosure, reason = ''): Promise<CloseInfo> {
    const body = encodeClosePayload(code, reason);
    if (this.#state === 'open') this.#startClose(body, false);
    return this.closed;
  }

  /** Destroy the TCP connection at once, without a closing handshake (reported as 1006). */
  terminate(): void {
    if (this.#state === 'closed') return;
    this.#socket.destroy();
  }

  #control(payload: string | Uint8Array): Buffer {
    const buf = typeof payload === 'string' ? Buffer.from(payload) : toBuffer(payload);
    if (buf.length > MAX_CONTROL_PAYLOAD) {
      throw new WebSocketError(ErrorCode.InvalidArgument, `control frame payload is ${buf.length} bytes; at most 125 allowed`);
    }
    return buf;
  }

  /** Bytes handed to a write, as a Buffer (no copy), checked for UTF-8 when sent as text. */
  #bytes(data: Uint8Array, op: number): Buffer | WebSocketError {
    if (!(data instanceof Uint8Array)) {
      return new WebSocketError(ErrorCode.InvalidArgument, 'write() takes a string, a Buffer or a Uint8Array');
    }
    const buf = toBuffer(data);
    // The text message being handled, written back as it came: checked when it arrived.
    if (op === Opcode.Text && buf !== this.#handlingText && !isValidUtf8(buf)) {
      return new WebSocketError(ErrorCode.InvalidUtf8, 'text message is not valid UTF-8', { closeCode: CloseCode.InvalidPayloadData });
    }
    return buf;
  }

  #write(data: string | Uint8Array, op: number): Promise<WriteResult> {
    // Fast path: no object made for a string or a Buffer that fits (a per-write object was 9% of
    // the small-message echo profile).
    let payload: Buffer | string;
    let length: number;
    if (typeof data === 'string') {
      payload = data;
      length = Buffer.byteLength(data);
    } else {
      const bytes = this.#bytes(data, op);
      // Tested as a Buffer, which it usually is: `instanceof WebSocketError` walks a Buffer's whole
      // prototype chain to null (3.3% of the pipelined-echo profile).
      if (!(bytes instanceof Uint8Array)) return rejected(bytes);
      payload = bytes;
      length = bytes.length;
    }
    if (this.#state !== 'open') return rejected(this.#closedError());
    if (this.#waiters.length === 0 && this.#fits(length)) {
      this.#enqueue(payload, op, length);
      return QUEUED;
    }
    return this.#overflow(payload, op, length, true) as Promise<WriteResult>;
  }

  #fits(length: number): boolean {
    const frames = this.#qTail - this.#qHead + this.#qExtra;
    // An empty outbox takes any message that the byte budget alone would refuse, so a message
    // bigger than maxQueuedBytes can still be sent (alone).
    return frames === 0 || (frames < this.#opts.maxQueuedFrames && this.#qBytes + length <= this.#opts.maxQueuedBytes);
  }

  #overflow(data: Buffer | string, flags: number, length: number, wait: boolean): TryWriteResult | Promise<WriteResult> {
    switch (this.#opts.overflow) {
      case 'wait': {
        if (!wait) return 'full';
        if (this.#waiters.length >= this.#opts.maxWaiters) {
          return rejected(new ConnectionError(ErrorCode.TooManyWaiters, `more than ${this.#opts.maxWaiters} writes waiting for room in the outbox`));
        }
        return new Promise<WriteResult>((resolve, reject) => {
          if (this.#waiters === NO_WAITERS) this.#waiters = []; // push site
          this.#waiters.push({ data, flags, length, resolve, reject });
        });
      }
      case 'drop-newest':
        this.dropped++;
        return wait ? DROPPED : 'dropped';
      case 'drop-oldest':
      case 'conflate': {
        this.#closeRun();
        while (!this.#fits(length) && this.#qHead < this.#qTail) this.#dropOldest();
        // A writer that cannot write never flushes: without this, every message dropped here would
        // leave a slot behind (four array entries), and a slow consumer would grow memory after all.
        if (this.#qHead >= COMPACT_AT && this.#qHead * 2 >= this.#qTail) this.#compact();
        this.#enqueue(data, flags, length);
        return wait ? QUEUED : 'queued';
      }
      case 'close': {
        const err = new ConnectionError(ErrorCode.OutboxFull, 'outbox full: the peer is not reading fast enough', {
          closeCode: this.#opts.overflowCloseCode,
        });
        this.#failWith(err, this.#opts.overflowCloseCode, 'slow consumer', true);
        return wait ? rejected(err) : 'closed';
      }
    }
  }

  /** Drop the oldest queued message: the head entry, or the first frame of a run there (a run of plain frames, see #tryWriteFrame). */
  #dropOldest(): void {
    const h = this.#qHead;
    this.dropped++;
    if (this.#qFlags[h]! >= RUN_ONE) {
      // A run holds plain frames only (see #tryWriteFrame): the first one's header gives its size.
      const run = this.#qData[h] as Buffer;
      const len7 = run[1]! & 0x7f;
      const head = len7 < 126 ? 2 : len7 === 126 ? 4 : 10;
      const len = len7 < 126 ? len7 : len7 === 126 ? run.readUInt16BE(2) : Number(run.readBigUInt64BE(2));
      this.#qData[h] = run.subarray(head + len);
      this.#qFlags[h]! -= RUN_ONE;
      this.#qLen[h]! -= len;
      this.#qBytes -= len;
      this.#qExtra--;
      return;
    }
    this.#qBytes -= this.#qLen[h]!;
    this.#qData[h] = EMPTY;
    this.#qHead++;
  }

  /** Forget the dropped slots before #qHead (amortised: at least as many were dropped as are kept). */
  #compact(): void {
    this.#closeRun();
    const h = this.#qHead;
    const t = this.#qTail;
    this.#qData = this.#qData.slice(h, t);
    this.#qFlags = this.#qFlags.slice(h, t);
    this.#qLen = this.#qLen.slice(h, t);
    this.#qTime = this.#qTime.slice(h, t);
    this.#qHead = 0;
    this.#qTail = t - h;
    const keys = this.#qKeys;
    if (keys !== undefined) {
      for (const [k, i] of keys) {
        if (i < h) keys.delete(k);
        else keys.set(k, i - h);
      }
    }
  }

  /** The run stops growing: its entry becomes one view over all its frames. */
  #closeRun(): void {
    const i = this.#runAt;
    this.#runAt = -1;
    if (i < this.#qHead || i >= this.#qTail) return;
    const first = this.#qData[i] as Buffer;
    const n = this.#runEnd - first.byteOffset;
    if (n !== first.length) this.#qData[i] = Buffer.from(first.buffer, first.byteOffset, n);
  }

  #enqueue(data: Buffer | string, flags: number, length: number): void {
    if (this.#runAt >= 0) this.#closeRun();
    // Only a blocked writer keeps messages past this turn of the event loop, so only then is the
    // time worth reading (for oldestQueuedAge).
    const time = this.#draining ? performance.now() : 0;
    if (this.#qData === NO_DATA) {
      // push site: the first message of this connection (or the first after a discard). Arrays of
      // one element: a request/response connection never holds more, and `[]` would grow to 17
      // slots on the first store (~600 B more per connection, allocated and, for a live one, kept).
      this.#qData = [data];
      this.#qFlags = [flags];
      this.#qLen = [length];
      this.#qTime = [time];
      this.#qTail = 1;
    } else {
      const t = this.#qTail++;
      this.#qData[t] = data;
      this.#qFlags[t] = flags;
      this.#qLen[t] = length;
      this.#qTime[t] = time;
    }
    this.#qBytes += length;
    this.messagesOut++;
    this.#schedule();
  }

  #schedule(): void {
    if (!this.#flushScheduled && !this.#draining) {
      this.#flushScheduled = true;
      // While a read is handled, #onData flushes when it is done.
      if (!this.#reading && Conn.#pending.push(this) === 1) process.nextTick(Conn.#flushPending);
    }
  }

  #queuePong(payload: Buffer): void {
    // RFC 6455 §5.5.3: with several Pings unanswered, answering only the latest is allowed; keep
    // the lane bounded against a peer that pings and never reads.
    if (this.#pongs.length >= MAX_PENDING_PONGS) this.#pongs.shift();
    if (this.#pongs === NO_FRAMES) this.#pongs = []; // push site
    this.#pongs.push(payload);
    this.#schedule();
  }

  /**
   * The writer loop's turn: everything ready goes to the socket in one write (small frames are
   * encoded side by side into one buffer; big payloads are passed by reference in a corked batch).
   */
  #flush(): void {
    this.#flushScheduled = false;
    if (this.#ended || this.#draining || this.#state === 'closed') return;
    if (this.#socket.readableEnded) {
      // The peer's FIN has come (see the 'end' listener in the constructor): the socket is ending
      // and takes no more writes. What is queued stays, and is counted as unsent when it closes.
      this.#ended = true;
      return;
    }
    if (this.#runAt >= 0) this.#closeRun();
    const masked = this.role === 'client';
    const deflate = this.#deflate;
    const pongs = this.#pongs;
    const pings = this.#pings;
    const qData = this.#qData;
    const qFlags = this.#qFlags;
    const qLen = this.#qLen;
    const head = this.#qHead;
    // While a large message is being compressed, only control frames may pass it.
    let end = this.#deflateJob === undefined ? this.#qTail : head;
    /** Entries the writer takes from the outbox this turn: the batch, and a message it starts compressing. */
    let taken = end;

    // The usual turn of a request/response exchange: one small uncompressed message from the
    // server and nothing else to send. Encoded straight into its frame, without the passes below.
    if (end - head === 1 && !masked && pongs.length === 0 && pings.length === 0 && (this.#closeFrame === undefined || this.#closeSent)) {
      const flags = qFlags[head]!;
      const len = qLen[head]!;
      if ((flags & F_FRAMED) === 0 && len < LARGE && (deflate === undefined || len < deflate.threshold || len === 0)) {
        const data = qData[head]!;
        const size = frameHeaderSize(len, false) + len;
        const frame = Buffer.allocUnsafe(size);
        const off = writeFrameHeader(frame, 0, flags & F_OPCODE, true, false, len, undefined);
        if (typeof data === 'string') frame.write(data, off, len, 'utf8');
        else copySmall(data, frame, off);
        this.#emptyOutbox(head, end);
        this.#send(frame, undefined, size);
        return;
      }
      if ((flags & F_FRAMED) !== 0) {
        // A broadcast's frame, or a run of them: bytes that are never written again
        // (src/server/frame-arena.ts), so they go to the socket as they are, without a copy.
        const frame = qData[head] as Buffer;
        this.#emptyOutbox(head, end);
        this.#send(frame, undefined, frame.length);
        return;
      }
    }

    // Pass 1: compress what should be, and size the batch.
    let size = 0;
    let refs = 0;
    for (let i = 0; i < pongs.length; i++) size += frameHeaderSize(pongs[i]!.length, masked) + pongs[i]!.length;
    for (let i = 0; i < pings.length; i++) size += frameHeaderSize(pings[i]!.length, masked) + pings[i]!.length;
    for (let i = head; i < end; i++) {
      const flags = qFlags[i]!;
      let len = qLen[i]!;
      if ((flags & F_FRAMED) !== 0) {
        // By the bytes on the wire, not the payload the budget counts: a run of compressed
        // frames counts 20 KiB for 7 KiB of frames, and belongs in the batch.
        const bytes = (qData[i] as Buffer).length;
        if (bytes >= LARGE) refs++;
        else size += bytes;
        continue;
      }
      if (deflate !== undefined && len >= deflate.threshold && len > 0) {
        const src = qData[i]!;
        const out = deflate.codec.startCompress(typeof src === 'string' ? Buffer.from(src) : src);
        if (!(out instanceof Buffer)) {
          // A large message: compressed over later turns; this batch ends before it.
          this.#startDeflate(out as CodecJob<Buffer | WebSocketError>, flags & F_OPCODE);
          end = i;
          taken = i + 1;
          break;
        }
        qData[i] = out;
        qFlags[i] = flags | F_RSV1;
        qLen[i] = len = out.length;
      } else if (len >= LARGE && typeof qData[i] === 'string') {
        qData[i] = Buffer.from(qData[i] as string);
      }
      size += frameHeaderSize(len, masked);
      if (len < LARGE || masked) size += len;
      else refs++;
    }
    const closeFrame = this.#closeFrame !== undefined && !this.#closeSent && this.#deflateJob === undefined ? this.#closeFrame : undefined;
    if (closeFrame !== undefined) size += frameHeaderSize(closeFrame.length, masked) + closeFrame.length;
    if (size === 0 && refs === 0) {
      if (taken > head) this.#takeOutbox(head, end, taken);
      return;
    }

    const keys = this.#maskKeys;
    const slab = batchBuffer(size, this.#sharesSlab && refs === 0);
    let off = 0;
    let segStart = 0;
    const chunks: Buffer[] | undefined = refs > 0 ? [] : undefined;
    for (let i = 0; i < pongs.length; i++) off = writeFrame(slab, off, Opcode.Pong, true, false, pongs[i]!, keys?.next());
    for (let i = 0; i < pings.length; i++) off = writeFrame(slab, off, Opcode.Ping, true, false, pings[i]!, keys?.next());
    if (pongs.length > 0) this.#pongs = NO_FRAMES;
    if (pings.length > 0) this.#pings = NO_FRAMES;
    for (let i = head; i < end; i++) {
      const flags = qFlags[i]!;
      const data = qData[i]!;
      const len = qLen[i]!;
      if ((flags & F_FRAMED) !== 0) {
        const frame = data as Buffer;
        if (frame.length >= LARGE) {
          chunks!.push(slab.subarray(segStart, off), frame);
          segStart = off;
        } else {
          frame.copy(slab, off);
          off += frame.length;
        }
        continue;
      }
      const op = flags & F_OPCODE;
      const rsv1 = (flags & F_RSV1) !== 0;
      if (typeof data === 'string') {
        const key = keys?.next();
        off = writeFrameHeader(slab, off, op, true, rsv1, len, key);
        slab.write(data, off, len, 'utf8');
        if (key !== undefined) applyMask(slab, key, off, off + len, 0);
        off += len;
      } else if (len < LARGE || masked) {
        off = writeFrame(slab, off, op, true, rsv1, data, keys?.next());
      } else {
        off = writeFrameHeader(slab, off, op, true, rsv1, len, undefined);
        chunks!.push(slab.subarray(segStart, off), data);
        segStart = off;
      }
    }
    if (closeFrame !== undefined) {
      off = writeFrame(slab, off, Opcode.Close, true, false, closeFrame, keys?.next());
      this.#closeSent = true;
    }
    if (taken < this.#qTail || end < taken) this.#takeOutbox(head, end, taken);
    else this.#emptyOutbox(head, end);
    if (chunks !== undefined && off > segStart) chunks.push(slab.subarray(segStart, off));
    this.#send(slab, chunks, size);
  }

  /**
   * The batch owns the entries [head, end) now: count them delivered and empty the outbox. Emptied
   * in place rather than replaced: four new arrays per flush per connection showed as GC pressure
   * in the 10,000-client broadcast profile. A small batch only drops its references (the arrays
   * keep their length for the next turn). A big batch (over 64 messages) gives its slots back,
   * unless the batch before it was big too: a connection busy with pipelined messages would
   * otherwise grow four arrays from nothing on every read (GrowFastSmiOrObjectElements was 5.8%
   * of the 22-byte echo under tcpkali; keeping them: 196 → 179 ns per echo in process). Its
   * first small batch gives them back, so what a quiet connection keeps is bounded by its last
   * two batches (at most maxQueuedFrames slots).
   */
  #emptyOutbox(head: number, end: number): void {
    this.delivered += end - head + this.#qExtra;
    this.#qExtra = 0;
    if (this.#qKeys !== undefined) this.#qKeys.clear();
    const big = end > SMALL_BATCH;
    const keep = big ? this.#bigBatch : this.#qData.length <= SMALL_BATCH;
    this.#bigBatch = big;
    if (!keep) {
      this.#qData.length = 0;
      this.#qFlags.length = 0;
      this.#qLen.length = 0;
      this.#qTime.length = 0;
    } else {
      const qData = this.#qData;
      for (let i = head; i < end; i++) qData[i] = undefined;
    }
    this.#qHead = 0;
    this.#qTail = 0;
    this.#qBytes = 0;
  }

  /**
   * The batch owns [head, end), and a deflate job started at `end` owns that entry too (then
   * `taken` is end + 1); the entries after it stay queued, in order, for the turn after the job.
   */
  #takeOutbox(head: number, end: number, taken: number): void {
    let runs = 0;
    for (let i = head; i < end; i++) runs += this.#qFlags[i]! >>> RUN_SHIFT;
    this.delivered += end - head + runs;
    this.#qExtra -= runs;
    const qData = this.#qData;
    for (let i = head; i < taken; i++) qData[i] = undefined;
    this.#qHead = taken;
    if (taken >= this.#qTail) {
      this.#emptyOutbox(taken, taken);
      return;
    }
    let bytes = 0;
    for (let i = taken; i < this.#qTail; i++) bytes += this.#qLen[i]!;
    this.#qBytes = bytes;
  }

  /** Compress a large message over later turns of the event loop; the writer resumes with its frame. */
  #startDeflate(job: CodecJob<Buffer | WebSocketError>, opcode: number): void {
    this.#deflateJob = job;
    runCodecJob(job, (out) => {
      if (this.#deflateJob !== job) return; // the connection closed meanwhile (counted unsent there)
      this.#deflateJob = undefined;
      if (out instanceof WebSocketError) {
        this.#unsent++;
        this.#failWith(out, CloseCode.InternalError, 'internal error', true);
        return;
      }
      if (this.#ended || this.#state === 'closed') {
        this.#unsent++;
        return;
      }
      // RFC 7692 §6.1: one frame with RSV1 set, its payload the compressed message.
      const key = this.#maskKeys?.next();
      const header = Buffer.allocUnsafe(frameHeaderSize(out.length, key !== undefined));
      writeFrameHeader(header, 0, opcode, true, true, out.length, key);
      if (key !== undefined) applyMask(out, key, 0, out.length, 0); // the buffer is ours, fresh from zlib
      this.delivered++;
      this.#send(header, [header, out], header.length + out.length);
      if (!this.#draining) this.#flush();
    });
  }

  /** The end of the writer's turn: hand the batch to the socket, then see to backpressure and closing. */
  #send(slab: Buffer, chunks: Buffer[] | undefined, size: number): void {
    const socket = this.#socket;
    let ok: boolean;
    if (chunks === undefined) {
      ok = socket.write(slab);
      settle(socket, slab);
    } else {
      socket.cork();
      for (let i = 0; i < chunks.length; i++) if (chunks[i]!.length > 0) socket.write(chunks[i]!);
      socket.uncork();
      ok = socket.writableLength < socket.writableHighWaterMark;
    }
    this.bytesOut += size;
    if (!ok) {
      this.#draining = true;
      if (!this.#drainListener) {
        this.#drainListener = true;
        socket.on('drain', Conn.#onSocketDrain);
      }
    }
    if (this.#waiters.length > 0) this.#admitWaiters();
    if (this.#closeSent) this.#afterCloseSent();
  }

  #onDrain(): void {
    this.#draining = false;
    if (this.#waiters.length > 0) this.#admitWaiters();
    if (this.#qTail > this.#qHead || this.#pongs.length > 0 || this.#pings.length > 0 || (this.#closeFrame !== undefined && !this.#closeSent)) {
      this.#flush();
    }
  }

  #admitWaiters(): void {
    const waiters = this.#waiters;
    let n = 0;
    while (n < waiters.length && this.#fits(waiters[n]!.length)) {
      const w = waiters[n]!;
      this.#enqueue(w.data, w.flags, w.length);
      w.resolve('queued');
      n++;
    }
    if (n > 0) waiters.splice(0, n);
  }

  // ---------------------------------------------------------------- reading

  #onData(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    if (this.#inputDone) return;
    this.#parser.push(chunk);
    // What the handlers write while this chunk is parsed goes out in one write when it is done:
    // a request/response exchange costs no nextTick per message.
    this.#reading = true;
    try {
      this.#parse();
    } finally {
      this.#reading = false;
    }
    // The inbound budget: a message waits downstream and what is held has reached the budget.
    if (this.#inHeld !== 0 && !this.#readPaused && this.#overBudget()) this.#pauseReading();
    if (this.#opts.messageTimeout > 0) this.#watchMessage();
    // (A flush already pending in a nextTick goes now too; that tick then finds nothing to do.)
    if (this.#flushScheduled) this.#flush();
  }

  #parse(): void {
    const p = this.#parser;
    const handleFrame = this.#handlers.handleFrame;
    while (!this.#readPaused && !this.#inputDone) {
      const s = p.advance();
      if (s === ParseStatus.NeedMore) return;
      if (s === ParseStatus.Fail) {
        this.#fail(p.error!);
        return;
      }
      if (handleFrame !== undefined) this.#callHandler(handleFrame, p.frame());
      const op = p.opcode;
      if (op < 0x8) {
        if (p.fin && op !== Opcode.Continuation && !p.compressed) {
          // A whole message in one frame (the common case): nothing to assemble.
          this.#deliver(p.payload, op === Opcode.Binary);
          continue;
        }
        const assembler = (this.#assembler ??= new MessageAssembler({ maxMessageSize: this.#opts.maxMessageSize, inflater: this.#deflate?.codec }));
        let message: Buffer | undefined | null;
        if (p.compressed && this.#deflate !== undefined) {
          const out = this.#deflate.codec.startInflate(p.payload, p.fin, this.#opts.maxMessageSize, this.#inflateRoom());
          if (!(out instanceof Buffer) && !(out instanceof ProtocolError)) {
            // The codec has the payload now (and counts it): the parser lets go of its reference.
            p.payload = EMPTY;
            this.#inflateFin = p.fin;
            this.#inflateOpcode = p.messageOpcode;
            if (out === null) this.#parkInflate();
            else this.#startInflate(out as CodecJob<Buffer | ProtocolError>);
            return;
          }
          message = assembler.pushInflated(out, p.fin, p.messageOpcode === Opcode.Text);
        } else {
          message = assembler.push(p.payload, p.fin, p.messageOpcode === Opcode.Text, p.compressed);
        }
        if (message === undefined) continue;
        if (message === null) {
          this.#fail(assembler.error!);
          return;
        }
        this.#deliver(message, p.messageOpcode === Opcode.Binary);
      } else if (op === Opcode.Ping) {
        this.#onPing(p.payload);
      } else if (op === Opcode.Pong) {
        this.#onPong(p.payload);
      } else {
        this.#onCloseFrame(p.payload);
        return;
      }
    }
  }

  /**
   * What the inbound budget still allows (issue 15): a large compressed frame may take twice what
   * it can still inflate (its chunks, then the joined copy). Unlimited while nothing waits
   * downstream: a single message is never stalled by the budget.
   */
  #inflateRoom(): number {
    return this.#inHeld === 0 ? Infinity : this.#opts.maxInboundBytes - this.inboundBytes;
  }

  /**
   * A large compressed frame must wait for room in the inbound budget (messages downstream hold
   * it): reading stops, and #resumeReading asks the codec again when some is released.
   */
  #parkInflate(): void {
    this.#inflateParked = true;
    this.#pauseReading();
  }

  /** A parked frame: its job once there is room (it goes on waiting otherwise). */
  #unparkInflate(): void {
    const out = this.#deflate!.codec.continueInflate(this.#inflateRoom());
    if (out === null) return;
    this.#inflateParked = false;
    if (out instanceof Buffer || out instanceof ProtocolError) this.#inflated(out);
    else this.#startInflate(out as CodecJob<Buffer | ProtocolError>);
  }

  /**
   * Inflate a large frame over later turns of the event loop. Reading stops meanwhile (the
   * socket is paused, TCP pushes back), so the frames behind it wait and order holds.
   */
  #startInflate(job: CodecJob<Buffer | ProtocolError>): void {
    this.#inflateJob = job;
    this.#pauseReading();
    runCodecJob(job, (out) => {
      if (this.#inflateJob !== job) return; // the connection closed meanwhile
      this.#inflateJob = undefined;
      this.#inflated(out);
    });
  }

  /** The frame is inflated (or failed): on with the message, then with reading. */
  #inflated(out: Buffer | ProtocolError): void {
    if (this.#inputDone) return;
    const message = this.#assembler!.pushInflated(out, this.#inflateFin, this.#inflateOpcode === Opcode.Text);
    this.#reading = true;
    try {
      if (message === null) this.#fail(this.#assembler!.error!);
      else if (message !== undefined) this.#deliver(message, this.#inflateOpcode === Opcode.Binary);
    } finally {
      this.#reading = false;
    }
    if (this.#inputDone) {
      // Failed (1007, 1009): read on, so the peer's FIN is seen and the socket can close (what
      // arrives now is discarded by #onData).
      if (this.#state !== 'closed') this.#socket.resume();
    } else if (this.#inbox === undefined || !this.#inbox.full) {
      this.#resumeReading();
    }
    if (this.#flushScheduled) this.#flush();
  }

  /** Call a frame-level handler; one that throws fails the connection with 1011. */
  #callHandler<T>(fn: (conn: Conn<D>, arg: T) => void, arg: T): void {
    try {
      fn(this, arg);
    } catch (err) {
      this.#handlerFailed(err);
    }
  }

  #deliver(data: Buffer, isBinary: boolean): void {
    this.messagesIn++;
    const handle = this.#handlers.handleData;
    if (handle === undefined || this.#dispatching || (this.#inbox !== undefined && this.#inbox.length > 0)) {
      this.#toInbox({ data, isBinary });
      return;
    }
    let r: unknown;
    if (!isBinary) this.#handlingText = data;
    try {
      r = handle(this, data, isBinary);
    } catch (err) {
      this.#handlingText = undefined;
      this.#handlerFailed(err);
      return;
    }
    this.#handlingText = undefined;
    if (r !== undefined && r !== QUEUED && r !== DROPPED && typeof (r as Promise<unknown>).then === 'function') {
      this.#dispatching = true;
      // Counted until its promise settles: the handler may keep the bytes that long.
      this.#inHeld += data.length;
      this.#handlingBytes = data.length;
      if (this.#overBudget()) this.#pauseReading();
      this.#awaitHandler(r as Promise<unknown>);
    }
  }

  #toInbox(message: Message): void {
    const inbox = (this.#inbox ??= new Channel<Message>(this.#opts.inboxSize));
    if (!inbox.trySend(message)) {
      // Cannot happen while reading is paused at a full inbox; kept as a guard.
      this.#fail(new ProtocolError(ErrorCode.HandlerFailed, 'inbox overflow', CloseCode.InternalError));
      return;
    }
    this.#inHeld += message.data.length;
    // Backpressure: stop reading; TCP pushes back on the peer.
    if (inbox.full || this.#overBudget()) this.#pauseReading();
  }

  #pauseReading(): void {
    if (this.#readPaused) return;
    this.#readPaused = true;
    this.#socket.pause();
  }

  /**
   * Whether reading must wait (issue 10): what this connection holds from the socket to the handler
   * (parser, assembler, inbox, the message being handled) has reached maxInboundBytes, and some of
   * it waits downstream, so it will be released. With nothing downstream the message in progress
   * is bounded by maxMessageSize on its own, and pausing could never end.
   */
  #overBudget(): boolean {
    return this.#inHeld !== 0 && this.inboundBytes >= this.#opts.maxInboundBytes;
  }

  /** The message an async handler or the iterator worked on is done: its bytes no longer count. */
  #releaseHandled(): void {
    this.#inHeld -= this.#handlingBytes;
    this.#handlingBytes = 0;
  }

  #resumeReading(): void {
    // A large compressed frame parked for room in the budget goes first (frames behind it wait).
    if (this.#inflateParked) {
      if (this.#state !== 'closed') this.#unparkInflate();
      return;
    }
    if (!this.#readPaused || this.#state === 'closed' || this.#inflateJob !== undefined || this.#inbox?.full === true || this.#overBudget()) return;
    this.#readPaused = false;
    this.#parse(); // frames already buffered in the parser first
    if (!this.#readPaused && this.#overBudget()) this.#pauseReading();
    if (!this.#readPaused) this.#socket.resume();
  }

  /** messageTimeout: arm the deadline when a frame or message is left in progress, disarm when none is. */
  #watchMessage(): void {
    const armed = this.#messageDeadline;
    if (this.#parser.inProgress && !this.#inputDone) {
      if (armed === undefined) {
        this.#messageDeadline = new MessageDeadline(this);
        Conn.#messageDeadlines(this.#opts.messageTimeout).add(this.#messageDeadline);
      }
    } else if (armed !== undefined) {
      Conn.#messageDeadlines(this.#opts.messageTimeout).delete(armed);
      this.#messageDeadline = undefined;
    }
  }

  #onMessageTimeout(d: MessageDeadline): void {
    if (this.#messageDeadline !== d || this.#state === 'closed') return;
    if (this.#readPaused) {
      // We stopped reading (backpressure): the peer is not the slow one. Start the clock again.
      Conn.#messageDeadlines(this.#opts.messageTimeout).add(d);
      return;
    }
    this.#messageDeadline = undefined;
    const t = this.#opts.messageTimeout;
    this.#fail(new ProtocolError(ErrorCode.MessageTimeout, `a frame or message was still incomplete ${t} ms after its first byte`, CloseCode.PolicyViolation));
  }

  #handlerDone(): void {
    this.#dispatching = false;
    this.#releaseHandled();
    const inbox = this.#inbox;
    const handle = this.#handlers.handleData;
    while (!this.#dispatching && inbox !== undefined && inbox.length > 0 && handle !== undefined) {
      const m = inbox.tryReceive()!;
      // It leaves the inbox; an async handler holds it until its promise settles.
      this.#handlingBytes = m.data.length;
      let r: unknown;
      try {
        r = handle(this, m.data, m.isBinary);
      } catch (err) {
        this.#releaseHandled();
        if (this.#isOwnClosedWrite(err)) continue;
        this.#handlerFailed(err);
        return;
      }
      if (r !== undefined && r !== QUEUED && r !== DROPPED && typeof (r as Promise<unknown>).then === 'function') {
        this.#dispatching = true;
        this.#awaitHandler(r as Promise<unknown>);
      } else {
        this.#releaseHandled();
      }
    }
    this.#resumeReading();
  }

  /** A handleData promise rejected. */
  #handlerRejected(err: unknown): void {
    if (this.#isOwnClosedWrite(err)) {
      this.#handlerDone(); // not a failure: go on with the next message
      return;
    }
    this.#handlerFailed(err);
  }

  /**
   * A write that failed because THIS connection is closing is already accounted for (the write
   * rejected, CloseInfo.unsent counts it): it is no handler failure, and the messages behind it
   * must still be handled, or the inbox stays full, reading stays paused and the peer's Close is
   * never read. On an open connection the same error (a write to another, closed connection) is
   * a handler failure like any other, not a reason to stop dispatching silently.
   */
  #isOwnClosedWrite(err: unknown): boolean {
    return this.#state !== 'open' && err instanceof ConnectionError && err.code === ErrorCode.ConnectionClosed;
  }

  /** A handler threw or its promise rejected: report it and close with 1011 (RFC 6455 §7.4.1). */
  #handlerFailed(err: unknown): void {
    this.#dispatching = false;
    if (this.#isOwnClosedWrite(err)) return;
    const error = new WebSocketError(ErrorCode.HandlerFailed, `a handler threw: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      closeCode: CloseCode.InternalError,
    });
    this.#failWith(error, CloseCode.InternalError, 'internal error');
  }

  /**
   * Receive messages with `for await` (when no `handleData` is set). Ends when the connection
   * closes. Leaving the loop early (`break`, `return`, a throw) closes the connection with 1000,
   * as leaving the loop over a Readable destroys the stream: nobody would read what comes next.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Message> {
    if (this.#handlers.handleData !== undefined) {
      throw new WebSocketError(ErrorCode.InvalidArgument, 'this connection delivers messages to handleData; it cannot also be iterated');
    }
    const inbox = (this.#inbox ??= new Channel<Message>(this.#opts.inboxSize));
    let early = true;
    try {
      for (;;) {
        // The consumer is done with the message it was given when it asks for the next one.
        this.#releaseHandled();
        let m: Message | undefined = inbox.tryReceive();
        if (m === undefined) {
          if (this.#state === 'closed' || inbox.closed) break;
          this.#resumeReading();
          try {
            m = await inbox.receive();
          } catch {
            break;
          }
        }
        this.#handlingBytes = m.data.length;
        this.#resumeReading();
        yield m;
      }
      early = false;
    } finally {
      // Only an early exit gets here with `early` set: the loop itself ends only by `break` above.
      if (early && this.#state === 'open') void this.close(CloseCode.NormalClosure, '');
    }
  }

  #onPing(payload: Buffer): void {
    // RFC 6455 §5.5.2: answer with a Pong carrying the same application data.
    if (this.#state === 'open') this.#queuePong(payload);
    const h = this.#handlers.handlePing;
    if (h !== undefined) this.#callHandler(h, payload);
  }

  #onPong(payload: Buffer): void {
    const ours = this.#pingPayload;
    if (ours !== undefined && ours.equals(payload)) {
      // The answer to our keepalive: it feeds `rtt` and is not reported to handlePong, which
      // sees the Pongs for the application's own pings (and unsolicited ones).
      this.rtt = performance.now() - this.#pingSentAt;
      this.#pingPayload = undefined;
      if (this.#pongTimer !== undefined) {
        clearTimeout(this.#pongTimer);
        this.#pongTimer = undefined;
      }
      return;
    }
    const h = this.#handlers.handlePong;
    if (h !== undefined) this.#callHandler(h, payload);
  }

  #onCloseFrame(payload: Buffer): void {
    const parsed = parseClosePayload(payload);
    if (parsed instanceof ProtocolError) {
      this.#fail(parsed);
      return;
    }
    // RFC 6455 §5.5.1: after a Close frame, no more data is read.
    this.#inputDone = true;
    this.#closeReceived = parsed;
    if (this.#state === 'open') {
      // Echo the status code (§5.5.1); an empty body is answered with an empty body.
      // (The code was checked by parseClosePayload: two bytes, no encoder checks needed.)
      const c = parsed.code;
      const body = c === CloseCode.NoStatusReceived ? EMPTY : c === CloseCode.NormalClosure ? CLOSE_NORMAL : c === CloseCode.GoingAway ? CLOSE_GOING_AWAY : Buffer.from([c >> 8, c & 0xff]);
      this.#startClose(body, false);
    } else if (this.#closeSent) {
      this.#afterCloseSent();
    }
  }

  #onEnd(): void {
    // The peer closed its side of TCP. Without a closing handshake this is an abnormal closure.
    this.#inputDone = true;
    if (!this.#ended) {
      this.#ended = true;
      this.#socket.end();
    }
  }

  #onSocketError(err: Error): void {
    if (this.#error === undefined) {
      // A transport may name its failure itself (an HTTP/2 stream reset, a GOAWAY: src/server/http2.ts).
      this.#error = err instanceof WebSocketError ? err : new ConnectionError(ErrorCode.SocketError, err.message, { cause: err, closeCode: CloseCode.AbnormalClosure });
      this.#report(this.#error);
    }
  }

  // ---------------------------------------------------------------- closing

  /** A protocol violation by the peer: report it and close with its code (RFC 6455 §7.1.7). */
  #fail(error: ProtocolError | WebSocketError): void {
    this.#failWith(error, error.closeCode ?? CloseCode.ProtocolError, '');
  }

  #failWith(error: WebSocketError, code: number, reason: string, discard = false): void {
    if (this.#state === 'closed') return;
    this.#inputDone = true;
    const first = this.#error === undefined;
    if (first) this.#error = error;
    if (this.#state === 'open') {
      // Data queued before the failure (e.g. the reply to the message just before a bad frame)
      // still goes out ahead of the Close frame (RFC 6455 §5.5.1 lets an endpoint finish what it
      // is sending). Only a slow consumer's backlog is thrown away, and counted in `unsent`.
      if (discard) this.#discardOutbox();
      this.#startClose(encodeClosePayload(code, reason), true);
    } else if (!this.#failing) {
      // Already closing: our Close frame stays the only one, and the peer's will not be read any
      // more (input is done), so end TCP once ours is out rather than wait for closeTimeout (§7.1.7).
      this.#failing = true;
      if (this.#closeSent) this.#afterCloseSent();
    }
    // Reported once the connection is closing, so that a handleError that calls close() cannot
    // replace the failure's close code, nor leave us waiting for a Close frame we no longer read.
    if (first) this.#report(error);
  }

  #startClose(body: Buffer, failing: boolean): void {
    this.#state = 'closing';
    this.#closeFrame = body;
    this.#failing = failing;
    this.#stopKeepalive();
    const waiters = this.#waiters;
    if (waiters.length > 0) {
      // An Error (and its stack trace) only when someone is waiting: it showed in the churn profile.
      const reject = this.#closedError();
      this.#waiters = NO_WAITERS;
      this.#unsent += waiters.length;
      for (const w of waiters) w.reject(reject);
    }
    this.#closeDeadline = new CloseDeadline(this);
    Conn.#closeDeadlines(this.#opts.closeTimeout).add(this.#closeDeadline);
    if (!this.#draining) this.#flush();
  }

  /** After our Close frame is written: the server closes TCP first (RFC 6455 §7.1.1). */
  #afterCloseSent(): void {
    if (this.#ended) return;
    if (this.#failing || (this.role === 'server' && this.#closeReceived !== undefined)) {
      this.#ended = true;
      this.#socket.end();
    }
    // A client waits for the server to close TCP (§7.1.1), bounded by closeTimeout.
  }

  #onCloseTimeout(): void {
    if (this.#state === 'closed') return;
    if (this.#error === undefined) {
      this.#error = new ConnectionError(ErrorCode.CloseTimeout, `closing handshake not completed within ${this.#opts.closeTimeout} ms`, {
        closeCode: CloseCode.AbnormalClosure,
      });
    }
    this.#socket.destroy();
  }

  #discardOutbox(): void {
    const n = this.#qTail - this.#qHead + this.#qExtra;
    this.#qExtra = 0;
    this.#runAt = -1;
    this.#unsent += n;
    if (this.#deflateJob !== undefined) {
      // The message being compressed goes too: end its work.
      this.#deflateJob.cancel();
      this.#deflateJob = undefined;
      this.#unsent++;
    }
    this.#qData = NO_DATA;
    this.#qFlags = NO_NUMBERS;
    this.#qLen = NO_NUMBERS;
    this.#qTime = NO_NUMBERS;
    this.#qHead = 0;
    this.#qTail = 0;
    this.#qBytes = 0;
    this.#qKeys?.clear();
  }

  #closedError(): ConnectionError {
    return new ConnectionError(ErrorCode.ConnectionClosed, `connection is ${this.#state}`, { closeCode: this.#closeReceived?.code });
  }

  /** The socket has closed: settle everything exactly once. */
  #finish(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#inputDone = true;
    if (this.#closeDeadline !== undefined) {
      Conn.#closeDeadlines(this.#opts.closeTimeout).delete(this.#closeDeadline);
      this.#closeDeadline = undefined;
    }
    this.#closeFrame = undefined;
    this.#parser.release();
    if (this.#messageDeadline !== undefined) {
      Conn.#messageDeadlines(this.#opts.messageTimeout).delete(this.#messageDeadline);
      this.#messageDeadline = undefined;
    }
    this.#stopKeepalive();
    const waiters = this.#waiters;
    this.#waiters = NO_WAITERS;
    if (waiters.length > 0) {
      const err = this.#closedError();
      for (const w of waiters) w.reject(err);
    }
    const unsent = this.#unsent + waiters.length + (this.#qTail - this.#qHead + this.#qExtra) + (this.#deflateJob !== undefined ? 1 : 0);
    this.#discardOutbox();
    this.#inflateJob?.cancel();
    this.#inflateJob = undefined;
    this.#inflateParked = false;
    this.#inbox?.close();
    this.#deflate?.codec.close();
    const received = this.#closeReceived;
    let code: number;
    let reason = '';
    if (received !== undefined) {
      code = received.code;
      reason = received.reason;
    } else if (this.#error?.closeCode !== undefined && this.#failing) {
      code = this.#error.closeCode;
    } else {
      code = CloseCode.AbnormalClosure;
    }
    const info: CloseInfo = {
      code,
      reason,
      wasClean: this.#closeSent && received !== undefined && !this.#failing && this.#error?.code !== ErrorCode.CloseTimeout,
      error: this.#error,
      unsent,
    };
    if (connCloseChannel.hasSubscribers) connCloseChannel.publish({ conn: this, info });
    const h = this.#handlers.handleClose;
    if (h !== undefined) {
      try {
        h(this, info);
      } catch (e) {
        this.#report(new WebSocketError(ErrorCode.HandlerFailed, 'handleClose threw', { cause: e }));
      }
    }
    this.#closeInfo = info;
    this.#resolveClosed?.(info);
  }

  #awaitHandler(r: Promise<unknown>): void {
    this.#onHandlerDone ??= () => this.#handlerDone();
    this.#onHandlerError ??= (err: unknown) => this.#handlerRejected(err);
    r.then(this.#onHandlerDone, this.#onHandlerError);
  }

  #report(error: WebSocketError): void {
    reportError(this, this.#handlers, error);
  }

  // ---------------------------------------------------------------- keepalive

  #startKeepalive(): void {
    this.#pingTimer = setInterval(() => this.#keepalive(), this.#opts.pingInterval);
    this.#pingTimer.unref?.();
  }

  #stopKeepalive(): void {
    if (this.#pingTimer !== undefined) clearInterval(this.#pingTimer);
    if (this.#pongTimer !== undefined) clearTimeout(this.#pongTimer);
    this.#pingTimer = undefined;
    this.#pongTimer = undefined;
  }

  #keepalive(): void {
    if (this.#state !== 'open' || this.#pingPayload !== undefined) return;
    // A payload no application ping is likely to repeat: a tag and a sequence number.
    const payload = Buffer.from(`wschan-keepalive:${++this.#pingSeq}`);
    this.#pingPayload = payload;
    this.#pingSentAt = performance.now();
    if (this.#pings === NO_FRAMES) this.#pings = []; // push site
    this.#pings.push(payload);
    this.#schedule();
    this.#pongTimer = setTimeout(() => this.#onPongTimeout(), this.#opts.pongTimeout);
    this.#pongTimer.unref?.();
  }

  #onPongTimeout(): void {
    if (this.#state === 'closed') return;
    // The peer is gone or stuck: end the connection without a handshake (reported as 1006).
    this.#error = new ConnectionError(ErrorCode.PongTimeout, `no pong within ${this.#opts.pongTimeout} ms`, {
      closeCode: CloseCode.AbnormalClosure,
    });
    this.#report(this.#error);
    this.#socket.destroy();
  }
}

function toBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
