/**
 * The chat beside an Express 5 app: `app.listen()` returns the node:http server, and the chat
 * attaches to it. Express never sees the upgrades for `/chat`; its routes work as usual.
 *
 *   npm run build && node dist/examples/integrations/express.js
 */
import express from 'express';
import type { AddressInfo } from 'node:net';
import { createChat, roomList, runIfMain, running, type RunningChat, type StartOptions } from './chat.js';

export async function startExpressChat(options: StartOptions = {}): Promise<RunningChat> {
  const chat = createChat();
  const app = express();
  app.get('/health', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/rooms', (_req, res) => {
    res.json(roomList(chat));
  });
  const http = await new Promise<ReturnType<typeof app.listen>>((resolve, reject) => {
    const s = app.listen(options.port ?? 0, options.host ?? '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  chat.attach(http);
  return running(chat, http.address() as AddressInfo, false, () => {
    http.closeAllConnections();
    return new Promise<void>((resolve) => http.close(() => resolve()));
  });
}

await runIfMain(import.meta.url, 'Express', startExpressChat);
