// Client-side framing done once, before the run: every data frame the load generator sends is
// built here, masked with a fixed key, and repeated N times in one Buffer so that a batch of N
// frames is a single socket.write of a subarray (no per-message encode, mask or allocation).

import { deflateRawSync, constants as zlibConstants } from 'node:zlib';

// RFC 6455 §5.3: the client MUST mask every frame; the key need not be random for a load tool
// (tcpkali uses all zeros). A fixed non-zero key keeps the server's unmask work realistic.
const MASK = [0x37, 0xfa, 0x21, 0x3d] as const;

export const Opcode = { Text: 0x1, Binary: 0x2, Close: 0x8, Ping: 0x9, Pong: 0xa } as const;

/** One complete masked client frame. */
export function encodeClientFrame(opcode: number, payload: Uint8Array, rsv1 = false): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 0x10000 ? 2 : 8;
  const frame = Buffer.allocUnsafe(2 + ext + 4 + len);
  frame[0] = 0x80 | (rsv1 ? 0x40 : 0) | opcode;
  let o = 2;
  if (ext === 0) {
    frame[1] = 0x80 | len;
  } else if (ext === 2) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(len, 2);
    o = 4;
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    frame.writeUInt32BE(len >>> 0, 6);
    o = 10;
  }
  frame[o] = MASK[0];
  frame[o + 1] = MASK[1];
  frame[o + 2] = MASK[2];
  frame[o + 3] = MASK[3];
  o += 4;
  for (let i = 0; i < len; i++) frame[o + i] = payload[i]! ^ MASK[i & 3];
  return frame;
}

/** `count` copies of `frame` back to back: a batch of k frames is `subarray(0, k * frame.length)`. */
export function repeatFrame(frame: Buffer, count: number): Buffer {
  const out = Buffer.allocUnsafe(frame.length * count);
  for (let i = 0; i < count; i++) frame.copy(out, i * frame.length);
  return out;
}

/** RFC 7692 §7.2.1: compress, then drop the 0x00 0x00 0xff 0xff tail of the final flush. */
export function deflateMessage(payload: Uint8Array, windowBits: number): Buffer {
  const out = deflateRawSync(payload, {
    windowBits: Math.max(9, windowBits),
    flush: zlibConstants.Z_SYNC_FLUSH,
  });
  const n = out.length;
  if (n >= 4 && out[n - 4] === 0 && out[n - 3] === 0 && out[n - 2] === 0xff && out[n - 1] === 0xff) {
    return out.subarray(0, n - 4);
  }
  return out;
}

// A fixed key is fine for a load tool: the server's answer is then always the RFC's example.
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='; // RFC 6455 §1.3

export function handshakeRequest(host: string, port: number, path: string, deflate: boolean): Buffer {
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\n` +
      `Host: ${host}:${port}\r\n` +
      'Upgrade: websocket\r\n' +
      'Connection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${KEY}\r\n` +
      'Sec-WebSocket-Version: 13\r\n' +
      (deflate ? 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' : '') +
      '\r\n',
    'latin1',
  );
}

export interface HandshakeResult {
  ok: boolean;
  reason: string;
  /** permessage-deflate accepted; client_max_window_bits the server asked for (15 if none). */
  deflate: boolean;
  clientWindowBits: number;
}

/** Length of a frame header (2 to 14 bytes) from its second byte. */
export function headerLength(b1: number): number {
  const len7 = b1 & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((b1 & 0x80) !== 0 ? 4 : 0);
}

/** Checks a complete response head (up to, not including, the blank line). */
export function checkHandshakeResponse(head: string): HandshakeResult {
  const lines = head.split('\r\n');
  const status = lines[0] ?? '';
  const fail = (reason: string): HandshakeResult => ({ ok: false, reason, deflate: false, clientWindowBits: 15 });
  if (!/^HTTP\/1\.1 101\b/.test(status)) return fail(`expected 101, got: ${status.slice(0, 80)}`);
  let accept = '';
  let extensions = '';
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'sec-websocket-accept') accept = value;
    else if (name === 'sec-websocket-extensions') extensions += (extensions === '' ? '' : ', ') + value;
  }
  if (accept !== ACCEPT) return fail(`bad Sec-WebSocket-Accept: ${accept}`);
  let deflate = false;
  let clientWindowBits = 15;
  for (const ext of extensions.split(',')) {
    const params = ext.split(';').map((p) => p.trim());
    if (params[0] !== 'permessage-deflate') continue;
    deflate = true;
    for (const p of params.slice(1)) {
      const m = /^client_max_window_bits\s*=\s*"?(\d+)"?$/.exec(p);
      if (m !== null) clientWindowBits = Number(m[1]);
    }
  }
  return { ok: true, reason: '', deflate, clientWindowBits };
}
