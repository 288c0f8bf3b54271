/**
 * A protocol: the message kinds each side may send, each a TypeBox schema, and which kinds are
 * requests answered by which kind. One module defines it; the server and the client import it,
 * so both ends check the same schemas and TypeScript derives every payload type from them.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType } from '@sinclair/typebox/errors';
import { OptionsError } from '../protocol/errors.js';

/** Message kinds of one direction: a name, a schema. */
export type Kinds = Record<string, TSchema>;

/** Which kinds of one direction are requests, and the kind of the other direction that answers. */
export type ReplyMap<From extends Kinds, To extends Kinds> = { readonly [K in keyof From]?: keyof To & string };

export interface ProtocolSpec<C extends Kinds, S extends Kinds, RC extends ReplyMap<C, S>, RS extends ReplyMap<S, C>> {
  /** What a client sends to the server. */
  client: C;
  /** What the server sends to a client. */
  server: S;
  /** Request kinds: `client: { join: 'joined' }` means a client's `join` sent with `request()` is answered by the server's `joined`. */
  replies?: { client?: RC; server?: RS };
}

/** One kind, compiled once: the validator and the envelope prefix it is serialized with. */
export interface CompiledKind {
  readonly kind: string;
  readonly schema: TSchema;
  readonly check: TypeCheck<TSchema>;
  /** `{"t":"<kind>"`: the start of every message of this kind on the wire. */
  readonly head: string;
}

/** The compiled form of one direction. */
export type CompiledKinds = ReadonlyMap<string, CompiledKind>;

export interface Protocol<C extends Kinds, S extends Kinds, RC extends ReplyMap<C, S> = {}, RS extends ReplyMap<S, C> = {}> {
  readonly client: C;
  readonly server: S;
  readonly replies: { readonly client: RC; readonly server: RS };
  /** The compiled validators, made once by `defineProtocol`. */
  readonly compiled: { readonly client: CompiledKinds; readonly server: CompiledKinds };
}

/** Any protocol (for generic code). */
export type AnyProtocol = Protocol<Kinds, Kinds, ReplyMap<Kinds, Kinds>, ReplyMap<Kinds, Kinds>>;

/**
 * One end's view of a protocol: the kinds it receives (`in`) and sends (`out`), the requests it
 * answers (`rin`: an incoming kind to the outgoing kind of its reply) and those it makes (`rout`).
 */
export interface Side {
  in: Kinds;
  out: Kinds;
  rin: ReplyMap<Kinds, Kinds>;
  rout: ReplyMap<Kinds, Kinds>;
}
export type ServerSide<P> = P extends Protocol<infer C, infer S, infer RC, infer RS> ? { in: C; out: S; rin: RC; rout: RS } : never;
export type ClientSide<P> = P extends Protocol<infer C, infer S, infer RC, infer RS> ? { in: S; out: C; rin: RS; rout: RC } : never;

/** The payload type of kind `K` of a set of kinds. */
export type Payload<K extends Kinds, N extends keyof K> = Static<K[N]>;

/** The kinds of `out` that are requests (listed in `rout`). */
export type RequestKinds<Sd extends Side> = keyof Sd['rout'] & keyof Sd['out'] & string;
/** The payload type of the reply to the request kind `K`. */
export type ReplyOf<Sd extends Side, K extends RequestKinds<Sd>> = Sd['rout'][K] extends infer R extends keyof Sd['in'] ? Static<Sd['in'][R]> : never;
/** What a handler of the incoming kind `K` returns: the reply's payload for a request kind. */
export type HandlerResult<Sd extends Side, K extends keyof Sd['in']> = K extends keyof Sd['rin']
  ? Sd['rin'][K] extends infer R extends keyof Sd['out']
    ? Static<Sd['out'][R]> | Promise<Static<Sd['out'][R]>>
    : unknown
  : unknown;

/** Kind names starting with `$` are the library's (`$error`). */
export const ERROR_KIND = '$error';

/**
 * Define the protocol shared by a server and its clients. Every schema is compiled here, once
 * (TypeBox's TypeCompiler); a kind name may not start with `$`, and every kind a `replies` entry
 * names must exist, else an `OptionsError`.
 */
export function defineProtocol<C extends Kinds, S extends Kinds, const RC extends ReplyMap<C, S> = {}, const RS extends ReplyMap<S, C> = {}>(
  spec: ProtocolSpec<C, S, RC, RS>,
): Protocol<C, S, RC, RS> {
  const client = compileKinds(spec.client, 'client');
  const server = compileKinds(spec.server, 'server');
  const rc = (spec.replies?.client ?? {}) as RC;
  const rs = (spec.replies?.server ?? {}) as RS;
  checkReplies(rc, client, server, 'client');
  checkReplies(rs, server, client, 'server');
  return { client: spec.client, server: spec.server, replies: { client: rc, server: rs }, compiled: { client, server } };
}

function compileKinds(kinds: Kinds, side: string): Map<string, CompiledKind> {
  if (typeof kinds !== 'object' || kinds === null) throw new OptionsError(`defineProtocol: ${side} must be an object of TypeBox schemas`);
  const out = new Map<string, CompiledKind>();
  for (const [kind, schema] of Object.entries(kinds)) {
    if (kind.length === 0 || kind.startsWith('$')) throw new OptionsError(`defineProtocol: ${side} kind ${JSON.stringify(kind)}: names starting with $ (and empty names) are reserved`);
    out.set(kind, { kind, schema, check: TypeCompiler.Compile(schema), head: `{"t":${JSON.stringify(kind)}` });
  }
  return out;
}

function checkReplies(map: Record<string, unknown>, from: CompiledKinds, to: CompiledKinds, side: string): void {
  for (const [req, rep] of Object.entries(map)) {
    if (!from.has(req)) throw new OptionsError(`defineProtocol: replies.${side}.${req}: no ${side} kind ${JSON.stringify(req)}`);
    if (typeof rep !== 'string' || !to.has(rep)) throw new OptionsError(`defineProtocol: replies.${side}.${req}: ${JSON.stringify(rep)} is not a kind of the other side`);
  }
}

/**
 * The JSON Schema keyword behind a TypeBox error: `StringMaxLength` is `maxLength`,
 * `ObjectRequiredProperty` is `required`, a bare type (`String`, `Object`) is `type`.
 */
export function ruleOf(type: ValueErrorType): string {
  const name = ValueErrorType[type] ?? 'Unknown';
  switch (name) {
    case 'ObjectRequiredProperty': return 'required';
    case 'Literal': return 'const';
    case 'Union': return 'anyOf';
    case 'Intersect': return 'allOf';
    case 'Not': return 'not';
    case 'Never': return 'not';
    case 'TupleLength': return 'items';
  }
  const m = /^(?:Array|BigInt|Date|Integer|Intersect|Number|Object|String|Uint8Array)([A-Z]\w*)$/.exec(name);
  if (m === null) return 'type';
  const rest = m[1]!.replace(/Timestamp$/, '').replace(/^FormatUnknown$/, 'Format');
  return rest[0]!.toLowerCase() + rest.slice(1);
}
