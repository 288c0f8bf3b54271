/**
 * The chat with no HTTP framework at all: `chat.listen()` reads request heads itself (no
 * node:http), and `handleRequest` answers the plain HTTP routes (`/health` for a load balancer,
 * `/rooms`); any other plain request gets the default 426 Upgrade Required.
 *
 *   npm run build && node dist/examples/integrations/listen.js
 */
import { createChat, roomList, runIfMain, running, type RunningChat, type StartOptions } from './chat.js';

export async function startListenChat(options: StartOptions = {}): Promise<RunningChat> {
  const chat = createChat();
  chat.handleRequest((req) => {
    if (req.url === '/health') return { status: 200, body: 'ok\n' };
    if (req.url === '/rooms') return { status: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(roomList(chat)) };
    return undefined;
  });
  const address = await chat.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1' });
  // chat.close() (in running's close) also closes the listener.
  return running(chat, address, false, async () => {});
}

await runIfMain(import.meta.url, 'listen()', startListenChat);
