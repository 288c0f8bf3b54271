/** The protocol the typed tests share (and the child-process clients import from dist). */
import { Type } from '@sinclair/typebox';
import { defineProtocol } from '../../src/typed/index.js';

export const testProtocol = defineProtocol({
  client: {
    chat: Type.Object({ text: Type.String({ maxLength: 20 }) }),
    join: Type.Object({ room: Type.String({ minLength: 1 }) }),
    slow: Type.Object({ ms: Type.Integer({ minimum: 0, maximum: 5000 }) }),
    ping: Type.Null(),
  },
  server: {
    said: Type.Object({ from: Type.Integer(), text: Type.String() }),
    joined: Type.Object({ room: Type.String(), members: Type.Integer() }),
    price: Type.Object({ symbol: Type.String(), px: Type.Number() }),
    done: Type.Null(),
  },
  replies: { client: { join: 'joined', slow: 'joined' } },
});
