/**
 * A real browser opening a WebSocket over HTTP/2 (RFC 8441): Debian's Chromium, driven by
 * playwright-core, loads a page over HTTP/2 from a wschan-attached `http2.createSecureServer`
 * and opens a WebSocket to the same origin. Chromium then sends an extended CONNECT on the HTTP/2
 * connection it already holds (it needs that connection open: the page load makes it), and the
 * server records `conn.transport === 'http2'`.
 *
 * Set-up Chromium needs, and why:
 * - The certificate is self-signed, made by this test: Chromium is told to trust its public key
 *   with `--ignore-certificate-errors-spki-list=<base64 SHA-256 of the SPKI>` (only that key, not
 *   every certificate error); Chromium uses HTTP/2 only on a connection it considers secure.
 * - No flag for RFC 8441 itself: Chromium (156 on Debian 12) uses it by default once the server's
 *   SETTINGS allow it; a build that fell back to HTTP/1.1 would fail the transport assertion.
 * - The page is loaded first, so that Chromium holds an HTTP/2 connection to the origin: that is
 *   what it sends an RFC 8441 WebSocket on. (Opened from about:blank, without that connection, the
 *   same WebSocket failed outright on this machine.)
 * - The usual flags for this machine (see shared notes): no sandbox as root, no GPU, no QUIC.
 */
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { Server, type Conn, type Frame } from '../../src/index.js';
import { makeSelfSigned, type SelfSigned } from '../../stress-tests/self-signed.js';
import { echoInPage } from '../helpers/browser-page.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (CHROMIUM === undefined) {
  console.warn('test/interop/browser-http2.test.ts skipped: no Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does)');
}

const BASE_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const PAGE = '<!doctype html><meta charset="utf-8"><title>wschan over HTTP/2</title><p>hello</p>';

describe.skipIf(CHROMIUM === undefined)('interop: Chromium opens a WebSocket over HTTP/2 (RFC 8441)', () => {
  let browser: Browser;
  let cert: SelfSigned;
  let h2: Http2SecureServer;
  let server: Server;
  let origin: string;
  const pageVersions: string[] = [];
  const frames: Array<{ opcode: number; rsv1: boolean }> = [];
  const opened: Array<{ transport: string; protocol: string | undefined; extensions: string | undefined }> = [];

  beforeAll(async () => {
    cert = makeSelfSigned();
    h2 = createSecureServer({ cert: cert.cert, key: cert.key, allowHTTP1: true }, (req, res) => {
      pageVersions.push(req.httpVersion);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    });
    server = new Server({ deflate: { threshold: 0 }, protocols: ['echo'] });
    server.handleOpen((c: Conn) => {
      opened.push({ transport: c.transport, protocol: c.protocol, extensions: c.extensions });
    });
    server.handleFrame((_c, f: Frame) => frames.push({ opcode: f.opcode, rsv1: f.rsv1 }));
    server.handleData((c, data, isBinary) => c.write(Buffer.from(data), isBinary));
    server.attach(h2);
    h2.listen(0, '127.0.0.1');
    await once(h2, 'listening');
    origin = `https://localhost:${(h2.address() as AddressInfo).port}`;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM!,
      headless: true,
      args: [
        ...BASE_ARGS,
        `--ignore-certificate-errors-spki-list=${cert.spkiHash}`,
        // localhost resolves to 127.0.0.1 here, where the server listens.
        '--host-resolver-rules=MAP localhost 127.0.0.1',
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await new Promise<void>((r) => (h2 ? h2.close(() => r()) : r()));
  });

  it('loads the page over HTTP/2, then its WebSocket arrives as an extended CONNECT stream and echoes with deflate', async () => {
    const page = await browser.newPage();
    try {
      const response = await page.goto(`${origin}/`);
      expect(response?.status()).toBe(200);
      // The page (and any favicon request after it) came over HTTP/2: the WebSocket can ride that connection.
      expect(pageVersions.length).toBeGreaterThan(0);
      expect(new Set(pageVersions)).toEqual(new Set(['2.0']));
      const r = await echoInPage(page, {
        url: `wss://localhost:${(h2.address() as AddressInfo).port}/ws`,
        protocols: ['echo'],
        send: ['héllo over h2', 'xyz'.repeat(30_000), [7, 8, 9]],
        close: { code: 1000 },
      });
      expect(opened).toEqual([{ transport: 'http2', protocol: 'echo', extensions: expect.stringMatching(/^permessage-deflate/) as unknown as string }]);
      expect(r.protocol).toBe('echo');
      expect(r.extensions).toMatch(/^permessage-deflate/);
      expect(r.got).toEqual(['text:13:héllo over h', 'text:90000:xyzxyzxyzxyz', 'binary:7,8,9']);
      expect(r.close).toEqual({ code: 1000, reason: '', wasClean: true });
      // Chromium compressed what it sent over the stream.
      expect(frames.filter((f) => f.opcode === 1 || f.opcode === 2).some((f) => f.rsv1)).toBe(true);
    } finally {
      await page.close();
    }
  });
});
