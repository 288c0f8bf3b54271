/**
 * The wire format of typed messages: one JSON text message per message, an envelope around the
 * payload so that any schema (an object, a string, an array) can be a payload and the kind is
 * found without looking into it:
 *
 *   {"t":"<kind>","d":<payload>}             a message (`d` absent when the payload is undefined)
 *   {"t":"<kind>","id":<n>,"d":<payload>}    a request: a kind listed in the protocol's `replies`
 *   {"t":"<kind>","re":<n>,"d":<payload>}    the reply to request <n>
 *   {"t":"$error","d":{"code","message","kind"?,"path"?,"rule"?},"re"?:<n>}
 *
 * `<n>` is an integer from 1 to 2^31 - 1 chosen by the requester. Other fields are ignored.
 * Binary messages are outside the envelope: raw bytes for `handleBinary`.
 */
import { ERROR_KIND } from './protocol.js';

/** `{"t":"$error"`: the head of the error message. */
export const ERROR_HEAD = `{"t":${JSON.stringify(ERROR_KIND)}`;

/**
 * One message as JSON text, from the kind's precomputed head (`{"t":"chat"`): the payload is
 * stringified once and the envelope is concatenated around it (no envelope object is built).
 */
export function encodeMessage(head: string, payload: unknown, field?: 'id' | 're', n?: number): string {
  const start = field === undefined ? head : `${head},"${field}":${n}`;
  const d = payload === undefined ? undefined : JSON.stringify(payload);
  return d === undefined ? `${start}}` : `${start},"d":${d}}`;
}

/** A request id or reply reference: an integer from 1 to 2^31 - 1. */
export function isMessageId(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 0x7fffffff;
}
