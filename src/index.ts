/**
 * wschan: WebSocket server and client for Node.js.
 * RFC 6455 and RFC 7692; one Conn per connection with a reader and a writer joined by bounded queues.
 */
export { Server } from './server/server.js';
export type { UpgradeInfo, UpgradeAccept, UpgradeRefuse, UpgradeDecision, ListenOptions, PublishOptions, PublishResult, ServerStats } from './server/server.js';
export type { UpgradeRequest } from './protocol/handshake.js';
export type { HttpResponse, RequestHandler } from './server/http-response.js';
export { ServerOptionsSchema, DeflateOptionsSchema } from './server/options.js';
export type { ServerOptions, ServerOptionsInput, DeflateSettings } from './server/options.js';
export type { TopicBus, BusAttachment } from './server/bus.js';
export * from './scale/index.js';
export { connect, ClientOptionsSchema } from './client/client.js';
export type { ClientOptions } from './client/client.js';
export { reconnect, ReconnectingClient, ReconnectOptionsSchema } from './client/reconnect.js';
export type { ReconnectAttempt, ReconnectEnd, ReconnectOptions, ReconnectState } from './client/reconnect.js';
export { DiagnosticsChannel } from './conn/diagnostics.js';
export { Conn } from './conn/conn.js';
export type { CloseInfo, ConnHandlers, ConnState, Message, OverflowPolicy, TryWriteResult, WriteResult } from './conn/conn.js';
export { Channel } from './conn/channel.js';
export { CloseCode, Opcode } from './protocol/constants.js';
export { ConnectionError, ErrorCode, HandshakeError, OptionsError, ProtocolError, WebSocketError } from './protocol/errors.js';
export type { Frame } from './protocol/frame-parser.js';
export { FixedMaskKey, RandomMaskKeys } from './protocol/mask.js';
export type { MaskKeySource } from './protocol/mask.js';
