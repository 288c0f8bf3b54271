// The three ways of handling the same JSON messages that bench/typed.mjs compares, shared by the
// in-process measurement and the servers (bench/peers/typed-server.mjs):
//   typed: wschan/typed (TypeBox schemas, compiled once by TypeCompiler; the library's dispatch)
//   hand:  JSON.parse + a switch on "t" + hand-written checks of every field (what apps write)
//   ajv:   JSON.parse + the switch + ajv validators compiled from the same schemas (JSON Schema)
// Wire format for all three: {"t":"chat","d":{"room","text","ts"}} and {"t":"done"}; the answer to
// "done" is {"t":"count","d":{"n":<chat messages handled on this connection>}}.
import { Type } from '@sinclair/typebox';
import Ajv from 'ajv';
import { defineProtocol, TypedServer } from '../../dist/src/typed/index.js';

export const Chat = Type.Object({
  room: Type.String({ minLength: 1, maxLength: 64 }),
  text: Type.String({ maxLength: 500 }),
  ts: Type.Integer({ minimum: 0 }),
});
export const protocol = defineProtocol({
  client: { chat: Chat, done: Type.Null() },
  server: { count: Type.Object({ n: Type.Integer() }) },
});

/** A deterministic chat message of about `bytes` bytes. */
export function chatMessage(i, bytes = 160) {
  const base = { t: 'chat', d: { room: `room-${i % 10}`, text: '', ts: 1_732_240_000_000 + i } };
  const filler = 'lorem ipsum dolor sit amet, consectetur adipiscing elit ';
  const text = filler.repeat(10).slice(0, Math.max(0, bytes - JSON.stringify(base).length));
  base.d.text = text;
  return JSON.stringify(base);
}

const countReply = (n) => `{"t":"count","d":{"n":${n}}}`;

/**
 * wschan/typed on `server`: `onChat(conn)` per valid chat; returns the TypedServer. The per-connection
 * count lives in conn.data (set by the caller's handleUpgrade, or by the in-process harness).
 */
export function installTyped(server) {
  return new TypedServer(server, protocol)
    .handleMessage('chat', (conn, msg) => {
      conn.raw.data.n++;
      conn.raw.data.bytes += msg.text.length;
    })
    .handleMessage('done', (conn) => conn.send('count', { n: conn.raw.data.n }));
}

/** JSON.parse of a text message that must be an object; undefined (counted bad) otherwise. */
function parseObject(data, state) {
  let m;
  try {
    m = JSON.parse(data.toString());
  } catch {
    state.bad++;
    return undefined;
  }
  if (typeof m !== 'object' || m === null) {
    state.bad++;
    return undefined;
  }
  return m;
}

/** The hand-written handler: returns (data, write, state) => void. */
export function handHandler() {
  return (data, state, write) => {
    const m = parseObject(data, state);
    if (m === undefined) return;
    switch (m.t) {
      case 'chat': {
        const d = m.d;
        if (
          typeof d !== 'object' || d === null || Array.isArray(d) ||
          typeof d.room !== 'string' || d.room.length < 1 || d.room.length > 64 ||
          typeof d.text !== 'string' || d.text.length > 500 ||
          typeof d.ts !== 'number' || !Number.isInteger(d.ts) || d.ts < 0
        ) {
          state.bad++;
          return;
        }
        state.n++;
        state.bytes += d.text.length;
        return;
      }
      case 'done':
        if (m.d !== null) {
          state.bad++;
          return;
        }
        write(countReply(state.n));
        return;
      default:
        state.bad++;
    }
  };
}

/** The ajv handler: the same switch, ajv validators compiled once from the TypeBox schemas. */
export function ajvHandler() {
  const ajv = new Ajv({ allErrors: false });
  const validators = new Map([
    ['chat', ajv.compile(Chat)],
    ['done', ajv.compile(Type.Null())],
  ]);
  return (data, state, write) => {
    const m = parseObject(data, state);
    if (m === undefined) return;
    const v = validators.get(m.t);
    if (v === undefined || !v(m.d)) {
      state.bad++;
      return;
    }
    if (m.t === 'chat') {
      state.n++;
      state.bytes += m.d.text.length;
    } else write(countReply(state.n));
  };
}
