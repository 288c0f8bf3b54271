/**
 * examples/typed-chat, started as `npm run example:typed-chat -- --port 0` starts it: the page in
 * headless Chromium (Debian's, via playwright-core, as test/interop/browser.test.ts) and the Node
 * client (another process, the same protocol module) chat through it both ways; a message that
 * fails the schema comes back to the page as a $error naming the path and the rule.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { ROOT, runScript } from './run.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (CHROMIUM === undefined) console.warn('test/examples/typed-chat.test.ts: the browser part is skipped: no Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does)');
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** The Node client as its own process; resolves with its output once it exits. */
function nodeClient(url: string, args: string[], onLine: (line: string) => void): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [`${ROOT}dist/examples/typed-chat/client.js`, '--url', url, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let partial = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      partial += d.toString();
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const l of lines) onLine(l);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('examples/typed-chat (npm run example:typed-chat)', () => {
  let server: Awaited<ReturnType<typeof runScript>>;
  let http = '';
  beforeAll(async () => {
    server = await runScript('examples/typed-chat/main.js', ['--port', '0'], { until: (o) => o.includes('\n') });
    const m = /^wschan typed chat listening on (http:\/\/127\.0\.0\.1:\d+\/) /.exec(server.out);
    if (m === null) throw new Error(`the example did not print its listening line:\n${server.out}`);
    http = m[1]!;
  }, 30_000);
  afterAll(() => {
    server?.child.kill('SIGTERM');
  });

  it('prints one line when listening and serves the page and the protocol as JSON Schema', async () => {
    expect(server.out.trim().split('\n')).toHaveLength(1);
    expect(await (await fetch(http)).text()).toContain('new WebSocket(');
    const protocol = (await (await fetch(`${http}protocol.json`)).json()) as { client: Record<string, { properties: Record<string, { maxLength?: number }> }> };
    expect(protocol.client['say']!.properties['text']!.maxLength).toBe(500);
  });

  it('two Node clients in other processes chat: join is a request answered by welcome, say reaches the other', async () => {
    const ws = http.replace(/^http/, 'ws');
    let annJoined!: () => void;
    const annIn = new Promise<void>((r) => (annJoined = r));
    const ann = nodeClient(ws, ['--name', 'ann', '--until', 'said bob: hi ann'], (l) => l.startsWith('welcome ann') && annJoined());
    await annIn;
    const bob = await nodeClient(ws, ['--name', 'bob', '--say', 'hi ann', '--until', 'said bob: hi ann'], () => {});
    const a = await ann;
    expect(bob.code).toBe(0);
    expect(a.code).toBe(0);
    expect(bob.out).toMatch(/^welcome bob; members: ann, bob$/m);
    expect(a.out).toMatch(/^presence bob joined \(2 here\)$/m);
    expect(a.out).toMatch(/^said bob: hi ann$/m);
  }, 30_000);

  describe.skipIf(CHROMIUM === undefined)('with Chromium', () => {
    let browser: Browser;
    beforeAll(async () => {
      const { chromium } = await import('playwright-core');
      browser = await chromium.launch({ executablePath: CHROMIUM!, args: ARGS, headless: true });
    }, 60_000);
    afterAll(async () => {
      await browser?.close();
    });

    it('the page and a Node client chat both ways; a too-long text comes back to the page as a $error', async () => {
      const page = await browser.newPage();
      await page.goto(http);
      await page.waitForFunction(() => (globalThis as unknown as { chat?: { ready: boolean } }).chat?.ready === true, undefined, { timeout: 10_000 });
      const welcome = await page.evaluate(() => (globalThis as unknown as { chat: { join(n: string): Promise<{ you: string }> } }).chat.join('chromium'));
      expect(welcome.you).toBe('chromium');
      const lines = (): Promise<string[]> => page.evaluate(() => (globalThis as unknown as { chat: { lines: string[] } }).chat.lines);

      // The Node client joins, says hello, and exits once it has seen the page's answer.
      const ws = http.replace(/^http/, 'ws');
      const node = nodeClient(ws, ['--name', 'node', '--say', 'hello from node', '--until', 'said chromium: hello from chromium'], () => {});
      await page.waitForFunction(() => (globalThis as unknown as { chat: { lines: string[] } }).chat.lines.includes('node: hello from node'), undefined, { timeout: 10_000 });
      await page.evaluate(() => (globalThis as unknown as { chat: { say(t: string): void } }).chat.say('hello from chromium'));
      const n = await node;
      expect(n.code).toBe(0);
      expect(n.out).toMatch(/^welcome node; members: chromium, node$/m);
      expect(n.out).toMatch(/^said chromium: hello from chromium$/m);

      await page.evaluate(() => (globalThis as unknown as { chat: { say(t: string): void } }).chat.say('x'.repeat(501)));
      await page.waitForFunction(() => (globalThis as unknown as { chat: { lines: string[] } }).chat.lines.some((l) => l.startsWith('error ')), undefined, { timeout: 10_000 });
      const all = await lines();
      expect(all).toContain('* node joined (2 here)');
      expect(all).toContain('chromium: hello from chromium');
      expect(all).toContain('error WS_ERR_INVALID_MESSAGE /text maxLength');
      await page.close();
    }, 60_000);
  });
});
