/** defineProtocol's checks, the wire encoding, the rule names, and the client's own policy. */
import { Type } from '@sinclair/typebox';
import { ValueErrorType } from '@sinclair/typebox/errors';
import { afterEach, describe, expect, it } from 'vitest';
import { Server, type Conn } from '../../src/index.js';
import { defineProtocol, encodeMessage, ruleOf, TypedClient, TypedServer, type TypedConn } from '../../src/typed/index.js';
import { closeAll, guardProcess, startServer, waitUntil } from '../helpers/net.js';
import { testProtocol } from './fixtures-protocol.js';

guardProcess();
afterEach(closeAll);

describe('defineProtocol', () => {
  it('refuses kind names starting with $ (reserved for $error) and empty ones', () => {
    expect(() => defineProtocol({ client: { $error: Type.Null() }, server: {} })).toThrow(/reserved/);
    expect(() => defineProtocol({ client: {}, server: { '': Type.Null() } })).toThrow(/reserved/);
  });

  it('refuses replies that name kinds the protocol does not have (JavaScript callers)', () => {
    const spec = { client: { a: Type.Null() }, server: { b: Type.Null() }, replies: { client: { a: 'c' } } } as unknown as Parameters<typeof defineProtocol>[0];
    expect(() => defineProtocol(spec)).toThrow(/replies\.client\.a: "c" is not a kind of the other side/);
    const spec2 = { client: { a: Type.Null() }, server: { b: Type.Null() }, replies: { client: { x: 'b' } } } as unknown as Parameters<typeof defineProtocol>[0];
    expect(() => defineProtocol(spec2)).toThrow(/no client kind "x"/);
  });

  it('compiles every kind once, with the head it is serialized with', () => {
    const c = testProtocol.compiled.client.get('chat')!;
    expect(c.head).toBe('{"t":"chat"');
    expect(c.check.Check({ text: 'ok' })).toBe(true);
    expect(c.check.Check({ text: 'x'.repeat(21) })).toBe(false);
  });
});

describe('wire format', () => {
  it('encodes {"t","d"}, with "id" or "re" before the payload, and omits "d" for undefined', () => {
    expect(encodeMessage('{"t":"chat"', { text: 'hi "you"' })).toBe('{"t":"chat","d":{"text":"hi \\"you\\""}}');
    expect(encodeMessage('{"t":"join"', { room: 'a' }, 'id', 7)).toBe('{"t":"join","id":7,"d":{"room":"a"}}');
    expect(encodeMessage('{"t":"joined"', null, 're', 7)).toBe('{"t":"joined","re":7,"d":null}');
    expect(encodeMessage('{"t":"ping"', undefined)).toBe('{"t":"ping"}');
    for (const s of [encodeMessage('{"t":"a"', [1, 'x']), encodeMessage('{"t":"a"', 'str', 'id', 1)]) expect(() => JSON.parse(s)).not.toThrow();
  });

  it('names the JSON Schema keyword behind each TypeBox error', () => {
    expect(ruleOf(ValueErrorType.StringMaxLength)).toBe('maxLength');
    expect(ruleOf(ValueErrorType.StringPattern)).toBe('pattern');
    expect(ruleOf(ValueErrorType.ObjectRequiredProperty)).toBe('required');
    expect(ruleOf(ValueErrorType.ObjectAdditionalProperties)).toBe('additionalProperties');
    expect(ruleOf(ValueErrorType.IntegerMinimum)).toBe('minimum');
    expect(ruleOf(ValueErrorType.ArrayMaxItems)).toBe('maxItems');
    expect(ruleOf(ValueErrorType.Literal)).toBe('const');
    expect(ruleOf(ValueErrorType.Union)).toBe('anyOf');
    expect(ruleOf(ValueErrorType.String)).toBe('type');
    expect(ruleOf(ValueErrorType.Integer)).toBe('type');
  });
});

describe('TypedServer and TypedClient', () => {
  it('handleMessage refuses a kind this end does not receive (JavaScript callers)', async () => {
    const { server } = await startServer();
    const typed = new TypedServer(server, testProtocol);
    expect(() => (typed.handleMessage as (k: string, f: () => void) => unknown)('said', () => {})).toThrow(/not a kind this end receives/);
  });

  it('options are checked: an unknown key or a bad value throws an OptionsError naming it', async () => {
    const { server } = await startServer();
    expect(() => new TypedServer(server, testProtocol, { invalid: 'explode' as 'drop' })).toThrow(/\/invalid/);
    expect(() => new TypedClient(testProtocol, { maxPendingRequests: 0 })).toThrow(/\/maxPendingRequests/);
    expect(() => new TypedClient(testProtocol, { nope: 1 } as object)).toThrow(/nope/);
  });

  it('conn(raw) gives the typed view in handleOpen (one per connection), to send a first message', async () => {
    let typed!: TypedServer<typeof testProtocol>;
    const views: unknown[] = [];
    const { url } = await startServer(undefined, (s) => {
      typed = new TypedServer(s, testProtocol);
      s.handleOpen((raw: Conn) => {
        views.push(typed.conn(raw), typed.conn(raw));
        void typed.conn(raw).send('done', null);
      });
    });
    let done = 0;
    const conn = await new TypedClient(testProtocol).handleMessage('done', () => void done++).connect(url);
    await waitUntil(() => done === 1, 2000, 'the first message');
    expect(views[0]).toBe(views[1]);
    await conn.close();
  });

  it('two endpoints viewing one connection each keep their own view; the handler gets the dispatching one', async () => {
    let typed!: TypedServer<typeof testProtocol>;
    // Another endpoint (of another Server) asks for the view first, so it holds the connection's slot.
    const other = new TypedServer(new Server(), testProtocol);
    const views: unknown[] = [];
    let inHandler: unknown;
    const { url } = await startServer(undefined, (s) => {
      typed = new TypedServer(s, testProtocol).handleMessage('chat', (c) => void (inHandler = c));
      s.handleOpen((raw: Conn) => void views.push(other.conn(raw), typed.conn(raw), typed.conn(raw), other.conn(raw), raw));
    });
    const conn = await new TypedClient(testProtocol).connect(url);
    conn.send('chat', { text: 'hi' });
    await waitUntil(() => inHandler !== undefined, 2000, 'the chat message');
    const [o1, t1, t2, o2, raw] = views as [TypedConn<any>, TypedConn<any>, TypedConn<any>, TypedConn<any>, Conn];
    expect(o1).toBe(o2);
    expect(t1).toBe(t2);
    expect(t1).not.toBe(o1);
    expect(t1.raw).toBe(raw);
    expect(o1.raw).toBe(raw);
    expect(inHandler).toBe(t1);
    await conn.close();
  });

  it("the client's default policy drops bad input from the server, counts it, and tells handleInvalid", async () => {
    const { url } = await startServer(undefined, (s) => s.handleOpen((raw) => {
      void raw.write('not json');
      void raw.write('{"t":"said","d":{"from":"x"}}');
      void raw.write('{"t":"nope"}');
      void raw.write(Buffer.from([1]));
      void raw.write('{"t":"$error","d":{"code":"WS_ERR_UNKNOWN_KIND","message":"m","path":"/t","rule":"enum"}}');
      void raw.write('{"t":"said","d":{"from":1,"text":"ok"}}');
    }));
    const seen: string[] = [];
    const client = new TypedClient(testProtocol)
      .handleMessage('said', (_c, m) => void seen.push(`said ${m.text}`))
      .handleInvalid((_c, e) => void seen.push(`invalid ${e.code}${e.path ? ` ${e.path} ${e.rule}` : ''}`))
      .handleErrorMessage((_c, e) => void seen.push(`peer ${e.code} ${e.path} ${e.rule}`));
    const conn = await client.connect(url);
    await waitUntil(() => seen.length === 6, 2000, 'six events');
    expect(seen).toEqual([
      'invalid WS_ERR_NOT_JSON',
      'invalid WS_ERR_INVALID_MESSAGE /text required',
      'invalid WS_ERR_UNKNOWN_KIND /t enum',
      'invalid WS_ERR_UNEXPECTED_BINARY',
      'peer WS_ERR_UNKNOWN_KIND /t enum',
      'said ok',
    ]);
    expect(conn.state).toBe('open');
    const s = client.stats;
    expect([s.notJson, s.invalid.said, s.unknownKind, s.unexpectedBinary, s.errorsReceived, s.received.said]).toEqual([1, 1, 1, 1, 1, 1]);
    await conn.close();
  });
});
