/**
 * `wschan/protocol`: the sans-I/O core (bytes in, events out; no sockets, no timers), for people
 * who bring their own transport. Every name here is documented in README.md ("The protocol core").
 */
export { CloseCode, DEFLATE_TRAILER, MAX_CONTROL_PAYLOAD, Opcode, WEBSOCKET_GUID, isValidWireCloseCode } from './constants.js';
export type { Role } from './constants.js';
export { ConnectionError, ErrorCode, HandshakeError, OptionsError, ProtocolError, WebSocketError } from './errors.js';
export type { WebSocketErrorOptions } from './errors.js';
export { FixedMaskKey, RandomMaskKeys, applyMask, readMaskKey } from './mask.js';
export type { MaskKeySource } from './mask.js';
export { Utf8Validator, isValidUtf8 } from './utf8.js';
export { encodeClosePayload, parseClosePayload } from './close.js';
export type { ClosePayload } from './close.js';
export { FrameParser, ParseStatus } from './frame-parser.js';
export type { Frame, FrameParserOptions, ParseEvent } from './frame-parser.js';
export { encodeFrame, frameHeaderSize, writeFrame, writeFrameHeader } from './frame-encoder.js';
export type { EncodeOptions } from './frame-encoder.js';
export { MessageAssembler } from './message-assembler.js';
export type { Inflater, MessageAssemblerOptions } from './message-assembler.js';
