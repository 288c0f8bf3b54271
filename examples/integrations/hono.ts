/**
 * The chat beside a Hono app on @hono/node-server: `serve()` returns the node:http server, and
 * the chat attaches to it. Hono answers the HTTP routes; the upgrades for `/chat` are wschan's.
 *
 *   npm run build && node dist/examples/integrations/hono.js
 */
import { once } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createChat, roomList, runIfMain, running, type RunningChat, type StartOptions } from './chat.js';

export async function startHonoChat(options: StartOptions = {}): Promise<RunningChat> {
  const chat = createChat();
  const app = new Hono();
  app.get('/health', (c) => c.text('ok\n'));
  app.get('/rooms', (c) => c.json(roomList(chat)));
  // serve() makes a node:http server unless told otherwise (createServer), so the cast holds.
  const http = serve({ fetch: app.fetch, port: options.port ?? 0, hostname: options.host ?? '127.0.0.1' }) as HttpServer;
  chat.attach(http);
  await once(http, 'listening');
  return running(chat, http.address() as AddressInfo, false, () => {
    http.closeAllConnections();
    return new Promise<void>((resolve) => http.close(() => resolve()));
  });
}

await runIfMain(import.meta.url, 'Hono', startHonoChat);
