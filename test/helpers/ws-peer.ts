/** Helpers to drive the `ws` package as the peer in interop tests. */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer, type ServerOptions } from 'ws';
import { withTimeout } from './net.js';

export interface WsMessage {
  data: Buffer;
  isBinary: boolean;
}

/** A ws client (or server-side ws socket) with a queue of received messages. */
export class WsPeer {
  readonly ws: WebSocket;
  readonly #queue: WsMessage[] = [];
  readonly #waiters: ((m: WsMessage) => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly pongs: Buffer[] = [];
  readonly pings: Buffer[] = [];

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      const m = { data: buf, isBinary };
      const w = this.#waiters.shift();
      if (w) w(m);
      else this.#queue.push(m);
    });
    ws.on('ping', (p) => this.pings.push(Buffer.from(p)));
    ws.on('pong', (p) => this.pongs.push(Buffer.from(p)));
    ws.on('error', () => {});
    this.closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  }

  static async connect(url: string, options?: WebSocket.ClientOptions): Promise<WsPeer> {
    const ws = new WebSocket(url, options);
    const peer = new WsPeer(ws);
    await withTimeout(once(ws, 'open'), 3000, 'the ws client to open');
    return peer;
  }

  next(ms = 3000): Promise<WsMessage> {
    const m = this.#queue.shift();
    if (m) return Promise.resolve(m);
    return withTimeout(new Promise<WsMessage>((r) => this.#waiters.push(r)), ms, 'a message from ws');
  }

  send(data: string | Buffer, options: { binary?: boolean; fin?: boolean; compress?: boolean } = {}): Promise<void> {
    return new Promise((resolve, reject) => this.ws.send(data, options, (err) => (err ? reject(err) : resolve())));
  }
}

/** A ws WebSocketServer on 127.0.0.1, port 0; `onPeer` gets each connection wrapped in a WsPeer. */
export async function startWsServer(
  options: Omit<ServerOptions, 'port' | 'host' | 'server'> = {},
  onPeer?: (peer: WsPeer) => void,
): Promise<{ wss: WebSocketServer; url: string; peers: WsPeer[]; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ ...options, port: 0, host: '127.0.0.1' });
  const peers: WsPeer[] = [];
  wss.on('connection', (ws) => {
    const p = new WsPeer(ws);
    peers.push(p);
    onPeer?.(p);
  });
  await withTimeout(once(wss, 'listening'), 3000, 'the ws server to listen');
  const port = (wss.address() as AddressInfo).port;
  return {
    wss,
    url: `ws://127.0.0.1:${port}`,
    peers,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
}
