/**
 * wschan/typed: typed messages. A protocol of message kinds (TypeBox schemas) shared by the
 * server and its clients; compiled validators on receipt; typed send, publish and request.
 * A subpath of its own so that TypeBox's compiler is loaded only by the programs that use it.
 */
export { defineProtocol, ruleOf, ERROR_KIND } from './protocol.js';
export type { AnyProtocol, ClientSide, CompiledKind, HandlerResult, Kinds, Payload, Protocol, ProtocolSpec, ReplyMap, ReplyOf, RequestKinds, ServerSide, Side } from './protocol.js';
export { TypedServer } from './typed-server.js';
export type { KeyFunctions, TypedPublishOptions, TypedServerOptions } from './typed-server.js';
export { TypedClient } from './typed-client.js';
export { TypedConn } from './typed-conn.js';
export type { RequestOptions } from './typed-conn.js';
export { TypedOptionsSchema } from './endpoint.js';
export type { InvalidPolicy, TypedOptions, TypedStats } from './endpoint.js';
export { ErrorPayloadSchema, TypedMessageError } from './errors.js';
export type { ErrorPayload } from './errors.js';
export { encodeMessage } from './wire.js';

import type { ClientSide, ServerSide } from './protocol.js';
import type { TypedConn } from './typed-conn.js';
/** A server's typed view of one client connection: `ServerConn<typeof chat, MyData>`. */
export type ServerConn<P, D = undefined> = TypedConn<ServerSide<P>, D>;
/** A client's typed connection. */
export type ClientConn<P, D = undefined> = TypedConn<ClientSide<P>, D>;
