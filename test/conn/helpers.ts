/**
 * Helpers for the Conn tests: a real loopback socket pair (or an in-memory `duplexPair`), a Conn on
 * one end, and a raw `Peer` on the other that writes hand-made frames and parses what the Conn
 * sends (keeping the raw bytes too, so tests can count and compare frames on the wire).
 *
 * Every wait here has a deadline and names what it waited for ("every wait can end").
 */
import { once } from 'node:events';
import { createServer, connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { duplexPair, type Duplex } from 'node:stream';
import { expect } from 'vitest';
import { Conn, defaultConnOptions, type CloseInfo, type ConnHandlers, type ConnOptions } from '../../src/conn/conn.js';
import {
  FixedMaskKey,
  FrameParser,
  Opcode,
  ParseStatus,
  WebSocketError,
  encodeFrame,
  type ErrorCode,
  type MaskKeySource,
  type ProtocolError,
  type Role,
} from '../../src/protocol/index.js';

/** The masking key every hand-made client frame uses. */
export const KEY = 0x37fa213d;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Let pending ticks, microtasks and I/O callbacks run. */
export function turn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** Poll `cond` every 2 ms until it is true, or fail after `ms` naming `what`. */
export async function waitUntil(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(2);
  }
}

/** Reject after `ms` with a message naming what we waited for. */
export function withTimeout<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Settlement of a promise observed without awaiting it. */
export interface Tracked<T> {
  promise: Promise<T>;
  state: 'pending' | 'fulfilled' | 'rejected';
  value: T | undefined;
  error: unknown;
}
export function track<T>(promise: Promise<T>): Tracked<T> {
  const t: Tracked<T> = { promise, state: 'pending', value: undefined, error: undefined };
  promise.then(
    (v) => {
      t.state = 'fulfilled';
      t.value = v;
    },
    (e: unknown) => {
      t.state = 'rejected';
      t.error = e;
    },
  );
  return t;
}

/** Assert an error's class, stable code, close code and (part of) its message. */
export function expectError(
  err: unknown,
  cls: abstract new (...args: never[]) => WebSocketError,
  code: ErrorCode,
  closeCode: number | undefined,
  message: string | RegExp,
): void {
  expect(err).toBeInstanceOf(cls);
  const e = err as WebSocketError;
  expect(e.code).toBe(code);
  expect(e.closeCode).toBe(closeCode);
  if (typeof message === 'string') expect(e.message).toContain(message);
  else expect(e.message).toMatch(message);
}

/** The rejection of `p` (fails the test if it fulfils). */
export async function rejectionOf(p: Promise<unknown>, what = 'a rejection'): Promise<unknown> {
  try {
    const v = await withTimeout(p, what);
    throw new Error(`expected ${what}, got fulfilment with ${String(v)}`);
  } catch (e) {
    return e;
  }
}

// ---------------------------------------------------------------------------------------------
// Transports

const openSockets = new Set<Duplex>();

/** A connected loopback TCP pair: `local` gets the Conn, `remote` is driven with raw bytes. */
export async function tcpPair(): Promise<{ local: Socket; remote: Socket }> {
  const listener = createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const { port } = listener.address() as AddressInfo;
  const accepted = once(listener, 'connection') as Promise<[Socket]>;
  const remote = netConnect(port, '127.0.0.1');
  const [[local]] = await Promise.all([accepted, once(remote, 'connect')]);
  listener.close();
  openSockets.add(local);
  openSockets.add(remote);
  return { local, remote };
}

/** An in-memory pair: a write completes only when the other side reads it (deterministic backpressure). */
export function memoryPair(): { local: Duplex; remote: Duplex } {
  const [local, remote] = duplexPair();
  openSockets.add(local);
  openSockets.add(remote);
  return { local, remote };
}

/** Destroy every socket the helpers made (call in afterEach). */
export function destroyAll(): void {
  for (const s of openSockets) s.destroy();
  openSockets.clear();
}

// ---------------------------------------------------------------------------------------------
// The raw peer

export interface WireFrame {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/**
 * The other end of a Conn, speaking raw frames. It parses everything it receives (as a client when
 * the Conn is a server, and the other way round), keeps the raw bytes, and can stop reading.
 */
export class Peer {
  readonly socket: Duplex;
  /** The role of the Conn this peer talks to. */
  readonly connRole: Role;
  readonly frames: WireFrame[] = [];
  readonly chunks: Buffer[] = [];
  bytesReceived = 0;
  /** The parser failed on what the Conn sent (it should never happen). */
  failure: ProtocolError | undefined;
  /** Answer every Ping with a Pong carrying the same payload. */
  autoPong = false;
  gotEnd = false;
  gotClose = false;
  readonly #parser: FrameParser;

  constructor(socket: Duplex, connRole: Role) {
    this.socket = socket;
    this.connRole = connRole;
    this.#parser = new FrameParser({
      role: connRole === 'server' ? 'client' : 'server',
      maxFrameSize: 1 << 30,
      maxMessageSize: 1 << 30,
      allowRsv1: false,
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => {
      this.gotEnd = true;
    });
    socket.on('close', () => {
      this.gotClose = true;
    });
    socket.on('error', () => {});
  }

  #onData(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    this.chunks.push(Buffer.from(chunk));
    this.#parser.push(chunk);
    for (;;) {
      const s = this.#parser.advance();
      if (s === ParseStatus.NeedMore) return;
      if (s === ParseStatus.Fail) {
        this.failure = this.#parser.error;
        return;
      }
      const p = this.#parser;
      const frame: WireFrame = { fin: p.fin, rsv1: p.rsv1, opcode: p.opcode, masked: p.masked, payload: Buffer.from(p.payload) };
      this.frames.push(frame);
      if (this.autoPong && frame.opcode === Opcode.Ping) this.send(Opcode.Pong, frame.payload);
    }
  }

  /** Everything received so far, as one buffer. */
  get raw(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Data frames received, in order. */
  get dataFrames(): WireFrame[] {
    return this.frames.filter((f) => f.opcode < 0x8);
  }

  count(opcode: number): number {
    return this.frames.filter((f) => f.opcode === opcode).length;
  }

  /** A frame as the peer's role must send it: masked with KEY toward a server, unmasked toward a client. */
  frame(opcode: number, payload: string | Uint8Array = Buffer.alloc(0), options: { fin?: boolean; mask?: boolean } = {}): Buffer {
    const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
    const mask = options.mask ?? this.connRole === 'server';
    return encodeFrame(opcode, body, { fin: options.fin ?? true, ...(mask ? { maskKey: KEY } : {}) });
  }

  send(opcode: number, payload: string | Uint8Array = Buffer.alloc(0), options: { fin?: boolean; mask?: boolean } = {}): void {
    this.socket.write(this.frame(opcode, payload, options));
  }

  sendRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  sendClose(code?: number, reason = ''): void {
    let body = Buffer.alloc(0);
    if (code !== undefined) {
      body = Buffer.alloc(2 + Buffer.byteLength(reason));
      body.writeUInt16BE(code, 0);
      body.write(reason, 2);
    }
    this.send(Opcode.Close, body);
  }

  /** Wait until at least `n` frames have arrived (optionally only those matching `filter`). */
  async waitFrames(n: number, filter: (f: WireFrame) => boolean = () => true, ms = 5000): Promise<WireFrame[]> {
    await waitUntil(() => this.frames.filter(filter).length >= n || this.failure !== undefined, `${n} frame(s) at the peer`, ms);
    expect(this.failure).toBeUndefined();
    return this.frames.filter(filter);
  }

  async waitFrame(opcode: number, ms = 5000): Promise<WireFrame> {
    const frames = await this.waitFrames(1, (f) => f.opcode === opcode, ms);
    return frames[0]!;
  }

  /** Wait for the Conn's side to end TCP. */
  async waitEnd(ms = 5000): Promise<void> {
    await waitUntil(() => this.gotEnd || this.gotClose, 'TCP end at the peer', ms);
  }

  pause(): void {
    this.socket.pause();
  }
  resume(): void {
    this.socket.resume();
  }
}

/** The code and reason of a Close frame body. */
export function closeBody(f: WireFrame): { code: number | undefined; reason: string } {
  if (f.payload.length < 2) return { code: undefined, reason: '' };
  return { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString('utf8') };
}

// ---------------------------------------------------------------------------------------------
// A Conn with everything it reports recorded

export interface Recorded<D> {
  handlers: ConnHandlers<D>;
  messages: { data: Buffer; isBinary: boolean }[];
  errors: WebSocketError[];
  closes: CloseInfo[];
  pings: Buffer[];
  pongs: Buffer[];
}

/** Handlers that record every event (copying data), merged with `extra` which run after recording. */
export function record<D>(extra: ConnHandlers<D> = {}): Recorded<D> {
  const r: Recorded<D> = { handlers: {}, messages: [], errors: [], closes: [], pings: [], pongs: [] };
  r.handlers = {
    handleData:
      extra.handleData === undefined
        ? (_c, data, isBinary) => {
            r.messages.push({ data: Buffer.from(data), isBinary });
          }
        : (c, data, isBinary) => {
            r.messages.push({ data: Buffer.from(data), isBinary });
            return extra.handleData!(c, data, isBinary);
          },
    handlePing: (c, p) => {
      r.pings.push(Buffer.from(p));
      extra.handlePing?.(c, p);
    },
    handlePong: (c, p) => {
      r.pongs.push(Buffer.from(p));
      extra.handlePong?.(c, p);
    },
    handleClose: (c, info) => {
      r.closes.push(info);
      extra.handleClose?.(c, info);
    },
    handleError: (c, e) => {
      r.errors.push(e);
      extra.handleError?.(c, e);
    },
    ...(extra.handleFrame !== undefined ? { handleFrame: extra.handleFrame } : {}),
  };
  return r;
}

export interface Setup<D> {
  conn: Conn<D>;
  peer: Peer;
  /** The socket the Conn owns. */
  socket: Duplex;
  rec: Recorded<D>;
}

export interface OpenOptions<D> {
  role?: Role;
  options?: Partial<ConnOptions>;
  /** Extra handlers (run after recording); `handleData: null` leaves handleData unset (async iteration). */
  handlers?: Omit<ConnHandlers<D>, 'handleData'> & { handleData?: ConnHandlers<D>['handleData'] | null };
  transport?: 'tcp' | 'memory';
  /** Client side: the key source; default a FixedMaskKey(KEY); null leaves the Conn's random default. */
  maskKeys?: MaskKeySource | null;
  data?: D;
}

/** A Conn on one end of a fresh pair, a raw Peer on the other. */
export async function open<D = undefined>(o: OpenOptions<D> = {}): Promise<Setup<D>> {
  const role = o.role ?? 'server';
  const { local, remote } = o.transport === 'memory' ? memoryPair() : await tcpPair();
  const { handleData, ...rest } = o.handlers ?? {};
  const rec = record<D>({ ...rest, ...(handleData ? { handleData } : {}) });
  if (handleData === null) delete rec.handlers.handleData;
  const conn = new Conn<D>({
    socket: local,
    role,
    options: { ...defaultConnOptions, ...o.options },
    handlers: rec.handlers,
    data: o.data as D,
    ...(role === 'client' && o.maskKeys !== null ? { maskKeys: o.maskKeys ?? new FixedMaskKey(KEY) } : {}),
  });
  const peer = new Peer(remote, role);
  return { conn, peer, socket: local, rec };
}

/**
 * Fill the socket and kernel buffers toward a peer that does not read, until the Conn's writer is
 * blocked waiting for 'drain' (its socket keeps bytes it cannot hand to the kernel). Returns the
 * number of filler messages written (binary, `size` bytes each).
 */
export async function blockWriter<D>(conn: Conn<D>, size = 1 << 20, ms = 5000): Promise<number> {
  const filler = Buffer.alloc(size, 0x61);
  let n = 0;
  const start = Date.now();
  while (conn.socketBufferedBytes === 0 || conn.queuedFrames > 0) {
    if (Date.now() - start > ms) throw new Error('timed out filling the socket buffers');
    if (conn.queuedFrames === 0) {
      expect(conn.tryWrite(filler)).toBe('queued');
      n++;
    }
    await sleep(5);
  }
  // Give the kernel a moment: the writer must stay blocked.
  await sleep(20);
  expect(conn.socketBufferedBytes).toBeGreaterThan(0);
  return n;
}

/** A server Conn whose peer has stopped reading and whose writer is blocked. */
export async function blocked(options: Partial<ConnOptions>): Promise<Setup<undefined> & { fillers: number }> {
  const s = await open({ options });
  s.peer.pause();
  const fillers = await blockWriter(s.conn);
  return { ...s, fillers };
}
