import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { constants as h2, type Http2SecureServer, type Http2Server, type Http2ServerRequest, type Http2ServerResponse, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { adoptHttp2Stream } from '../conn/transport.js';
import { buildConnectRefusalHeaders, buildConnectResponseHeaders, isWebSocketConnect } from '../protocol/extended-connect.js';
import type { UpgradeRequest } from '../protocol/handshake.js';
import { addRoute, removeRoute, type UpgradeRoute } from './upgrade-router.js';

/**
 * The server side of WebSockets over HTTP/2 (RFC 8441): what `Server.attach()` does with a
 * node:http2 server. The handshake itself (checks, handleUpgrade, deflate, the Conn) is the
 * Server's, as over HTTP/1.1; this file turns a stream into an `UpgradeRequest` and answers on it.
 */

export type AnyHttp2Server = Http2Server | Http2SecureServer;

/** Whether `server` is a node:http2 server (they alone have `updateSettings`). */
export function isHttp2Server(server: object): server is AnyHttp2Server {
  return typeof (server as { updateSettings?: unknown }).updateSettings === 'function';
}

/**
 * What one node:http2 server has from us: one 'stream' listener for every wschan Server attached to
 * it, handing each WebSocket extended CONNECT to the upgrade router (src/server/upgrade-router.ts)
 * through an emitter of its own, so that routing by `path`, the 404 for a path nobody serves and
 * the refusal of two Servers on one path are the same as for HTTP/1.1 upgrades.
 */
interface Http2Hook {
  readonly connects: EventEmitter;
  readonly onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders?: string[]) => void;
  readonly onCompatConnect: (req: Http2ServerRequest, res: Http2ServerResponse) => void;
}

const hooks = new WeakMap<AnyHttp2Server, Http2Hook>();

/** Serve RFC 8441 extended CONNECTs on `server` to `route` (by path, as addRoute does). Throws when the path is taken. */
export function addHttp2Route(server: AnyHttp2Server, route: UpgradeRoute): void {
  let hook = hooks.get(server);
  if (hook === undefined) {
    hook = hookServer(server);
    hooks.set(server, hook);
  }
  addRoute(hook.connects, route);
}

/** Stop serving `route`; the last one gone, our listeners leave the server. */
export function removeHttp2Route(server: AnyHttp2Server, route: UpgradeRoute): void {
  const hook = hooks.get(server);
  if (hook === undefined) return;
  removeRoute(hook.connects, route);
  if (hook.connects.listenerCount('upgrade') === 0) {
    server.off('stream', hook.onStream);
    server.off('connect', hook.onCompatConnect);
    hooks.delete(server);
  }
}

function hookServer(server: AnyHttp2Server): Http2Hook {
  // RFC 8441 §3: a server advertises extended CONNECT with SETTINGS_ENABLE_CONNECT_PROTOCOL = 1;
  // without it, nghttp2 refuses the client's :protocol. It applies to sessions opened from now on.
  server.updateSettings({ enableConnectProtocol: true });
  const connects = new EventEmitter();
  // Other streams are left alone: the application's 'stream' or 'request' listeners answer them.
  const onStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders?: string[]): void => {
    if (!isWebSocketConnect(headers)) return;
    adoptHttp2Stream(stream);
    // RFC 9113 §8.3.1: :authority stands for Host; handleUpgrade code written for HTTP/1.1 reads `host`.
    if (headers.host === undefined && headers[':authority'] !== undefined) headers.host = headers[':authority'];
    const req: UpgradeRequest = {
      method: 'CONNECT',
      url: headers[':path'],
      httpVersion: '2.0',
      headers,
      rawHeaders: rawHeaders ?? [],
      socket: stream.session?.socket as Socket,
    };
    // The router reads `url` (for the path) and passes `req` on to the Server's handshake.
    connects.emit('upgrade', req as unknown as IncomingMessage, stream, EMPTY);
  };
  // With a 'request' listener (the compatibility API), node:http2 also turns every CONNECT into a
  // 'connect' event and answers 405 when nobody listens to it: we listen, so that ours are not
  // refused under us, and answer 405 ourselves to the others when we are the only listener.
  const onCompatConnect = (req: Http2ServerRequest, res: Http2ServerResponse): void => {
    if (isWebSocketConnect(req.headers)) return;
    if (server.listenerCount('connect') === 1) {
      res.statusCode = h2.HTTP_STATUS_METHOD_NOT_ALLOWED;
      res.end();
    }
  };
  server.on('stream', onStream);
  server.on('connect', onCompatConnect);
  return { connects, onStream, onCompatConnect };
}

const EMPTY = Buffer.alloc(0);

/** RFC 8441 §5: accept with 200 (headers from `buildConnectResponseHeaders`). Throws what `respond` throws. */
export function respondAccepted(stream: Duplex, opts: Parameters<typeof buildConnectResponseHeaders>[0]): void {
  (stream as ServerHttp2Stream).respond(buildConnectResponseHeaders(opts));
}

/**
 * Refuse: the status, the reason as a plain-text body, then RST_STREAM(NO_ERROR) once it is out,
 * which RFC 9113 §8.1 lets a server send after a complete response so the client stops sending
 * (a tunnel request never ends on its own).
 */
export function refuseStream(stream: Duplex, status: number, reason: string, headers: Record<string, string> | undefined): void {
  const s = stream as ServerHttp2Stream;
  if (s.destroyed || s.headersSent || s.closed) {
    s.destroy();
    return;
  }
  let h: Record<string, string | number>;
  try {
    h = buildConnectRefusalHeaders(status, headers);
    s.respond(h);
  } catch {
    // Headers from handleUpgrade that HTTP/2 refuses (CR/LF, connection-specific fields).
    s.respond(buildConnectRefusalHeaders(500));
    reason = 'invalid response headers';
  }
  s.end(reason);
  s.close(h2.NGHTTP2_NO_ERROR);
}
