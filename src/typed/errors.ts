/**
 * The error of a typed message: what the peer sent was not JSON, named an unknown kind, or failed
 * its kind's schema (`path` and `rule` say where and which rule); or a request timed out, was
 * refused for too many outstanding, or was answered with an error.
 */
import { Type, type Static } from '@sinclair/typebox';
import { ErrorCode, WebSocketError } from '../protocol/errors.js';

/**
 * The payload of the `$error` message one side sends the other (policy `'reply'`, or a request
 * that failed). `code` is one of the `WS_ERR_*` strings; `kind`, `path` (a JSON pointer into the
 * payload, e.g. `/text`) and `rule` (the JSON Schema keyword that failed, e.g. `maxLength`) say
 * what was wrong when it was a message.
 */
export const ErrorPayloadSchema = Type.Object({
  code: Type.String(),
  message: Type.String(),
  kind: Type.Optional(Type.String()),
  path: Type.Optional(Type.String()),
  rule: Type.Optional(Type.String()),
});
export type ErrorPayload = Static<typeof ErrorPayloadSchema>;

export class TypedMessageError extends WebSocketError {
  override name = 'TypedMessageError';
  /** The message kind, when it was known. */
  readonly kind: string | undefined;
  /** A JSON pointer into the message's payload (`/text`), or to the envelope field (`/t`). */
  readonly path: string | undefined;
  /** The JSON Schema keyword that failed (`maxLength`, `required`, `type`...), or `json`. */
  readonly rule: string | undefined;

  constructor(code: ErrorCode, message: string, detail: { kind?: string | undefined; path?: string | undefined; rule?: string | undefined; closeCode?: number; cause?: unknown } = {}) {
    super(code, message, { closeCode: detail.closeCode, cause: detail.cause });
    this.kind = detail.kind;
    this.path = detail.path;
    this.rule = detail.rule;
  }

  /** The `$error` payload that names this error to the peer. */
  toPayload(): ErrorPayload {
    const p: ErrorPayload = { code: this.code, message: this.message };
    if (this.kind !== undefined) p.kind = this.kind;
    if (this.path !== undefined) p.path = this.path;
    if (this.rule !== undefined) p.rule = this.rule;
    return p;
  }

  /** An error the peer named in a `$error` message. */
  static fromPayload(p: ErrorPayload): TypedMessageError {
    const known = (Object.values(ErrorCode) as string[]).includes(p.code);
    return new TypedMessageError(known ? (p.code as ErrorCode) : ErrorCode.RequestFailed, p.message, { kind: p.kind, path: p.path, rule: p.rule });
  }
}
