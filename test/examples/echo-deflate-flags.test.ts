/**
 * `npm run echo -- --deflate` with --deflate-mode and --deflate-threshold (bench/run.mjs runs the
 * echo server with them to compare the modes and the thresholds in one run). Checked on the
 * wire with a raw socket: the negotiated extension, and whether the echo came back compressed
 * (RSV1, RFC 7692 §6).
 */
import net from 'node:net';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { runScript } from './run.js';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGTERM');
});

async function startEcho(args: string[]): Promise<number> {
  const { out, child } = await runScript('stress-tests/echo-server.js', ['--port', '0', '--deflate', ...args], { until: (o) => o.includes('\n') });
  children.push(child);
  const m = /listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(out);
  expect(m, out).not.toBeNull();
  return Number(m![1]);
}

/** One compressed text message of `size` bytes through a raw socket: the response's extension header and the echo's RSV1 bit. */
function echoOnce(port: number, size: number): Promise<{ extensions: string; rsv1: boolean }> {
  const text = Buffer.from(JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ i, s: `SYM${i}` })) }).slice(0, size));
  const packed = zlib.deflateRawSync(text, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4);
  expect(packed.length).toBeGreaterThan(125); // the 16-bit length form below
  const mask = Buffer.from([1, 2, 3, 4]);
  const frame = Buffer.concat([Buffer.from([0xc1, 0x80 | 126, packed.length >> 8, packed.length & 0xff]), mask, packed.map((b, j) => b ^ mask[j & 3]!)]);
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () =>
      s.write(
        'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n',
      ),
    );
    let buf = Buffer.alloc(0);
    let extensions: string | undefined;
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (extensions === undefined) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        extensions = /^sec-websocket-extensions: *(.*)$/im.exec(head)?.[1] ?? '';
        buf = buf.subarray(end + 4);
        s.write(frame);
      }
      if (buf.length >= 2) {
        expect(buf[0]! & 0x0f).toBe(1); // the text echo, not a close
        s.destroy();
        resolve({ extensions, rsv1: (buf[0]! & 0x40) !== 0 });
      }
    });
  });
}

describe('npm run echo -- --deflate: mode and threshold flags', () => {
  it('by default: mode shared (server_no_context_takeover) and every message compressed', async () => {
    const r = await echoOnce(await startEcho([]), 1000);
    expect(r.extensions).toBe('permessage-deflate; server_no_context_takeover');
    expect(r.rsv1).toBe(true);
  });

  it('--deflate-mode dedicated keeps context takeover', async () => {
    const r = await echoOnce(await startEcho(['--deflate-mode', 'dedicated']), 1000);
    expect(r.extensions).toBe('permessage-deflate');
    expect(r.rsv1).toBe(true);
  });

  it('--deflate-threshold 1024 sends a 1,000-byte echo uncompressed', async () => {
    const r = await echoOnce(await startEcho(['--deflate-threshold', '1024']), 1000);
    expect(r.extensions).toBe('permessage-deflate; server_no_context_takeover');
    expect(r.rsv1).toBe(false);
  });

  it('refuses an unknown mode', async () => {
    const r = await runScript('stress-tests/echo-server.js', ['--port', '0', '--deflate', '--deflate-mode', 'fast']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('--deflate-mode expects shared or dedicated, got fast');
  });
});
