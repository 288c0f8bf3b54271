/**
 * The chat that every integration example serves (node:http, node:https, Express, Fastify, Hono):
 * one wschan Server on the path `/chat`, attached to the framework's own http server, so the
 * framework keeps serving its HTTP routes and wschan takes the upgrades for `/chat` only.
 *
 * - Authentication in `handleUpgrade`: a token, from `Authorization: Bearer <token>` or (browsers
 *   cannot set that header on a WebSocket) from `?token=`. A bad token is refused with 401
 *   before any WebSocket exists.
 * - Topics: `?room=<name>` subscribes the connection to the topic `room:<name>`; a text message is
 *   published to that room as JSON (framed once for every member), with joins and leaves.
 */
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { CloseCode, Server } from '../../src/index.js';

export interface ChatUser {
  user: string;
  room: string;
}

/** Demo tokens: token → user name. A real app asks its session store or verifies a JWT. */
export const DEMO_TOKENS: ReadonlyMap<string, string> = new Map([
  ['alice-token', 'alice'],
  ['bob-token', 'bob'],
]);

const ROOM = /^[a-z0-9-]{1,32}$/;

export function createChat(tokens: ReadonlyMap<string, string> = DEMO_TOKENS): Server<ChatUser> {
  const chat = new Server<ChatUser>({ path: '/chat', maxMessageSize: 4096, pingInterval: 30_000 });
  chat
    .handleUpgrade((req) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const auth = req.headers.authorization;
      const bearer = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
      const user = tokens.get(bearer ?? url.searchParams.get('token') ?? '');
      if (user === undefined) return { status: 401, reason: 'unknown token', headers: { 'WWW-Authenticate': 'Bearer' } };
      const room = url.searchParams.get('room') ?? 'lobby';
      if (!ROOM.test(room)) return { status: 400, reason: 'room: 1-32 of a-z, 0-9, -' };
      return { data: { user, room } };
    })
    .handleOpen((conn) => {
      conn.subscribe(`room:${conn.data.room}`);
      chat.publish(`room:${conn.data.room}`, JSON.stringify({ type: 'join', user: conn.data.user, room: conn.data.room }));
    })
    .handleData((conn, data, isBinary) => {
      if (isBinary) {
        void conn.close(CloseCode.UnsupportedData, 'text only');
        return;
      }
      chat.publish(`room:${conn.data.room}`, JSON.stringify({ type: 'message', user: conn.data.user, text: data.toString() }));
    })
    .handleClose((conn) => {
      chat.publish(`room:${conn.data.room}`, JSON.stringify({ type: 'leave', user: conn.data.user }));
    });
  return chat;
}

/** What `GET /rooms` answers in every example: each room and how many are in it. */
export function roomList(chat: Server<ChatUser>): { rooms: { room: string; members: number }[] } {
  return { rooms: chat.topics().map((t) => ({ room: t.slice('room:'.length), members: chat.subscriberCount(t) })) };
}

export interface RunningChat {
  chat: Server<ChatUser>;
  /** `http://host:port` (or https). */
  url: string;
  /** The WebSocket endpoint, `ws://host:port/chat` (or wss). */
  wsUrl: string;
  close(): Promise<void>;
}

export interface StartOptions {
  port?: number;
  host?: string;
}

/** The addresses of the listening server, and a close() that ends the chat before `closeServer`. */
export function running(chat: Server<ChatUser>, address: AddressInfo, tls: boolean, closeServer: () => Promise<void>): RunningChat {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    chat,
    url: `${tls ? 'https' : 'http'}://${host}:${address.port}`,
    wsUrl: `${tls ? 'wss' : 'ws'}://${host}:${address.port}/chat`,
    async close() {
      // The WebSockets first (1001 Going Away to each), then the HTTP server.
      await chat.close();
      await closeServer();
    },
  };
}

/** Listen on `options` (127.0.0.1 and a free port by default), then `running` with node:http's own close. */
export async function listenHttp(chat: Server<ChatUser>, server: HttpServer, options: StartOptions, tls = false): Promise<RunningChat> {
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  return running(chat, server.address() as AddressInfo, tls, () => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
}

/**
 * Run `start` when the file that calls this is the script node was started with: listen on
 * `PORT` (default 8080), print the addresses, and close cleanly on SIGINT or SIGTERM.
 */
export async function runIfMain(moduleUrl: string, name: string, start: (o: StartOptions) => Promise<RunningChat>): Promise<void> {
  if (process.argv[1] === undefined || pathToFileURL(process.argv[1]).href !== moduleUrl) return;
  const r = await start({ port: Number(process.env['PORT'] ?? 8080), host: process.env['HOST'] ?? '127.0.0.1' });
  console.log(`${name} chat: HTTP ${r.url}/health and ${r.url}/rooms, WebSocket ${r.wsUrl}?room=lobby&token=alice-token`);
  const stop = (): void => {
    r.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
