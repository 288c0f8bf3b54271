/**
 * The chat on a plain node:http server: `server.attach(http)` takes the upgrades for `/chat`;
 * every other request goes to the request listener, as before.
 *
 *   npm run build && node dist/examples/integrations/http.js      (PORT=9000 to change the port)
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createChat, listenHttp, roomList, runIfMain, type ChatUser, type RunningChat, type StartOptions } from './chat.js';
import type { Server } from '../../src/index.js';

/** The HTTP routes, as a node:http request listener (node:https uses the same one). */
export function routes(chat: Server<ChatUser>) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (req.url === '/health') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
    } else if (req.url === '/rooms') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(roomList(chat)));
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    }
  };
}

export async function startHttpChat(options: StartOptions = {}): Promise<RunningChat> {
  const chat = createChat();
  const http = createServer(routes(chat));
  chat.attach(http);
  return listenHttp(chat, http, options);
}

await runIfMain(import.meta.url, 'node:http', startHttpChat);
