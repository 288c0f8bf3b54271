/**
 * The typed chat server: one node:http server for the page (and `/protocol.json`) and the
 * WebSocket upgrades, a `TypedServer` for the messages. A client `join`s (a request answered by
 * `welcome`), then `say`s; everyone in the room gets `said` and `presence` by topic publish, each
 * serialized and framed once.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, Server } from '../../src/index.js';
import { TypedMessageError, TypedServer } from '../../src/typed/index.js';
import { PAGE } from './page.js';
import { chat } from './protocol.js';

export interface ChatServer {
  typed: TypedServer<typeof chat, { name: string | undefined }>;
  url: string;
  http: HttpServer;
  close(): Promise<void>;
}

export async function startChatServer(options: { port?: number; host?: string; log?: (line: string) => void } = {}): Promise<ChatServer> {
  const log = options.log ?? (() => {});
  const server = new Server<{ name: string | undefined }>({ maxMessageSize: 64 * 1024, overflow: 'drop-oldest' });
  const members = new Set<string>();
  server.handleUpgrade(() => ({ data: { name: undefined } }));
  server.handleClose((conn) => {
    const name = conn.data.name;
    if (name === undefined) return;
    members.delete(name);
    typed.publish('room', 'presence', { name, joined: false, members: members.size });
    log(`${name} left`);
  });

  const typed = new TypedServer(server, chat, { invalid: 'reply' })
    .handleMessage('join', (conn, msg) => {
      if (conn.data.name !== undefined) throw new TypedMessageError(ErrorCode.RequestFailed, `already joined as ${conn.data.name}`);
      if (members.has(msg.name)) throw new TypedMessageError(ErrorCode.RequestFailed, `${msg.name} is taken`);
      conn.data.name = msg.name;
      members.add(msg.name);
      typed.publish('room', 'presence', { name: msg.name, joined: true, members: members.size });
      conn.subscribe('room');
      log(`${msg.name} joined`);
      return { you: msg.name, members: [...members] };
    })
    .handleMessage('say', (conn, msg) => {
      if (conn.data.name === undefined) return conn.close(1008, 'join first');
      typed.publish('room', 'said', { from: conn.data.name, text: msg.text, at: Date.now() });
      return undefined;
    })
    .handleInvalid((conn, err) => log(`client ${conn.id}: ${err.code} ${err.message}`));

  const protocolJson = JSON.stringify({ client: chat.client, server: chat.server, replies: chat.replies });
  const http = createServer((req, res) => {
    if (req.url === '/' || req.url === '/index.html') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(PAGE);
    } else if (req.url === '/protocol.json') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(protocolJson);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
    }
  });
  server.attach(http);
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 8080, options.host ?? '127.0.0.1', resolve);
  });
  const addr = http.address() as AddressInfo;
  return {
    typed,
    http,
    url: `http://${addr.address}:${addr.port}/`,
    async close() {
      await server.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
