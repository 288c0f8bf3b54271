import { ErrorCode, WebSocketError } from '../protocol/errors.js';

/** Where one handshake request goes: a host and port, or a unix socket, and the request-target. */
export interface Target {
  secure: boolean;
  host: string;
  port: number;
  /** The request-target: path and query (RFC 6455 §3 "resource name"). */
  path: string;
  /** A unix domain socket to connect to instead of host:port. */
  socketPath: string | undefined;
  /** The URL as given or as redirected to (errors and diagnostics name it). */
  href: string;
}

/**
 * Read a WebSocket URL: `ws:`, `wss:` (and `http:`/`https:`, which mean the same, RFC 6455 §3
 * requires a fragment-free URL), or `ws+unix:` / `wss+unix:` for a unix domain socket, written as
 * ws does: `ws+unix:/path/to/socket.sock:/request/path?query` (the request path after the first
 * `:` of the URL's path, `/` when there is none).
 */
export function parseTarget(url: string | URL): Target | WebSocketError {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return new WebSocketError(ErrorCode.InvalidArgument, `invalid URL: ${String(url)}`);
  }
  if (u.hash !== '') return new WebSocketError(ErrorCode.InvalidArgument, 'a WebSocket URL must not have a fragment (RFC 6455 §3)');
  const unix = u.protocol === 'ws+unix:' || u.protocol === 'wss+unix:';
  const secure = u.protocol === 'wss:' || u.protocol === 'https:' || u.protocol === 'wss+unix:';
  if (!unix && !secure && u.protocol !== 'ws:' && u.protocol !== 'http:') {
    return new WebSocketError(ErrorCode.InvalidArgument, `unsupported URL scheme ${u.protocol} (use ws:, wss:, ws+unix: or wss+unix:)`);
  }
  if (unix) {
    const full = decodeURIComponent(u.pathname);
    const colon = full.indexOf(':');
    const socketPath = colon === -1 ? full : full.slice(0, colon);
    if (socketPath === '') return new WebSocketError(ErrorCode.InvalidArgument, `no socket path in ${u.href}`);
    const path = colon === -1 || colon === full.length - 1 ? '/' : full.slice(colon + 1);
    return { secure, host: 'localhost', port: 0, path: path + u.search, socketPath, href: u.href };
  }
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return {
    secure,
    host,
    port: u.port !== '' ? Number(u.port) : secure ? 443 : 80,
    path: (u.pathname || '/') + u.search,
    socketPath: undefined,
    href: u.href,
  };
}

/** 301, 302, 303, 307 and 308 carry a Location to follow (RFC 9110 §15.4); 300 and 304 do not. */
export function isRedirect(status: number | undefined): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/**
 * Where a redirect goes: `location` resolved against the request that got it. A relative one
 * stays on the same host (or unix socket); `http:`/`https:` mean `ws:`/`wss:`.
 */
export function redirectTarget(from: Target, location: string): Target | WebSocketError {
  const base = from.socketPath !== undefined ? `${from.secure ? 'wss' : 'ws'}://localhost${from.path}` : from.href;
  let next: URL;
  try {
    next = new URL(location, base);
  } catch {
    return new WebSocketError(ErrorCode.HandshakeFailed, `invalid redirect Location: ${location}`);
  }
  next.hash = '';
  const relative = !/^[a-z][a-z0-9+.-]*:/i.test(location) && !location.startsWith('//');
  if (from.socketPath !== undefined && relative) {
    return { ...from, path: next.pathname + next.search, href: `${from.href.split(':')[0]}:${from.socketPath}:${next.pathname}${next.search}` };
  }
  return parseTarget(next);
}

/** Two targets with the same scheme, host and port (or socket): credentials may go from one to the other. */
export function sameOrigin(a: Target, b: Target): boolean {
  return a.secure === b.secure && a.host === b.host && a.port === b.port && a.socketPath === b.socketPath;
}
