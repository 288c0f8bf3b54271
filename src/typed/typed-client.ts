/**
 * The client end of a protocol, the mirror image of `TypedServer`: handlers for the server's
 * kinds, `send` and `request` for the client's. Make it, set its handlers, then `connect`: the
 * handlers are in place before the first message can arrive.
 */
import { connect, type ClientOptions } from '../client/client.js';
import { TypedEndpoint, type TypedOptions } from './endpoint.js';
import type { AnyProtocol, ClientSide } from './protocol.js';
import type { TypedConn } from './typed-conn.js';

export class TypedClient<P extends AnyProtocol, D = undefined> extends TypedEndpoint<ClientSide<P>, D> {
  /** `options.invalid` defaults to `'drop'` here (counted in `stats`, told to `handleInvalid`). */
  constructor(protocol: P, options: TypedOptions = {}) {
    super(protocol.compiled.server, protocol.compiled.client, protocol.replies.server, protocol.replies.client, options, 'drop', 'typed client options');
  }

  /** `connect(url, options)`, with this client's dispatch as `handleData`; resolves with the typed connection. */
  async connect(url: string | URL, options: Omit<ClientOptions<D>, 'handleData'> = {}): Promise<TypedConn<ClientSide<P>, D>> {
    const raw = await connect<D>(url, { ...options, handleData: this.dispatch });
    return this.conn(raw);
  }
}
