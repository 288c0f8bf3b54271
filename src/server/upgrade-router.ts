import type { IncomingMessage } from 'node:http';
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { ErrorCode, WebSocketError } from '../protocol/errors.js';

/** A wschan Server as the router sees it: the path it serves (every path when undefined). */
export interface UpgradeRoute {
  readonly path: string | undefined;
  /** Take the upgrade: answer it one way or another. */
  take(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Answer an upgrade that no Server and no other listener takes (404). */
  refuseUnrouted(req: IncomingMessage, socket: Duplex): void;
}

/**
 * The wschan Servers attached to one node:http(s) server, behind one `upgrade` listener.
 *
 * The rule: an upgrade goes to the Server whose `path` is the request's path, else to the Server
 * attached without a `path`; a Server never touches a socket it does not take (writing a refusal
 * into a socket another listener has upgraded corrupts that connection). An upgrade that no
 * Server takes is left to the http server's other `upgrade` listeners when it has some (they own
 * it, and must answer it); when the router is the only listener, nobody else will answer, so it
 * gets a 404 (without it the client would wait until a timeout).
 *
 * One listener for all the Servers (rather than one each) makes the choice once per upgrade, and
 * makes "nobody took it" knowable without a timer or a guess about what another listener did.
 */
class UpgradeRouter {
  readonly #byPath = new Map<string, UpgradeRoute>();
  #catchAll: UpgradeRoute | undefined;
  #first: UpgradeRoute | undefined;
  readonly #server: EventEmitter;

  constructor(server: EventEmitter) {
    this.#server = server;
  }

  get empty(): boolean {
    return this.#byPath.size === 0 && this.#catchAll === undefined;
  }

  add(route: UpgradeRoute): void {
    const path = route.path;
    if (path === undefined) {
      if (this.#catchAll !== undefined && this.#catchAll !== route) {
        throw new WebSocketError(ErrorCode.InvalidArgument, 'another Server without a path is attached to this http server: give each Server its own path option');
      }
      this.#catchAll = route;
    } else {
      const other = this.#byPath.get(path);
      if (other !== undefined && other !== route) {
        throw new WebSocketError(ErrorCode.InvalidArgument, `another Server with path ${path} is attached to this http server`);
      }
      this.#byPath.set(path, route);
    }
    this.#first ??= route;
  }

  remove(route: UpgradeRoute): void {
    if (this.#catchAll === route) this.#catchAll = undefined;
    else if (route.path !== undefined && this.#byPath.get(route.path) === route) this.#byPath.delete(route.path);
    if (this.#first === route) this.#first = this.#catchAll ?? this.#byPath.values().next().value;
  }

  readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const route = (this.#byPath.size === 0 ? undefined : this.#byPath.get(pathOf(req.url))) ?? this.#catchAll;
    if (route !== undefined) {
      route.take(req, socket, head);
      return;
    }
    // Not ours: another listener's, if there is one.
    if (this.#server.listenerCount('upgrade') > 1) return;
    this.#first?.refuseUnrouted(req, socket);
  };
}

const routers = new WeakMap<EventEmitter, UpgradeRouter>();

/** Route the upgrades of `server` to `route` (see UpgradeRouter for the rule). Throws when the path is taken. */
export function addRoute(server: EventEmitter, route: UpgradeRoute): void {
  let router = routers.get(server);
  if (router === undefined) {
    router = new UpgradeRouter(server);
    router.add(route);
    routers.set(server, router);
    server.on('upgrade', router.onUpgrade);
    return;
  }
  router.add(route);
}

/** Stop routing to `route`; the last route gone, the router's listener leaves the server. */
export function removeRoute(server: EventEmitter, route: UpgradeRoute): void {
  const router = routers.get(server);
  if (router === undefined) return;
  router.remove(route);
  if (router.empty) {
    server.off('upgrade', router.onUpgrade);
    routers.delete(server);
  }
}

/** The path of a request-target: without its query (`/chat?room=1` is `/chat`). */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
