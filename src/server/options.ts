import { constants as bufferConstants } from 'node:buffer';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value, type ValueError } from '@sinclair/typebox/value';
import { OptionsError } from '../protocol/errors.js';
import { defaultConnOptions, type ConnOptions } from '../conn/conn.js';

const MiB = 1024 * 1024;
const d = defaultConnOptions;
/**
 * The largest Buffer this Node can make (4 GiB on Node 20, 2^53-1 on 22+ on 64-bit): a size limit
 * above it could never be honoured, so it is refused when the options are validated rather than
 * met later as an allocation error (issue 10).
 */
const MAX_BUFFER = bufferConstants.MAX_LENGTH;

/** permessage-deflate settings (RFC 7692); `true` means all defaults. */
export const DeflateOptionsSchema = Type.Object(
  {
    serverNoContextTakeover: Type.Boolean({ default: false, description: 'Server resets its compressor after each message' }),
    clientNoContextTakeover: Type.Boolean({ default: false, description: 'Client resets its compressor after each message' }),
    serverMaxWindowBits: Type.Integer({ minimum: 8, maximum: 15, default: 15, description: 'Largest LZ77 window of the server compressor (2^N bytes)' }),
    clientMaxWindowBits: Type.Integer({ minimum: 8, maximum: 15, default: 15, description: 'Largest LZ77 window of the client compressor (2^N bytes)' }),
    threshold: Type.Integer({ minimum: 0, default: 1024, description: 'Messages smaller than this (bytes) are sent uncompressed' }),
    // Level 1: on 1 KiB JSON it took 33 µs a message for 187 bytes, level 6 took 84 µs for 157.
    level: Type.Integer({ minimum: 0, maximum: 9, default: 1, description: 'zlib level (1: fastest; 9: smallest)' }),
    memLevel: Type.Integer({ minimum: 1, maximum: 9, default: 8, description: 'zlib memLevel (memory per compressor)' }),
    mode: Type.Union([Type.Literal('dedicated'), Type.Literal('shared')], {
      default: 'shared',
      // 'shared' by default: at 10,000 connections a third of the memory of 'dedicated' for 25% more
      // bytes on the wire (bench/deflate-modes.mjs, bench/RESULTS.md).
      description: "Server only. 'shared': no context takeover, one compressor per thread; 'dedicated': a sliding window per connection (see *Compression*)",
    }),
    // Issue 15: large messages leave the event loop (bench/deflate-stall.mjs, bench/RESULTS.md).
    threadPoolThreshold: Type.Integer({ minimum: 0, default: 128 * 1024, description: 'Messages larger than this (bytes) are (de)compressed on the thread pool, off the event loop' }),
    threadPoolConcurrency: Type.Integer({ minimum: 1, maximum: 64, default: 2, description: 'zlib jobs on the thread pool at once, per server (per connection for a client)' }),
    threadPoolMaxQueued: Type.Integer({ minimum: 0, default: 1024, description: 'zlib jobs waiting for the thread pool, at most; past it a message runs on the event loop in ~1 ms slices' }),
    threadPoolMaxQueuedBytes: Type.Integer({ minimum: 0, default: 256 * MiB, description: 'Input bytes of the waiting zlib jobs, at most; past it, as threadPoolMaxQueued' }),
  },
  { additionalProperties: false },
);
export type DeflateSettings = Static<typeof DeflateOptionsSchema>;

/** The options every connection takes, on the server and on the client. */
export const ConnOptionsSchema = {
  maxMessageSize: Type.Integer({ minimum: 1, maximum: MAX_BUFFER, default: d.maxMessageSize, description: 'Largest message accepted (bytes, after inflation); more closes with 1009' }),
  maxFrameSize: Type.Integer({ minimum: 1, maximum: MAX_BUFFER, default: d.maxFrameSize, description: 'Largest frame accepted (bytes); more closes with 1009' }),
  maxQueuedFrames: Type.Integer({ minimum: 1, default: d.maxQueuedFrames, description: 'Outbox bound in messages' }),
  maxQueuedBytes: Type.Integer({ minimum: 1, default: d.maxQueuedBytes, description: 'Outbox bound in payload bytes' }),
  overflow: Type.Union([Type.Literal('wait'), Type.Literal('drop-newest'), Type.Literal('drop-oldest'), Type.Literal('close'), Type.Literal('conflate')], {
    default: d.overflow,
    description: 'What a write does when the outbox is full',
  }),
  overflowCloseCode: Type.Union([Type.Literal(1008), Type.Literal(1013)], { default: d.overflowCloseCode, description: "Close code of the 'close' policy" }),
  maxWaiters: Type.Integer({ minimum: 0, default: d.maxWaiters, description: 'Writes that may wait for room at once (policy wait)' }),
  inboxSize: Type.Integer({ minimum: 1, default: d.inboxSize, description: 'Messages buffered for a slow handler or iterator before the socket is paused' }),
  maxInboundBytes: Type.Integer({
    minimum: 1,
    maximum: MAX_BUFFER,
    default: d.maxInboundBytes,
    description: 'Inbound budget per connection (bytes held by the parser, the assembler, the inbox and an async handler); reading pauses when reached',
  }),
  maxFragments: Type.Integer({ minimum: 1, default: d.maxFragments, description: 'Most frames in one message; more closes with 1009' }),
  messageTimeout: Type.Integer({ minimum: 0, default: d.messageTimeout, description: 'A frame or fragmented message must be whole within N ms of its first byte, else 1008 (0: no deadline)' }),
  pingInterval: Type.Integer({ minimum: 0, default: d.pingInterval, description: 'Send a keepalive ping every N ms (0: never)' }),
  pongTimeout: Type.Integer({ minimum: 1, default: d.pongTimeout, description: 'End the connection (1006) when a keepalive ping is unanswered this long' }),
  closeTimeout: Type.Integer({ minimum: 1, default: d.closeTimeout, description: 'Longest wait for the closing handshake before TCP is destroyed (checked every quarter of it: the wait ends within 1.25x closeTimeout)' }),
};

export const ServerOptionsSchema = Type.Object(
  {
    ...ConnOptionsSchema,
    handshakeTimeout: Type.Integer({ minimum: 1, default: 10_000, description: 'Longest time from connection to a completed upgrade (ms)' }),
    maxHeaderSize: Type.Integer({ minimum: 1024, default: 16 * 1024, description: 'Largest HTTP header block for listen() (bytes); more is refused with 431' }),
    path: Type.Optional(Type.String({ description: 'Only upgrade requests for this path: listen() and upgrade() answer others with 404; attach() leaves them to other Servers or listeners' })),
    origins: Type.Optional(Type.Array(Type.String(), { description: 'Allowed Origin values; others get 403' })),
    protocols: Type.Optional(Type.Array(Type.String(), { description: 'Subprotocols we speak, in order of preference' })),
    deflate: Type.Union([Type.Boolean(), Type.Partial(DeflateOptionsSchema)], { default: false, description: 'permessage-deflate: true, or settings (below)' }),
    shutdownTimeout: Type.Integer({ minimum: 0, default: 5_000, description: 'close(): how long to wait for connections to finish their closing handshake' }),
  },
  { additionalProperties: false },
);
export type ServerOptions = Static<typeof ServerOptionsSchema>;
export type ServerOptionsInput = Partial<ServerOptions>;

/**
 * Validate `input` against `schema` and fill in defaults. Unknown keys and bad values throw an
 * OptionsError naming every offending path, e.g. `/maxQueuedBytes: Expected integer`.
 */
export function parseOptions<S extends TSchema>(schema: S, input: unknown, what: string): Static<S> {
  if (input !== undefined && (typeof input !== 'object' || input === null || Array.isArray(input))) {
    throw new OptionsError(`${what} must be an object`);
  }
  // Defaults are filled into a copy of the caller's plain data. structuredClone is no good here:
  // it throws a DataCloneError on a function (`verifyClient: () => true`) before the schema can
  // name the key, and would turn an http.Agent or a SecureContext into a bare object.
  const value = Value.Default(schema, copyPlain(input ?? {}));
  if (!Value.Check(schema, value)) {
    const problems = [...Value.Errors(schema, value)].flatMap(describeError);
    throw new OptionsError(`invalid ${what}: ${[...new Set(problems)].slice(0, 8).join('; ')}`);
  }
  return value as Static<S>;
}

/** A copy of plain objects and arrays, all the way down; anything else (a function, a class instance) as is. */
function copyPlain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(copyPlain);
  if (typeof v !== 'object' || v === null) return v;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, item] of Object.entries(v)) out[k] = copyPlain(item);
  return out;
}

/**
 * One error as `path: message`. A union (`deflate: boolean | {...}`) reports only "Expected union
 * value" at its own path; the errors of its variants that reach deeper name the real culprit
 * (e.g. `/deflate/serverMaxWindowBits`), so those are reported instead.
 */
function describeError(e: ValueError): string[] {
  const deeper = e.errors.flatMap((it) => [...it]).filter((sub) => sub.path.length > e.path.length);
  if (deeper.length > 0) return deeper.flatMap(describeError);
  return [`${e.path || '/'}: ${e.message}`];
}

/** Resolve `deflate: boolean | partial` into full settings, or undefined when off. */
export function resolveDeflate(input: boolean | Partial<DeflateSettings>): DeflateSettings | undefined {
  if (input === false) return undefined;
  return Value.Default(DeflateOptionsSchema, input === true ? {} : { ...input }) as DeflateSettings;
}

export function connOptionsFrom(o: Static<typeof ServerOptionsSchema> | ConnOptions): ConnOptions {
  return {
    maxMessageSize: o.maxMessageSize,
    maxFrameSize: Math.min(o.maxFrameSize, o.maxMessageSize),
    maxQueuedFrames: o.maxQueuedFrames,
    maxQueuedBytes: o.maxQueuedBytes,
    overflow: o.overflow,
    overflowCloseCode: o.overflowCloseCode,
    maxWaiters: o.maxWaiters,
    inboxSize: o.inboxSize,
    maxInboundBytes: o.maxInboundBytes,
    maxFragments: o.maxFragments,
    messageTimeout: o.messageTimeout,
    pingInterval: o.pingInterval,
    pongTimeout: o.pongTimeout,
    closeTimeout: o.closeTimeout,
  };
}

export { MiB };
