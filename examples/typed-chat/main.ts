/**
 * `npm run example:typed-chat -- --port <P> [--host <H>]`: the typed chat server, its page and its
 * WebSocket on one port. Prints one line once listening; runs until SIGINT/SIGTERM.
 */
import { startChatServer } from './server.js';

const argv = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const port = Number(arg('--port') ?? process.env['PORT'] ?? 8080);
const host = arg('--host') ?? '127.0.0.1';
const quiet = argv.includes('--quiet');

const chatServer = await startChatServer({ port, host, log: quiet ? undefined : (line) => console.log(line) });
console.log(`wschan typed chat listening on ${chatServer.url} (page and WebSocket; a Node client: node dist/examples/typed-chat/client.js --url ${chatServer.url.replace(/^http/, 'ws')} --name you)`);
const stop = (): void => void chatServer.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
