/**
 * What the typed server and the typed client share: the handlers by kind, the dispatch of one
 * incoming message (parse once, check the envelope, run the kind's compiled validator, call the
 * handler, answer a request), the policy for bad input and the counters.
 *
 * The hot path (a valid message of a known kind) is JSON.parse, three field reads, a Map lookup,
 * the compiled check, a field read for the connection's typed view (a private slot on `Conn`
 * reached through `connInternals`; a WeakMap only when a second endpoint views the same
 * connection) and the handler call: no closure, no Promise, no object of ours.
 */
import { Type } from '@sinclair/typebox';
import { connInternals, type Conn } from '../conn/conn.js';
import { CloseCode } from '../protocol/constants.js';
import { ErrorCode } from '../protocol/errors.js';
import { parseOptions } from '../server/options.js';
import { ErrorPayloadSchema, TypedMessageError, type ErrorPayload } from './errors.js';
import { ERROR_KIND, ruleOf, type CompiledKind, type CompiledKinds, type HandlerResult, type Side } from './protocol.js';
import type { Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { TypedConn, type ConnContext } from './typed-conn.js';
import { ERROR_HEAD, encodeMessage, isMessageId } from './wire.js';

/** What to do with a message that is not JSON, names an unknown kind or fails its schema. */
export type InvalidPolicy = 'reply' | 'close' | 'drop';

export const TypedOptionsSchema = Type.Object(
  {
    invalid: Type.Optional(Type.Union([Type.Literal('reply'), Type.Literal('close'), Type.Literal('drop')], {
      description: "Bad input: answer with a `$error` message, close (1007 / 1008 / 1003), or drop; always counted",
    })),
    maxPendingRequests: Type.Integer({ minimum: 1, default: 256, description: 'Requests a connection may have waiting for their reply' }),
    requestTimeout: Type.Integer({ minimum: 1, default: 10_000, description: 'Default time a request waits for its reply (ms)' }),
    validateOutgoing: Type.Boolean({ default: false, description: 'Check what this end sends against its schema too (throws on a mismatch)' }),
  },
  { additionalProperties: false },
);
export type TypedOptions = Partial<Static<typeof TypedOptionsSchema>>;

/** Counters since the endpoint was made (every connection of it). */
export interface TypedStats {
  /** Valid messages received, by kind (replies to our requests included). */
  received: Record<string, number>;
  /** Messages of a known kind that failed its schema, by kind. */
  invalid: Record<string, number>;
  /** Messages sent, by kind (a publish or broadcast counts once). */
  sent: Record<string, number>;
  /** Text messages that were not JSON. */
  notJson: number;
  /** Messages whose `t` named no kind of the protocol. */
  unknownKind: number;
  /** JSON that is not an envelope: not an object, no string `t`, a bad `id` or `re`. */
  malformed: number;
  /** Binary messages given to `handleBinary`. */
  binary: number;
  /** Binary messages refused (no `handleBinary`). */
  unexpectedBinary: number;
  /** Valid messages of a kind with no handler. */
  unhandled: number;
  /** `$error` messages received (answers to our requests included). */
  errorsReceived: number;
  /** Replies that matched no waiting request (it had timed out, or was never made). */
  strayReplies: number;
  /** Requests of ours that ended by their timeout. */
  requestsTimedOut: number;
  /** Messages that arrived after the policy 'close' closed their connection: not handled. */
  discarded: number;
}

type AnyHandler = (conn: TypedConn<Side, any>, msg: any) => unknown;

interface InKind {
  readonly compiled: CompiledKind;
  /** The outgoing kind that answers this kind when it is a request. */
  readonly reply: CompiledKind | undefined;
  handler: AnyHandler | undefined;
  received: number;
  invalid: number;
}

interface OutKind {
  readonly compiled: CompiledKind;
  readonly reply: CompiledKind | undefined;
  sent: number;
}

const checkErrorPayload = TypeCompiler.Compile(ErrorPayloadSchema);

export abstract class TypedEndpoint<Sd extends Side, D> implements ConnContext {
  readonly #in = new Map<string, InKind>();
  readonly #out = new Map<string, OutKind>();
  readonly #conns = new WeakMap<Conn<D>, TypedConn<Sd, D>>();
  /** Connections the policy 'close' closed: what they had already sent is not handled. */
  readonly #refused = new WeakSet<Conn<D>>();
  /** Whether the policy 'close' ever closed one: until then the hot path skips the check. */
  #refusedAny = false;
  readonly #policy: InvalidPolicy;
  readonly validateOutgoing: boolean;
  readonly maxPendingRequests: number;
  readonly requestTimeout: number;
  #binary: ((conn: TypedConn<Sd, D>, data: Buffer) => unknown) | undefined;
  #onInvalid: ((conn: TypedConn<Sd, D>, error: TypedMessageError) => void) | undefined;
  #onErrorMessage: ((conn: TypedConn<Sd, D>, error: TypedMessageError) => void) | undefined;
  #notJson = 0;
  #unknownKind = 0;
  #malformed = 0;
  #binaryCount = 0;
  #unexpectedBinary = 0;
  #unhandled = 0;
  #errorsReceived = 0;
  #strayReplies = 0;
  #timedOut = 0;
  #discarded = 0;

  protected constructor(incoming: CompiledKinds, outgoing: CompiledKinds, replyIn: Record<string, unknown>, replyOut: Record<string, unknown>, options: TypedOptions | undefined, defaultPolicy: InvalidPolicy, what: string) {
    const o = parseOptions(TypedOptionsSchema, options, what);
    this.#policy = o.invalid ?? defaultPolicy;
    this.validateOutgoing = o.validateOutgoing;
    this.maxPendingRequests = o.maxPendingRequests;
    this.requestTimeout = o.requestTimeout;
    for (const [kind, compiled] of incoming) {
      const r = replyIn[kind];
      this.#in.set(kind, { compiled, reply: typeof r === 'string' ? outgoing.get(r) : undefined, handler: undefined, received: 0, invalid: 0 });
    }
    for (const [kind, compiled] of outgoing) {
      const r = replyOut[kind];
      this.#out.set(kind, { compiled, reply: typeof r === 'string' ? incoming.get(r) : undefined, sent: 0 });
    }
  }

  /**
   * Handle the messages of `kind`: `msg` is typed from its schema and was checked against it.
   * For a request kind (in the protocol's `replies`), return the reply's payload (or a Promise
   * of it); throw a `TypedMessageError` to answer with that error instead. Anything else thrown
   * is a failure of the handler, as in `handleData` (the connection closes with 1011). A returned
   * Promise holds the connection's next message back, as in `handleData`.
   */
  handleMessage<K extends keyof Sd['in'] & string>(kind: K, fn: (conn: TypedConn<Sd, D>, msg: Static<Sd['in'][K]>) => HandlerResult<Sd, K>): this {
    const e = this.#in.get(kind);
    if (e === undefined) throw new TypedMessageError(ErrorCode.InvalidArgument, `handleMessage: ${JSON.stringify(kind)} is not a kind this end receives`, { kind });
    e.handler = fn as AnyHandler;
    return this;
  }

  /** Handle binary messages (raw bytes, outside the protocol). Without it, a binary message is bad input (`WS_ERR_UNEXPECTED_BINARY`, close code 1003). */
  handleBinary(fn: (conn: TypedConn<Sd, D>, data: Buffer) => unknown): this {
    this.#binary = fn;
    return this;
  }

  /** Told of every bad message (before the policy applies): not JSON, unknown kind, failed schema, unexpected binary. */
  handleInvalid(fn: (conn: TypedConn<Sd, D>, error: TypedMessageError) => void): this {
    this.#onInvalid = fn;
    return this;
  }

  /** Told of every `$error` message the peer sends outside a reply (it found fault with what we sent). */
  handleErrorMessage(fn: (conn: TypedConn<Sd, D>, error: TypedMessageError) => void): this {
    this.#onErrorMessage = fn;
    return this;
  }

  /** The typed view of a connection of this endpoint (made once per connection). */
  conn(raw: Conn<D>): TypedConn<Sd, D> {
    // The hot path: the view kept in the connection's slot by this endpoint (one field read).
    const v = connInternals.typedView(raw);
    if (v instanceof TypedConn && v.ctx === this) return v as TypedConn<Sd, D>;
    let c = this.#conns.get(raw);
    if (c === undefined) {
      c = new TypedConn<Sd, D>(raw, this);
      this.#conns.set(raw, c);
      // The first endpoint to see a connection takes the slot; another endpoint (rare: two typed
      // views of one connection) keeps finding its own view in its WeakMap.
      if (v === undefined) connInternals.setTypedView(raw, c);
    }
    return c;
  }

  get stats(): TypedStats {
    const received: Record<string, number> = {};
    const invalid: Record<string, number> = {};
    const sent: Record<string, number> = {};
    for (const [k, e] of this.#in) {
      received[k] = e.received;
      invalid[k] = e.invalid;
    }
    for (const [k, e] of this.#out) sent[k] = e.sent;
    return {
      received, invalid, sent,
      notJson: this.#notJson, unknownKind: this.#unknownKind, malformed: this.#malformed,
      binary: this.#binaryCount, unexpectedBinary: this.#unexpectedBinary, unhandled: this.#unhandled,
      errorsReceived: this.#errorsReceived, strayReplies: this.#strayReplies, requestsTimedOut: this.#timedOut, discarded: this.#discarded,
    };
  }

  /** @internal ConnContext: a request of ours ended by its timeout. */
  countTimeout(): void {
    this.#timedOut++;
  }

  /** @internal ConnContext: an outgoing kind by name. */
  outKind(kind: string): OutKind {
    const e = this.#out.get(kind);
    if (e === undefined) throw new TypedMessageError(ErrorCode.InvalidArgument, `${JSON.stringify(kind)} is not a kind this end sends`, { kind });
    return e;
  }

  /**
   * One incoming message, as a `handleData` handler: never throws because of what the peer sent
   * (a handler of yours may). Returns what the handler returned (a Promise holds the next message).
   */
  readonly dispatch = (raw: Conn<D>, data: Buffer, isBinary: boolean): unknown => {
    if (this.#refusedAny && raw.state !== 'open' && this.#refused.has(raw)) {
      this.#discarded++;
      return undefined;
    }
    if (isBinary) {
      const b = this.#binary;
      if (b !== undefined) {
        this.#binaryCount++;
        return b(this.conn(raw), data);
      }
      this.#unexpectedBinary++;
      return this.#bad(raw, new TypedMessageError(ErrorCode.UnexpectedBinary, 'binary messages are not part of this protocol', { closeCode: CloseCode.UnsupportedData }), undefined);
    }
    let m: any;
    try {
      m = JSON.parse(data.toString());
    } catch (err) {
      this.#notJson++;
      // RFC 6455 §7.4.1: 1007, data inconsistent with the type of the message.
      return this.#bad(raw, new TypedMessageError(ErrorCode.NotJson, `not JSON: ${(err as Error).message}`, { rule: 'json', closeCode: CloseCode.InvalidPayloadData }), undefined);
    }
    if (typeof m !== 'object' || m === null || typeof m.t !== 'string') return this.#malformedEnvelope(raw, '/t', 'not a typed message: an object with a string "t" is expected', undefined);
    const t: string = m.t;
    if (m.re !== undefined) return this.#reply(raw, t, m.re, m.d);
    const id = m.id;
    if (id !== undefined && !isMessageId(id)) return this.#malformedEnvelope(raw, '/id', '"id" must be an integer from 1 to 2147483647', undefined);
    const e = this.#in.get(t);
    if (e === undefined) {
      if (t === ERROR_KIND) return this.#errorMessage(raw, m.d);
      this.#unknownKind++;
      // RFC 6455 §7.4.1: 1008, a message that violates the endpoint's policy.
      return this.#bad(raw, new TypedMessageError(ErrorCode.UnknownKind, `unknown message kind ${JSON.stringify(t).slice(0, 64)}`, { path: '/t', rule: 'enum', closeCode: CloseCode.PolicyViolation }), id);
    }
    if (id !== undefined && e.reply === undefined) return this.#malformedEnvelope(raw, '/id', `${t} is not a request kind: it takes no "id"`, undefined);
    const d = m.d;
    if (!e.compiled.check.Check(d)) {
      e.invalid++;
      return this.#bad(raw, schemaError(e.compiled, d), id);
    }
    e.received++;
    const h = e.handler;
    if (h === undefined) {
      this.#unhandled++;
      if (id !== undefined && e.reply !== undefined) this.#sendError(raw, new TypedMessageError(ErrorCode.RequestFailed, `no handler for ${t}`, { kind: t }), id);
      return undefined;
    }
    if (id === undefined) return h(this.conn(raw), d);
    return this.#answer(raw, e.reply!, h, d, id);
  };

  /** A request: run the handler and send its result (or the TypedMessageError it threw) as the reply. */
  #answer(raw: Conn<D>, reply: CompiledKind, h: AnyHandler, d: unknown, id: number): unknown {
    let r: unknown;
    try {
      r = h(this.conn(raw), d);
    } catch (err) {
      return this.#failed(raw, err, id);
    }
    if (typeof r === 'object' && r !== null && typeof (r as PromiseLike<unknown>).then === 'function') {
      return (r as PromiseLike<unknown>).then((v) => this.#sendReply(raw, reply, v, id), (err: unknown) => this.#failed(raw, err, id));
    }
    this.#sendReply(raw, reply, r, id);
    return undefined;
  }

  #sendReply(raw: Conn<D>, reply: CompiledKind, v: unknown, id: number): void {
    const out = this.#out.get(reply.kind)!;
    if (this.validateOutgoing && !reply.check.Check(v)) {
      this.#sendError(raw, new TypedMessageError(ErrorCode.RequestFailed, `the reply failed its schema (${reply.kind})`, { kind: reply.kind }), id);
      throw schemaError(reply, v);
    }
    out.sent++;
    raw.tryWrite(encodeMessage(reply.head, v, 're', id));
  }

  /** A request handler threw: a TypedMessageError is the answer; anything else is answered generically and rethrown (1011). */
  #failed(raw: Conn<D>, err: unknown, id: number): void {
    if (err instanceof TypedMessageError) {
      this.#sendError(raw, err, id);
      return;
    }
    this.#sendError(raw, new TypedMessageError(ErrorCode.RequestFailed, 'the request failed'), id);
    throw err;
  }

  #sendError(raw: Conn<D>, err: TypedMessageError, id: number | undefined): void {
    raw.tryWrite(encodeMessage(ERROR_HEAD, err.toPayload(), id === undefined ? undefined : 're', id));
  }

  /** A reply (`re`) to one of our requests: resolve it, or reject it with what was wrong. Never answered back. */
  #reply(raw: Conn<D>, t: string, re: unknown, d: unknown): undefined {
    const v = connInternals.typedView(raw);
    const tc = v instanceof TypedConn && v.ctx === this ? v : this.#conns.get(raw);
    const p = tc?.takeRequest(re);
    if (p === undefined) {
      this.#strayReplies++;
      return undefined;
    }
    if (t === ERROR_KIND) {
      this.#errorsReceived++;
      p.reject(checkErrorPayload.Check(d) ? TypedMessageError.fromPayload(d) : new TypedMessageError(ErrorCode.RequestFailed, 'the peer answered with a malformed error'));
      return undefined;
    }
    const e = this.#in.get(t);
    if (e === undefined || e.compiled !== p.reply) {
      this.#malformed++;
      p.reject(new TypedMessageError(ErrorCode.InvalidMessage, `expected a ${p.reply.kind} reply, got ${JSON.stringify(t).slice(0, 64)}`, { kind: p.reply.kind, path: '/t', rule: 'const' }));
      return undefined;
    }
    if (!e.compiled.check.Check(d)) {
      e.invalid++;
      p.reject(schemaError(e.compiled, d));
      return undefined;
    }
    e.received++;
    p.resolve(d);
    return undefined;
  }

  /** A `$error` outside a reply: the peer found fault with something we sent. Never answered back. */
  #errorMessage(raw: Conn<D>, d: unknown): undefined {
    this.#errorsReceived++;
    if (!checkErrorPayload.Check(d)) {
      this.#malformed++;
      return undefined;
    }
    this.#onErrorMessage?.(this.conn(raw), TypedMessageError.fromPayload(d as ErrorPayload));
    return undefined;
  }

  #malformedEnvelope(raw: Conn<D>, path: string, message: string, id: number | undefined): unknown {
    this.#malformed++;
    return this.#bad(raw, new TypedMessageError(ErrorCode.InvalidMessage, message, { path, rule: 'type', closeCode: CloseCode.InvalidPayloadData }), id);
  }

  /** Bad input, already counted: tell handleInvalid, then apply the policy. */
  #bad(raw: Conn<D>, err: TypedMessageError, id: number | undefined): undefined {
    this.#onInvalid?.(this.conn(raw), err);
    const policy = this.#policy;
    if (policy === 'reply') this.#sendError(raw, err, id);
    else if (policy === 'close') {
      this.#refused.add(raw);
      this.#refusedAny = true;
      void raw.close(err.closeCode ?? CloseCode.PolicyViolation, err.code);
    }
    return undefined;
  }
}

/** The first schema error of `value`, naming the kind, the path into the payload and the rule. */
function schemaError(c: CompiledKind, value: unknown): TypedMessageError {
  const e = c.check.Errors(value).First();
  const path = e?.path ?? '';
  const rule = e === undefined ? 'type' : ruleOf(e.type);
  return new TypedMessageError(ErrorCode.InvalidMessage, `${c.kind}${path === '' ? '' : ` ${path}`}: ${e?.message ?? 'fails its schema'} (${rule})`, {
    kind: c.kind,
    path,
    rule,
    // RFC 6455 §7.4.1: 1007, data inconsistent with the type of the message.
    closeCode: CloseCode.InvalidPayloadData,
  });
}
