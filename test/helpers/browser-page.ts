/**
 * In a Playwright page: open a WebSocket, send messages, collect one echo per message, close.
 * Shared by the browser interop tests (HTTP/1.1 and HTTP/2). The function given to
 * `page.evaluate` runs in the browser: it uses only its argument.
 */
import type { Page } from 'playwright-core';

export interface PageEchoRun {
  url: string;
  protocols?: string[];
  /** A string is sent as text; an array of numbers as binary. */
  send: Array<string | number[]>;
  close: { code: number; reason?: string };
}

export interface PageEchoResult {
  protocol: string;
  extensions: string;
  /** Each echo as `text:<length>:<first 12 chars>` or `binary:<bytes joined by ,>`. */
  got: string[];
  close: { code: number; reason: string; wasClean: boolean };
}

export function echoInPage(page: Page, run: PageEchoRun): Promise<PageEchoResult> {
  return page.evaluate(async (r) => {
    const ws = new WebSocket(r.url, r.protocols ?? []);
    ws.binaryType = 'arraybuffer';
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error('WebSocket error'));
    });
    const got: string[] = [];
    const done = new Promise<void>((resolve) => {
      ws.onmessage = (e) => {
        got.push(typeof e.data === 'string' ? `text:${e.data.length}:${e.data.slice(0, 12)}` : `binary:${new Uint8Array(e.data as ArrayBuffer).join(',')}`);
        if (got.length === r.send.length) resolve();
      };
    });
    for (const m of r.send) ws.send(typeof m === 'string' ? m : new Uint8Array(m));
    await done;
    const closed = new Promise<{ code: number; reason: string; wasClean: boolean }>((resolve) => {
      ws.onclose = (e) => resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean });
    });
    ws.close(r.close.code, r.close.reason);
    return { extensions: ws.extensions, protocol: ws.protocol, got, close: await closed };
  }, run);
}
