/**
 * The server end of a protocol: it takes the `Server`'s `handleData`, dispatches each message to
 * the handler of its kind, and publishes typed messages. A published message is serialized once
 * (here) and framed once (by `Server.publish`), and is an ordinary text message from then on, so
 * a topic bus (threads, Redis: `src/server/bus.ts`) carries it as it carries any other.
 */
import type { Static } from '@sinclair/typebox';
import type { Conn } from '../conn/conn.js';
import type { PublishOptions, PublishResult, Server } from '../server/server.js';
import { TypedEndpoint, type TypedOptions } from './endpoint.js';
import type { AnyProtocol, Payload, ServerSide } from './protocol.js';
import { serializeOutgoing } from './typed-conn.js';

/** Conflation keys derived from a message, by outgoing kind: `{ price: (m) => m.symbol }`. */
export type KeyFunctions<Out> = { [K in keyof Out]?: (msg: Out[K] extends import('@sinclair/typebox').TSchema ? Static<Out[K]> : never) => string };

export interface TypedServerOptions<P extends AnyProtocol> extends TypedOptions {
  /**
   * The conflation key of a published message of a kind (overflow policy `'conflate'`). The key
   * used is `<kind>:<key>`, so a `price` never replaces a `trade` with the same symbol.
   */
  keys?: KeyFunctions<P['server']>;
}

export interface TypedPublishOptions {
  /** A conflation key for this message (instead of the kind's key function); prefixed with `<kind>:` too. */
  key?: string;
}

export class TypedServer<P extends AnyProtocol, D = undefined> extends TypedEndpoint<ServerSide<P>, D> {
  readonly server: Server<D>;
  readonly #keys: Record<string, ((msg: unknown) => string) | undefined>;

  /** Takes over `server.handleData`; `server.handleOpen`, `handleClose` and the rest stay yours. */
  constructor(server: Server<D>, protocol: P, options: TypedServerOptions<P> = {}) {
    const { keys, ...typed } = options;
    super(protocol.compiled.client, protocol.compiled.server, protocol.replies.client, protocol.replies.server, typed, 'reply', 'typed server options');
    this.server = server;
    this.#keys = { ...(keys as Record<string, ((msg: unknown) => string) | undefined>) };
    server.handleData(this.dispatch);
  }

  /** Send a message to the subscribers of `topic` (`server.publish`: serialized and framed once, never waits). */
  publish<K extends keyof P['server'] & string>(topic: string, kind: K, payload: Payload<P['server'], K>, options?: TypedPublishOptions): PublishResult {
    return this.server.publish(topic, this.#encode(kind, payload), this.#options(kind, payload, options));
  }

  /** Send a message to every open connection (`server.broadcast`). */
  broadcast<K extends keyof P['server'] & string>(kind: K, payload: Payload<P['server'], K>, options?: TypedPublishOptions): PublishResult {
    return this.server.broadcast(this.#encode(kind, payload), this.#options(kind, payload, options));
  }

  /** Send a message to the connections you choose (`server.publishTo`). */
  publishTo<K extends keyof P['server'] & string>(conns: Iterable<Conn<D>>, kind: K, payload: Payload<P['server'], K>, options?: TypedPublishOptions): PublishResult {
    return this.server.publishTo(conns, this.#encode(kind, payload), this.#options(kind, payload, options));
  }

  #encode(kind: string, payload: unknown): string {
    return serializeOutgoing(this, kind, payload);
  }

  #options(kind: string, payload: unknown, options: TypedPublishOptions | undefined): PublishOptions | undefined {
    const key = options?.key ?? this.#keys[kind]?.(payload);
    return key === undefined ? undefined : { key: `${kind}:${key}` };
  }
}
