/**
 * The chat on node:https: the same routes and `attach` as over node:http; clients connect with
 * `wss://`. The key and certificate are read from the files named by TLS_KEY and TLS_CERT (PEM).
 * For a local try, a self-signed pair:
 *
 *   openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 -keyout key.pem -out cert.pem
 *   npm run build && TLS_KEY=key.pem TLS_CERT=cert.pem node dist/examples/integrations/https.js
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { createChat, listenHttp, runIfMain, type RunningChat, type StartOptions } from './chat.js';
import { routes } from './http.js';

export interface HttpsStartOptions extends StartOptions {
  key: string | Buffer;
  cert: string | Buffer;
}

export async function startHttpsChat(options: HttpsStartOptions): Promise<RunningChat> {
  const chat = createChat();
  const https = createServer({ key: options.key, cert: options.cert }, routes(chat));
  chat.attach(https);
  return listenHttp(chat, https, options, true);
}

await runIfMain(import.meta.url, 'node:https', (o) => {
  const key = process.env['TLS_KEY'];
  const cert = process.env['TLS_CERT'];
  if (key === undefined || cert === undefined) {
    console.error('set TLS_KEY and TLS_CERT to the files of a PEM key and certificate (see the top of examples/integrations/https.ts)');
    process.exit(2);
  }
  return startHttpsChat({ ...o, key: readFileSync(key), cert: readFileSync(cert) });
});
