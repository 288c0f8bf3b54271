import type { DeflateCodec } from '../conn/conn.js';
import type { ExtensionOffer } from '../protocol/extensions.js';
import { PerMessageDeflate, deflateParamsKey, negotiateDeflateServer, type DeflateParams } from '../protocol/permessage-deflate.js';
import type { DeflateSettings } from './options.js';

export interface DeflateSetup {
  /** The extension as we answer it in Sec-WebSocket-Extensions. */
  response: ExtensionOffer;
  conn: { codec: DeflateCodec; threshold: number; paramsKey: string | null };
  params: DeflateParams;
}

/** RFC 7692 §5: accept the first permessage-deflate offer we can honour, and make its codec. */
export function negotiateDeflate(offers: readonly ExtensionOffer[], settings: DeflateSettings): DeflateSetup | undefined {
  const accepted = negotiateDeflateServer(offers, settings);
  if (accepted === undefined) return undefined;
  const codec = new PerMessageDeflate('server', accepted.params, settings);
  // Frames can be shared by a broadcast only when our compressor forgets each message.
  const paramsKey = accepted.params.serverNoContextTakeover ? deflateParamsKey(accepted.params) : null;
  return { response: accepted.response, params: accepted.params, conn: { codec, threshold: settings.threshold, paramsKey } };
}
