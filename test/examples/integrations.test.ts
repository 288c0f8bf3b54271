/**
 * examples/integrations: each example (listen() with handleRequest, node:http, node:https, Express 5,
 * Fastify 5, Hono) is started as a user starts it (`node dist/examples/integrations/<name>.js`),
 * then real clients talk to it: wschan's connect() with a token in the query, the `ws` client with
 * an Authorization header, and an HTTP client on the framework's own routes.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket as WsClient } from 'ws';
import { connect, HandshakeError, type Conn } from '../../src/index.js';
import { selfSignedCert } from '../helpers/http-server.js';
import { withTimeout } from '../helpers/net.js';
import { runScript } from './run.js';

// A self-signed certificate for the node:https example, made with openssl at test time.
const cert = selfSignedCert();

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

interface Started {
  child: ChildProcess;
  url: string;
  wsUrl: string;
}

async function start(name: string, env: Record<string, string> = {}): Promise<Started> {
  const r = await runScript(`examples/integrations/${name}.js`, [], { env: { PORT: '0', ...env }, until: (out) => /WebSocket \S+\?room/.test(out), timeoutMs: 15_000 });
  children.push(r.child);
  const m = /chat: HTTP (\S+)\/health and \S+, WebSocket (\S+)\?room/.exec(r.out);
  if (m === null) throw new Error(`the ${name} example did not print its addresses: ${r.out}`);
  return { child: r.child, url: m[1]!, wsUrl: m[2]! };
}

function get(url: string, ca?: Buffer): Promise<{ status: number; type: string | undefined; body: string }> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const onRes = (res: import('node:http').IncomingMessage): void => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
      };
      const req = url.startsWith('https:') ? httpsGet(url, { ca, agent: false }, onRes) : httpGet(url, { agent: false }, onRes);
      req.on('error', reject);
    }),
    3000,
    `GET ${url}`,
  );
}

/** The next `n` chat events a wschan client receives. */
async function events(conn: Conn, n: number): Promise<unknown[]> {
  const out: unknown[] = [];
  const it = conn[Symbol.asyncIterator]();
  while (out.length < n) {
    const m = await withTimeout(it.next(), 3000, `chat event ${out.length + 1} of ${n}`);
    if (m.done === true) throw new Error(`the connection closed after ${out.length} events`);
    out.push(JSON.parse(m.value.data.toString()));
  }
  return out;
}

const examples: [string, boolean][] = [
  ['listen', false],
  ['http', false],
  ['https', true],
  ['express', false],
  ['fastify', false],
  ['hono', false],
];

describe.each(examples)('examples/integrations/%s', (name, tls) => {
  const skip = tls && cert.skip !== undefined;

  it.skipIf(skip)('serves its HTTP routes, and a chat with token auth and rooms on /chat', async () => {
    const files = cert.skip === undefined ? cert : undefined;
    const ca = tls ? files!.cert : undefined;
    const env: Record<string, string> = tls ? { TLS_KEY: files!.keyFile, TLS_CERT: files!.certFile } : {};
    const { child, url, wsUrl } = await start(name, env);
    expect(url).toMatch(tls ? /^https:\/\/127\.0\.0\.1:\d+$/ : /^http:\/\/127\.0\.0\.1:\d+$/);

    // The framework's own route still answers.
    const health = await get(`${url}/health`, ca);
    expect(health.status).toBe(200);
    expect(health.body).toBe('ok\n');
    // Other paths: the framework's 404; listen() without a route for it keeps its 426.
    expect((await get(`${url}/nope`, ca)).status).toBe(name === 'listen' ? 426 : 404);

    // alice with wschan's client (token in the query), bob with ws (token in Authorization).
    const alice = await connect(`${wsUrl}?room=r1&token=alice-token`, tls ? { tls: { ca: ca! } } : {});
    expect(await events(alice, 1)).toEqual([{ type: 'join', user: 'alice', room: 'r1' }]);
    const bob = new WsClient(`${wsUrl}?room=r1`, { headers: { Authorization: 'Bearer bob-token' }, ...(tls ? { ca } : {}) });
    const bobGot: unknown[] = [];
    bob.on('message', (d) => bobGot.push(JSON.parse(String(d))));
    await withTimeout(once(bob, 'open'), 3000, 'the ws client to open');
    expect(await events(alice, 1)).toEqual([{ type: 'join', user: 'bob', room: 'r1' }]);
    bob.send('hello from ws');
    await alice.write('hello from wschan');
    expect(await events(alice, 2)).toEqual([
      { type: 'message', user: 'bob', text: 'hello from ws' },
      { type: 'message', user: 'alice', text: 'hello from wschan' },
    ]);

    // Another room does not hear r1.
    const carol = await connect(`${wsUrl}?room=r2&token=alice-token`, tls ? { tls: { ca: ca! } } : {});
    expect(await events(carol, 1)).toEqual([{ type: 'join', user: 'alice', room: 'r2' }]);

    const rooms = await get(`${url}/rooms`, ca);
    expect(rooms.status).toBe(200);
    expect(rooms.type).toMatch(/^application\/json/);
    expect(JSON.parse(rooms.body)).toEqual({ rooms: [{ room: 'r1', members: 2 }, { room: 'r2', members: 1 }] });

    // A bad token is refused before any WebSocket exists.
    const err = await connect(`${wsUrl}?room=r1&token=nope`, tls ? { tls: { ca: ca! } } : {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as HandshakeError).status).toBe(401);

    const bobClosed = once(bob, 'close');
    bob.close(1000);
    await withTimeout(bobClosed, 3000, 'the ws client to close');
    expect(await events(alice, 1)).toEqual([{ type: 'leave', user: 'bob' }]);
    expect(bobGot).toEqual([
      { type: 'join', user: 'bob', room: 'r1' },
      { type: 'message', user: 'bob', text: 'hello from ws' },
      { type: 'message', user: 'alice', text: 'hello from wschan' },
    ]);
    await carol.close();

    // SIGTERM: the example closes the chat (1001 to alice) and exits with 0.
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    expect((await withTimeout(alice.closed, 5000, 'alice to be closed by the shutdown')).code).toBe(1001);
    const [code] = (await withTimeout(exited, 8000, `the ${name} example to exit`)) as [number | null];
    expect(code).toBe(0);
  });
});
