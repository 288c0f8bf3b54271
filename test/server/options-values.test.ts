/**
 * Options that are functions or objects: validated by the schema (never cloned), unknown keys
 * named in an OptionsError (a ws user's `verifyClient` used to throw a DataCloneError).
 */
import { Agent } from 'node:http';
import { createSecureContext } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { connect, OptionsError, reconnect, Server } from '../../src/index.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

async function rejected(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

describe('server options', () => {
  it("names an unknown function-valued key (ws's verifyClient) in an OptionsError, not a DataCloneError", () => {
    const err = thrown(() => new Server({ verifyClient: () => true } as never));
    expect(err).toBeInstanceOf(OptionsError);
    expect((err as OptionsError).code).toBe('WS_ERR_INVALID_OPTIONS');
    expect((err as OptionsError).message).toBe('invalid server options: /verifyClient: Unexpected property');
  });

  it('names unknown object-valued keys (an http.Agent, a SecureContext) and a function where a number belongs', () => {
    const err = thrown(() => new Server({ agent: new Agent(), secureContext: createSecureContext(), maxMessageSize: (() => 1) as never } as never));
    expect(err).toBeInstanceOf(OptionsError);
    const m = (err as OptionsError).message;
    expect(m).toContain('/agent: Unexpected property');
    expect(m).toContain('/secureContext: Unexpected property');
    expect(m).toContain('/maxMessageSize: Expected integer');
  });

  it('leaves the caller\'s options object untouched when filling in defaults', () => {
    const input = { deflate: { level: 3 } };
    const s = new Server(input);
    expect(input).toEqual({ deflate: { level: 3 } });
    expect(s.options.deflate).toMatchObject({ level: 3 });
  });
});

describe('client options', () => {
  it('accepts an http.Agent, an AbortSignal and TLS options with a SecureContext', async () => {
    // Validation passes and the handshake is attempted: it fails on the closed port, not on the options.
    const agent = new Agent();
    const err = await rejected(
      connect('ws://127.0.0.1:1/', { agent, signal: new AbortController().signal, tls: { secureContext: createSecureContext() }, handshakeTimeout: 2000 }),
    );
    expect((err as Error).name).toBe('HandshakeError');
    agent.destroy();
  });

  it('names an unknown key, and a non-function where a function or an Agent belongs', async () => {
    const err = await rejected(connect('ws://127.0.0.1:1/', { verifyClient: () => true, handleData: 42, agent: {} } as never));
    expect(err).toBeInstanceOf(OptionsError);
    const m = (err as OptionsError).message;
    expect(m).toContain('/handleData: Expected a function');
    expect(m).toContain('/agent: Expected an http.Agent');
    const unknown = await rejected(connect('ws://127.0.0.1:1/', { perMessageDeflate: true } as never));
    expect((unknown as OptionsError).message).toBe('invalid client options: /perMessageDeflate: Unexpected property');
  });

  it('reconnect() throws the same OptionsError at once, and names its own unknown keys', () => {
    const err = thrown(() => reconnect('ws://127.0.0.1:1/', { retries: 3 } as never));
    expect(err).toBeInstanceOf(OptionsError);
    expect((err as OptionsError).message).toBe('invalid client options: /retries: Unexpected property');
    const bad = thrown(() => reconnect('ws://127.0.0.1:1/', { jitter: 2 }));
    expect((bad as OptionsError).message).toMatch(/^invalid reconnect options: \/jitter: Expected number to be less or equal to 1/);
  });
});
