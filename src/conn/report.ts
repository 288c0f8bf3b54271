import { CloseCode } from '../protocol/constants.js';
import { ErrorCode, WebSocketError } from '../protocol/errors.js';
import type { Conn, ConnHandlers } from './conn.js';
import { connErrorChannel, warnUnhandled } from './diagnostics.js';

/**
 * Tell `handleError` (and the `wschan:conn:error` channel) about an error of `conn`; with no
 * `handleError`, print a warning once per error code (see diagnostics.ts).
 */
export function reportError<D>(conn: Conn<D>, handlers: ConnHandlers<D>, error: WebSocketError): void {
  if (connErrorChannel.hasSubscribers) connErrorChannel.publish({ conn, error });
  const h = handlers.handleError;
  if (h === undefined) {
    warnUnhandled(error, 'handleError');
    return;
  }
  try {
    h(conn, error);
  } catch {
    // An error handler that throws has nobody left to tell (and a throw here would escape from a
    // socket's 'data' event, or from upgrade() after the 101 has gone out).
  }
}

/** handleOpen threw or rejected: report it as any handler failure, and close with 1011 (RFC 6455 §7.4.1). */
export function failOpen<D>(conn: Conn<D>, handlers: ConnHandlers<D>, err: unknown): void {
  const error = new WebSocketError(ErrorCode.HandlerFailed, `handleOpen threw: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
    closeCode: CloseCode.InternalError,
  });
  reportError(conn, handlers, error);
  if (conn.state === 'open') void conn.close(CloseCode.InternalError, 'internal error');
}
