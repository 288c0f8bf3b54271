import { channel } from 'node:diagnostics_channel';
import type { WebSocketError } from '../protocol/errors.js';

/**
 * What wschan tells the world besides your callbacks:
 *
 * - `node:diagnostics_channel` channels, for logging and tracing tools (APMs, OpenTelemetry
 *   instrumentations, your own `subscribe`). A message is built and published only while the
 *   channel has subscribers (`channel.hasSubscribers`), so a process that listens to none pays a
 *   property read per event and nothing per frame.
 * - A warning on stderr the first time an error of each `code` goes unhandled (no `handleError`),
 *   so a handler that throws is not a silent 1011.
 *
 * Channel names and message shapes are public API (README, "Diagnostics").
 */
export const DiagnosticsChannel = {
  /** `{ conn }`: a connection is open (server or client side), before `handleOpen` runs. */
  connOpen: 'wschan:conn:open',
  /** `{ conn, info }`: a connection has closed, with its `CloseInfo`, before `handleClose` runs. */
  connClose: 'wschan:conn:close',
  /** `{ conn, error }`: every error a connection reports, whether or not `handleError` is set. */
  connError: 'wschan:conn:error',
  /**
   * `{ role: 'server', req, error }`: a Server refused or failed a handshake (`error.status` is the
   * HTTP status sent; `req` is undefined when no request could be read).
   * `{ role: 'client', url, error }`: `connect()` failed before the connection opened.
   */
  handshakeRefused: 'wschan:handshake:refused',
} as const;

export const connOpenChannel = channel(DiagnosticsChannel.connOpen);
export const connCloseChannel = channel(DiagnosticsChannel.connClose);
export const connErrorChannel = channel(DiagnosticsChannel.connError);
export const handshakeRefusedChannel = channel(DiagnosticsChannel.handshakeRefused);

/** The `process.emitWarning` type of the unhandled-error warning (`--disable-warning=WschanWarning` hides it). */
export const WARNING_TYPE = 'WschanWarning';

const warned = new Set<string>();

/**
 * An error reached nobody (no `handleError`): say so on stderr, once per error `code` per process
 * (the codes are a fixed set, so this prints a bounded number of lines whatever peers send). It
 * goes through `process.emitWarning`, so `process.on('warning')` sees it, and
 * `node --disable-warning=WschanWarning` (or `--no-warnings`) silences it; setting `handleError`
 * is the way to handle errors yourself.
 */
export function warnUnhandled(error: WebSocketError, where: string): void {
  if (warned.has(error.code)) return;
  warned.add(error.code);
  const cause = error.cause instanceof Error && error.cause.stack !== undefined ? `\n${error.cause.stack}` : '';
  process.emitWarning(`${error.message} (${error.code}${error.closeCode !== undefined ? `, close code ${error.closeCode}` : ''})`, {
    type: WARNING_TYPE,
    code: error.code,
    detail: `No ${where} is set, so this error was not handled; set one to handle errors. Printed once per error code.${cause}`,
  });
}

/** Forget which codes were printed (tests). */
export function resetUnhandledWarnings(): void {
  warned.clear();
}
