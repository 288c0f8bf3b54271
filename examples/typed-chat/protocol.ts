/**
 * The typed chat's protocol: the one module the server and the Node client import (the browser
 * page gets its schemas as JSON from the server, `/protocol.json`). Every payload type below is
 * derived from these schemas; nothing is declared twice.
 */
import { Type } from '@sinclair/typebox';
import { defineProtocol } from '../../src/typed/index.js';

const Name = Type.String({ minLength: 1, maxLength: 32, pattern: '^[\\w .-]+$' });

export const chat = defineProtocol({
  client: {
    /** A request: answered by `welcome`. */
    join: Type.Object({ name: Name }),
    say: Type.Object({ text: Type.String({ minLength: 1, maxLength: 500 }) }),
  },
  server: {
    welcome: Type.Object({ you: Name, members: Type.Array(Name) }),
    said: Type.Object({ from: Name, text: Type.String(), at: Type.Integer() }),
    presence: Type.Object({ name: Name, joined: Type.Boolean(), members: Type.Integer() }),
  },
  replies: { client: { join: 'welcome' } },
});

export type ChatProtocol = typeof chat;
