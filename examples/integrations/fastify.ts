/**
 * The chat beside a Fastify 5 app: `app.server` is its node:http server, and the chat attaches
 * to it. Fastify keeps its routes; the upgrades for `/chat` are wschan's.
 *
 *   npm run build && node dist/examples/integrations/fastify.js
 */
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { createChat, roomList, runIfMain, running, type RunningChat, type StartOptions } from './chat.js';

export async function startFastifyChat(options: StartOptions = {}): Promise<RunningChat> {
  const chat = createChat();
  const app = Fastify();
  app.get('/health', async (_req, reply) => reply.type('text/plain').send('ok\n'));
  app.get('/rooms', async () => roomList(chat));
  chat.attach(app.server);
  await app.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1' });
  return running(chat, app.server.address() as AddressInfo, false, () => app.close());
}

await runIfMain(import.meta.url, 'Fastify', startFastifyChat);
