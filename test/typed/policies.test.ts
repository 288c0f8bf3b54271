/**
 * Bad input against a typed server, sent by a real client (`ws`) in another process: not JSON, an
 * unknown kind, a payload that fails its schema, a malformed envelope, unexpected binary. Each
 * policy ('reply', 'close', 'drop') does what it says, every case is counted, the right handler
 * still gets the valid messages, and nothing escapes into the server's handleError.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Server, type WebSocketError } from '../../src/index.js';
import { TypedServer, type InvalidPolicy, type TypedMessageError } from '../../src/typed/index.js';
import { testProtocol } from './fixtures-protocol.js';
import { runNodeChild } from '../helpers/child.js';

const PEER = fileURLToPath(new URL('./peer.mjs', import.meta.url));

/** Run the peer until it exits; its output lines. */
async function runPeer(url: string, messages: Array<string | { binary: number[] }>, idleMs = 800): Promise<string[]> {
  const { code, out } = await runNodeChild([PEER, url, JSON.stringify(messages), String(idleMs)]);
  if (code !== 0) throw new Error(`peer exited with ${code}:\n${out}`);
  return out.replace(/\n$/, '').split('\n');
}

const BAD = [
  '{"t":"chat","d":{"text":"hello"}}', // valid
  'this is not json',
  '{"t":"shout","d":{}}', // unknown kind
  '{"t":"chat","d":{"text":"far too long for twenty characters"}}', // maxLength 20
  '{"t":"chat","d":{}}', // required
  '[1,2]', // not an envelope
  '{"t":"join","id":7,"d":{"room":""}}', // a request whose payload fails: the error answers it
  '{"t":"join","id":-1,"d":{"room":"a"}}', // a bad id
  '{"t":"chat","id":3,"d":{"text":"x"}}', // an id on a kind that is no request
  '{"t":"chat","d":{"text":"bye"}}', // valid
] as const;

let server: Server | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(invalid: InvalidPolicy) {
  server = new Server();
  const errors: WebSocketError[] = [];
  server.handleError((_c, e) => errors.push(e));
  const invalidSeen: TypedMessageError[] = [];
  const chats: string[] = [];
  const typed = new TypedServer(server, testProtocol, { invalid })
    .handleMessage('chat', (conn, msg) => {
      chats.push(msg.text);
      return conn.send('said', { from: 1, text: msg.text });
    })
    .handleMessage('join', (_conn, msg) => ({ room: msg.room, members: 1 }))
    .handleInvalid((_conn, err) => invalidSeen.push(err));
  const addr = await server.listen({ port: 0, host: '127.0.0.1' });
  return { typed, errors, invalidSeen, chats, url: `ws://127.0.0.1:${addr.port}/` };
}

const parse = (lines: string[]) => lines.filter((l) => l.startsWith('msg ')).map((l) => JSON.parse(l.slice(4)) as { t: string; d: Record<string, unknown>; re?: number });

describe('typed messages: bad input policies, with a client in another process', () => {
  it("'reply': each bad message is answered with a $error naming the code, the path and the rule; the connection stays open", async () => {
    const { typed, errors, invalidSeen, chats, url } = await start('reply');
    const lines = await runPeer(url, [...BAD]);
    const got = parse(lines);
    expect(got).toEqual([
      { t: 'said', d: { from: 1, text: 'hello' } },
      { t: '$error', d: { code: 'WS_ERR_NOT_JSON', message: expect.stringMatching(/^not JSON: /), rule: 'json' } },
      { t: '$error', d: { code: 'WS_ERR_UNKNOWN_KIND', message: 'unknown message kind "shout"', path: '/t', rule: 'enum' } },
      { t: '$error', d: { code: 'WS_ERR_INVALID_MESSAGE', kind: 'chat', path: '/text', rule: 'maxLength', message: expect.stringContaining('chat /text: Expected string length less or equal to 20') } },
      { t: '$error', d: { code: 'WS_ERR_INVALID_MESSAGE', kind: 'chat', path: '/text', rule: 'required', message: expect.any(String) } },
      { t: '$error', d: { code: 'WS_ERR_INVALID_MESSAGE', path: '/t', rule: 'type', message: expect.any(String) } },
      { t: '$error', re: 7, d: { code: 'WS_ERR_INVALID_MESSAGE', kind: 'join', path: '/room', rule: 'minLength', message: expect.any(String) } },
      { t: '$error', d: { code: 'WS_ERR_INVALID_MESSAGE', path: '/id', rule: 'type', message: expect.any(String) } },
      { t: '$error', d: { code: 'WS_ERR_INVALID_MESSAGE', path: '/id', rule: 'type', message: 'chat is not a request kind: it takes no "id"' } },
      { t: 'said', d: { from: 1, text: 'bye' } },
    ]);
    expect(lines.at(-1)).toBe('close 1000 ');
    expect(chats).toEqual(['hello', 'bye']);
    expect(invalidSeen.map((e) => e.code)).toEqual(['WS_ERR_NOT_JSON', 'WS_ERR_UNKNOWN_KIND', 'WS_ERR_INVALID_MESSAGE', 'WS_ERR_INVALID_MESSAGE', 'WS_ERR_INVALID_MESSAGE', 'WS_ERR_INVALID_MESSAGE', 'WS_ERR_INVALID_MESSAGE', 'WS_ERR_INVALID_MESSAGE']);
    const s = typed.stats;
    expect(s.received).toEqual({ chat: 2, join: 0, slow: 0, ping: 0 });
    expect(s.invalid).toEqual({ chat: 2, join: 1, slow: 0, ping: 0 });
    expect(s.sent).toEqual({ said: 2, joined: 0, price: 0, done: 0 });
    expect({ notJson: s.notJson, unknownKind: s.unknownKind, malformed: s.malformed }).toEqual({ notJson: 1, unknownKind: 1, malformed: 3 });
    expect(errors).toEqual([]);
  }, 30_000);

  it("'drop': bad messages are counted and told to handleInvalid, nothing is answered, the valid ones are handled", async () => {
    const { typed, errors, invalidSeen, chats, url } = await start('drop');
    const lines = await runPeer(url, [...BAD]);
    expect(parse(lines)).toEqual([{ t: 'said', d: { from: 1, text: 'hello' } }, { t: 'said', d: { from: 1, text: 'bye' } }]);
    expect(lines.at(-1)).toBe('close 1000 ');
    expect(chats).toEqual(['hello', 'bye']);
    expect(invalidSeen).toHaveLength(8);
    expect(typed.stats.invalid.chat).toBe(2);
    expect(typed.stats.notJson + typed.stats.unknownKind + typed.stats.malformed).toBe(5);
    expect(errors).toEqual([]);
  }, 30_000);

  const closes: Array<[string, string | { binary: number[] }, number, string]> = [
    ['not JSON', 'nope', 1007, 'WS_ERR_NOT_JSON'],
    ['a failed schema', '{"t":"chat","d":{"text":5}}', 1007, 'WS_ERR_INVALID_MESSAGE'],
    ['a malformed envelope', '{"kind":"chat"}', 1007, 'WS_ERR_INVALID_MESSAGE'],
    ['an unknown kind', '{"t":"shout"}', 1008, 'WS_ERR_UNKNOWN_KIND'],
    ['binary without handleBinary', { binary: [1, 2, 3] }, 1003, 'WS_ERR_UNEXPECTED_BINARY'],
  ];
  for (const [what, message, code, reason] of closes) {
    it(`'close': ${what} closes the connection with ${code} and the error code as the reason`, async () => {
      const { errors, chats, url } = await start('close');
      const lines = await runPeer(url, ['{"t":"chat","d":{"text":"first"}}', message, '{"t":"chat","d":{"text":"after"}}']);
      expect(parse(lines)).toEqual([{ t: 'said', d: { from: 1, text: 'first' } }]);
      expect(lines.at(-1)).toBe(`close ${code} ${reason}`);
      expect(chats).toEqual(['first']);
      expect(errors).toEqual([]);
    }, 30_000);
  }

  it('binary messages go to handleBinary beside the typed ones', async () => {
    const { typed, url } = await start('close');
    typed.handleBinary((conn, data) => conn.sendBinary(Buffer.from([...data].reverse())));
    const lines = await runPeer(url, [{ binary: [1, 2, 3] }, '{"t":"chat","d":{"text":"x"}}']);
    expect(lines).toEqual(['open', 'binary 030201', 'msg {"t":"said","d":{"from":1,"text":"x"}}', 'close 1000 ']);
    expect(typed.stats.binary).toBe(1);
  }, 30_000);
});
