/**
 * Type tests: every line after a `// @ts-expect-error TSxxxx` must fail to compile with that
 * error. The test tsconfig includes this file, so `npm test`'s typecheck fails if one of these
 * lines ever compiles (an unused @ts-expect-error is an error); test/typed/types.test.ts compiles
 * it again without the directives and checks each line's error code.
 */
import { Type } from '@sinclair/typebox';
import { Server } from '../../src/index.js';
import { defineProtocol, TypedClient, TypedServer } from '../../src/typed/index.js';
import { testProtocol } from './fixtures-protocol.js';

const typed = new TypedServer(new Server(), testProtocol, { keys: { price: (m) => m.symbol } });
const client = new TypedClient(testProtocol);

// What compiles: payloads typed from the schemas alone, no casts.
typed.handleMessage('chat', (conn, msg) => {
  const text: string = msg.text;
  void conn.send('said', { from: conn.id, text });
});
typed.handleMessage('join', (_conn, msg) => ({ room: msg.room, members: 2 }));
typed.handleMessage('slow', async () => ({ room: 'r', members: 0 }));
typed.publish('prices', 'price', { symbol: 'EURUSD', px: 1.08 });
typed.broadcast('done', null);
client.handleMessage('said', (_conn, msg) => void (msg.from + 1));
export async function ok(): Promise<number> {
  const c = await client.connect('ws://127.0.0.1:1/');
  await c.send('chat', { text: 'hi' });
  const r = await c.request('join', { room: 'lobby' });
  return r.members;
}

// An unknown kind.
// @ts-expect-error TS2345 the server receives no kind 'said'
typed.handleMessage('said', () => undefined);
typed.handleMessage('chat', (conn) => {
  // @ts-expect-error TS2345 the server sends no kind 'chat'
  void conn.send('chat', { text: 'x' });
});
// @ts-expect-error TS2345 publish takes only server kinds
typed.publish('t', 'nope', {});

// A wrong payload.
typed.handleMessage('chat', (_conn, msg) => {
  // @ts-expect-error TS2339 chat has no field 'room'
  void msg.room;
  // @ts-expect-error TS2322 text is a string
  const n: number = msg.text;
  void n;
});
// @ts-expect-error TS2322 px is a number
typed.publish('prices', 'price', { symbol: 'EURUSD', px: '1.08' });
// @ts-expect-error TS2353 no extra field in an object literal
typed.broadcast('said', { from: 1, text: 'x', extra: true });
// @ts-expect-error TS2345 done's payload is null
typed.broadcast('done', undefined);
// @ts-expect-error TS2339 a key function gets the kind's payload: price has no 'sym'
void new TypedServer(new Server(), testProtocol, { keys: { price: (m) => m.sym } });

// Requests and replies.
// @ts-expect-error TS2322 the reply to join is { room, members }
typed.handleMessage('join', () => ({ room: 'r' }));
export async function wrong(): Promise<void> {
  const c = await client.connect('ws://127.0.0.1:1/');
  // @ts-expect-error TS2345 chat is not a request kind
  await c.request('chat', { text: 'x' });
  const r = await c.request('join', { room: 'a' });
  // @ts-expect-error TS2322 members is a number
  const s: string = r.members;
  void s;
  // @ts-expect-error TS2345 the client receives no kind 'join'
  client.handleMessage('join', () => undefined);
}

// A replies entry must name kinds of the protocol.
defineProtocol({
  client: { a: Type.String() },
  server: { b: Type.String() },
  // @ts-expect-error TS2322 'c' is not a server kind
  replies: { client: { a: 'c' } },
});
