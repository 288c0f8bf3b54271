/**
 * Shared helpers for the socket tests: a Server on port 0, raw TCP clients that speak hand-made
 * HTTP and frames, waiting for events with timeouts, and a guard that fails a test file when
 * anything escapes as an uncaught exception or an unhandled rejection.
 */
import { once } from 'node:events';
import { createServer, connect as netConnect, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { Server, type ServerOptionsInput } from '../../src/index.js';
import { computeAcceptKey } from '../../src/protocol/handshake.js';
import { FrameParser, ParseStatus, encodeFrame, type Frame } from '../../src/protocol/index.js';

export { computeAcceptKey };

/** A valid Sec-WebSocket-Key (RFC 6455 §4.1's example). */
export const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

/** Reject after `ms` with a message naming what we waited for. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Poll `cond` every 5 ms until it is true, or fail after `ms`. */
export async function waitUntil(cond: () => boolean, ms: number, what: string): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A promise with its resolve function, for handing events out of callbacks. */
export function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Fail the file if any uncaught exception or unhandled rejection happens while its tests run:
 * nothing a peer sends may crash the process.
 */
export function guardProcess(): void {
  const escaped: unknown[] = [];
  const onError = (err: unknown): void => {
    escaped.push(err);
  };
  beforeAll(() => {
    process.on('uncaughtException', onError);
    process.on('unhandledRejection', onError);
  });
  afterEach(() => {
    const errs = escaped.splice(0);
    expect(errs.map((e) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e)))).toEqual([]);
  });
  afterAll(() => {
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
  });
}

/** Servers started by `startServer` in this file, closed by `closeAll` (call it in afterEach). */
const started: Server<any>[] = [];

/** A Server listening on 127.0.0.1, port 0. `setup` sets its handlers before it listens. */
export async function startServer<D = undefined>(
  options?: ServerOptionsInput,
  setup?: (s: Server<D>) => void,
): Promise<{ server: Server<D>; port: number; url: string }> {
  const server = new Server<D>(options);
  setup?.(server);
  const addr = await server.listen({ port: 0, host: '127.0.0.1' });
  started.push(server);
  return { server, port: addr.port, url: `ws://127.0.0.1:${addr.port}` };
}

/** Close every server started by `startServer` (after destroying the raw clients still open). */
export async function closeAll(): Promise<void> {
  for (const c of rawClients) c.destroy();
  rawClients.clear();
  const all = started.splice(0);
  await Promise.all(all.map((s) => s.close()));
}

// ---------------------------------------------------------------------------------------------
// Raw TCP

export interface HttpResponse {
  status: number;
  statusText: string;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
  /** Bytes after the header block (and body, when it had a Content-Length). */
  rest: Buffer;
}

/** Parse an HTTP/1.1 response head (and a Content-Length body) from `buf`; undefined if incomplete. */
export function parseResponse(buf: Buffer): HttpResponse | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3}) ?(.*)$/.exec(lines[0]!);
  if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(lines[0])}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const status = Number(m[1]);
  let bodyEnd = end + 4;
  if (status !== 101 && headers['content-length'] !== undefined) {
    bodyEnd += Number(headers['content-length']);
    if (buf.length < bodyEnd) return undefined;
  }
  return { status, statusText: m[2]!, headers, body: buf.subarray(end + 4, bodyEnd).toString('utf8'), rest: buf.subarray(bodyEnd) };
}

const rawClients = new Set<RawClient>();

/** A TCP client that records everything it reads. `closeAll` destroys the ones still open. */
export class RawClient {
  readonly socket: Socket;
  received: Buffer = Buffer.alloc(0);
  ended = false;
  closed = false;
  readonly #closedP: Promise<void>;

  constructor(socket: Socket) {
    this.socket = socket;
    rawClients.add(this);
    socket.on('data', (c: Buffer) => {
      this.received = Buffer.concat([this.received, c]);
    });
    socket.on('end', () => (this.ended = true));
    socket.on('error', () => {});
    this.#closedP = new Promise((r) =>
      socket.on('close', () => {
        this.closed = true;
        rawClients.delete(this);
        r();
      }),
    );
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    const socket = netConnect({ port, host });
    await withTimeout(once(socket, 'connect'), 2000, 'TCP connect');
    return new RawClient(socket);
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
    await waitUntil(() => cond(), ms, what);
  }

  /** The HTTP response, once its head (and Content-Length body) has arrived. */
  async response(ms = 2000): Promise<HttpResponse> {
    let r: HttpResponse | undefined;
    await this.waitFor(() => (r = parseResponse(this.received)) !== undefined || this.closed, ms, 'an HTTP response');
    r ??= parseResponse(this.received);
    if (r === undefined) throw new Error(`connection closed without a complete response: ${JSON.stringify(this.received.toString('latin1'))}`);
    return r;
  }

  /** Resolves when the TCP connection has closed. */
  async waitClosed(ms = 2000): Promise<void> {
    await withTimeout(this.#closedP, ms, 'the TCP connection to close');
  }

  /** Frames the server sent after the 101 response (parsed as a client). */
  frames(): Frame[] {
    const r = parseResponse(this.received);
    if (r === undefined || r.status !== 101) return [];
    return parseServerFrames(r.rest);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Every complete frame in `bytes`, parsed as a client parses a server's frames. */
export function parseServerFrames(bytes: Buffer): Frame[] {
  const p = new FrameParser({ role: 'client', maxFrameSize: 1 << 30, maxMessageSize: 1 << 30, allowRsv1: true });
  p.push(Buffer.from(bytes));
  const out: Frame[] = [];
  while (p.advance() === ParseStatus.Frame) {
    const f = p.frame();
    out.push({ ...f, payload: Buffer.from(f.payload) });
  }
  return out;
}

/** A masked frame as a client sends it. */
export function clientFrame(opcode: number, payload: string | Buffer, fin = true): Buffer {
  return encodeFrame(opcode, typeof payload === 'string' ? Buffer.from(payload) : payload, { fin, maskKey: 0x12345678 });
}

/**
 * A hand-made upgrade request. `headers` overrides the defaults (name matched case-insensitively);
 * a value of null leaves the header out.
 */
export function upgradeRequest(opts: { method?: string; path?: string; headers?: Record<string, string | null> } = {}): string {
  const defaults: Record<string, string> = {
    Host: 'localhost',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': KEY,
    'Sec-WebSocket-Version': '13',
  };
  const merged = new Map<string, [string, string | null]>();
  for (const [k, v] of Object.entries(defaults)) merged.set(k.toLowerCase(), [k, v]);
  for (const [k, v] of Object.entries(opts.headers ?? {})) merged.set(k.toLowerCase(), [k, v]);
  let s = `${opts.method ?? 'GET'} ${opts.path ?? '/'} HTTP/1.1\r\n`;
  for (const [name, value] of merged.values()) if (value !== null) s += `${name}: ${value}\r\n`;
  return s + '\r\n';
}

/** Send a hand-made request on a fresh TCP connection and read the response. */
export async function rawHandshake(port: number, request: string): Promise<{ client: RawClient; res: HttpResponse }> {
  const client = await RawClient.connect(port);
  client.write(request);
  const res = await client.response();
  return { client, res };
}

/** A bare TCP server whose connection handler the test writes (a fake WebSocket server). */
export async function startTcpServer(onConnection: (socket: Socket) => void): Promise<{ server: NetServer; port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onConnection(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Read the request head a client sent on `socket` (up to the blank line). */
export async function readRequestHead(socket: Socket, ms = 2000): Promise<{ head: string; headers: Record<string, string> }> {
  let buf = Buffer.alloc(0);
  const done = new Promise<string>((resolve) => {
    const on = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const i = buf.indexOf('\r\n\r\n');
      if (i !== -1) {
        socket.off('data', on);
        resolve(buf.subarray(0, i).toString('latin1'));
      }
    };
    socket.on('data', on);
  });
  const head = await withTimeout(done, ms, 'the request head');
  const headers: Record<string, string> = {};
  for (const line of head.split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { head, headers };
}
