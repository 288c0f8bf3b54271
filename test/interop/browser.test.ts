/**
 * A real browser as the client: Debian's Chromium, driven by playwright-core (no browser
 * download; .ci/run installs the Debian package). Chromium offers
 * `permessage-deflate; client_max_window_bits`, which must negotiate and work (issue 3).
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { Server, type Frame } from '../../src/index.js';
import { echoInPage } from '../helpers/browser-page.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (CHROMIUM === undefined) {
  console.warn('test/interop/browser.test.ts skipped: no Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does)');
}

// The flags this machine's Chromium needs as root and without a network (see shared/NOTES.md).
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe.skipIf(CHROMIUM === undefined)('interop: Chromium as the client', () => {
  let browser: Browser;
  let page: Page;
  beforeAll(async () => {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ARGS, headless: true });
    page = await browser.newPage();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  async function echoServer(deflate: boolean) {
    const frames: Array<{ opcode: number; rsv1: boolean }> = [];
    const server = new Server({ deflate: deflate ? { threshold: 0 } : false });
    server.handleFrame((_c, f: Frame) => frames.push({ opcode: f.opcode, rsv1: f.rsv1 }));
    server.handleData((conn, data, isBinary) => conn.write(data, isBinary));
    const addr = await server.listen({ port: 0, host: '127.0.0.1' });
    return { server, frames, url: `ws://127.0.0.1:${addr.port}/` };
  }

  /** In the page: open, send text/large text/binary, collect the echoes, close with 4000. */
  function runInPage(url: string) {
    return echoInPage(page, { url, send: ['héllo wörld', 'abc'.repeat(20_000), [1, 2, 3, 250], ''], close: { code: 4000, reason: 'bye' } });
  }

  it('negotiates permessage-deflate from Chromium offer and echoes compressed messages both ways', async () => {
    const { server, frames, url } = await echoServer(true);
    try {
      const r = await runInPage(url);
      expect(r.extensions).toMatch(/^permessage-deflate/);
      expect(r.got).toEqual(['text:11:héllo wörld', 'text:60000:abcabcabcabc', 'binary:1,2,3,250', 'text:0:']);
      expect(r.close).toEqual({ code: 4000, reason: '', wasClean: true });
      // Chromium compressed what it sent (RSV1 on the first frame of data messages).
      expect(frames.filter((f) => f.opcode === 1 || f.opcode === 2).some((f) => f.rsv1)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('works without compression when the server does not offer it', async () => {
    const { server, frames, url } = await echoServer(false);
    try {
      const r = await runInPage(url);
      expect(r.extensions).toBe('');
      expect(r.got).toEqual(['text:11:héllo wörld', 'text:60000:abcabcabcabc', 'binary:1,2,3,250', 'text:0:']);
      expect(frames.every((f) => !f.rsv1)).toBe(true);
    } finally {
      await server.close();
    }
  });
});
