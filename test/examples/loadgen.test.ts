/**
 * The load generator behind every benchmark and stress figure (stress-tests/loadgen): each mode,
 * briefly, against `npm run echo`, with its JSON result checked against what the mode must do.
 * Counts only: timings belong in bench/, not here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { runScript } from './run.js';

let server: ChildProcess | undefined;
let target = '';
let deflateServer: ChildProcess | undefined;
let deflateTarget = '';

/** `npm run echo` on a free port: its process and host:port. */
async function startEcho(args: string[]): Promise<{ child: ChildProcess; target: string }> {
  const { out, child } = await runScript('stress-tests/echo-server.js', ['--port', '0', ...args], { until: (o) => o.includes('\n') });
  const m = /listening on ws:\/\/(127\.0\.0\.1:\d+)/.exec(out);
  if (m === null) throw new Error(`the echo server did not start: ${out}`);
  return { child, target: m[1]! };
}

beforeAll(async () => {
  ({ child: server, target } = await startEcho([]));
  ({ child: deflateServer, target: deflateTarget } = await startEcho(['--deflate']));
});
afterAll(() => {
  server?.kill('SIGTERM');
  deflateServer?.kill('SIGTERM');
});

async function loadgen(args: string[], to = target): Promise<Record<string, any>> {
  const { code, out } = await runScript('stress-tests/loadgen/main.js', [...args, '--json', '-q', to], { timeoutMs: 20_000 });
  const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{"tool"'));
  expect(line, `no JSON result (exit ${code}): ${out.slice(-500)}`).toBeDefined();
  expect(code).toBe(0);
  return JSON.parse(line!);
}

describe('load generator', () => {
  it('echo: every connection opens, and what was sent comes back', async () => {
    const r = await loadgen(['--mode', 'echo', '-c', '4', '-m', 'hello world!!13212312!', '-T', '300ms']);
    expect([r.opened, r.failed, r.errors, r.closedEarly]).toEqual([4, 0, 0, 0]);
    expect(r.sent.messages).toBeGreaterThan(0);
    // Drained before the report: every echo counted, none invented.
    expect(r.received.messages).toBe(r.sent.messages);
    // Received bytes: the echoed frames (2-byte headers) plus the four handshake responses.
    const frames = r.received.messages * (22 + 2);
    expect(r.received.bytes).toBeGreaterThan(frames);
    expect(r.received.bytes - frames).toBeLessThan(4 * 512);
    expect(r.latencyMs.samples).toBeGreaterThan(0);
  });

  it('conn-churn: each connection opens, gets its N echoes, closes; the total is counted', async () => {
    const r = await loadgen(['--mode', 'conn-churn', '-c', '60', '--messages', '3', '--concurrency', '16']);
    expect([r.opened, r.failed, r.errors]).toEqual([60, 0, 0]);
    expect(r.churn).toMatchObject({ complete: true, completed: 60, messagesPerConn: 3 });
    expect([r.sent.messages, r.received.messages]).toEqual([180, 180]);
    expect(r.churn.totalMs).toBeGreaterThan(0);
  });

  it('idle: opens every connection, sends nothing', async () => {
    const r = await loadgen(['--mode', 'idle', '-c', '20', '-T', '300ms']);
    expect([r.opened, r.failed, r.errors, r.closedEarly]).toEqual([20, 0, 0, 0]);
    expect(r.sent.messages).toBe(0);
  });

  it('burst-subscribe: every client gets every message of the burst', async () => {
    const r = await loadgen(['--mode', 'burst-subscribe', '-c', '20', '--burst-count', '5', '--burst-size', '64', '-T', '10s']);
    expect([r.opened, r.failed]).toEqual([20, 0]);
    expect(r.burst).toMatchObject({ complete: true, count: 5, size: 64, deliveries: 100 });
    expect(r.received.messages).toBe(100);
  });

  it('burst-subscribe --burst-json without deflate: text ticks, none counted as compressed', async () => {
    const r = await loadgen(['--mode', 'burst-subscribe', '-c', '10', '--burst-json', '--burst-count', '4', '--burst-size', '1024', '-T', '10s']);
    expect(r.burst).toMatchObject({ complete: true, json: true, deliveries: 40, compressed: 0 });
    expect(r.deflate).toEqual({ offered: false, accepted: 0 });
    // 40 frames of 1,024 bytes (4-byte headers) came, uncompressed.
    expect(r.received.bytes).toBeGreaterThan(40 * 1028);
  });
});

describe('load generator against a server with permessage-deflate', () => {
  it('burst-subscribe --deflate --burst-json: every client negotiated deflate and every tick came compressed', async () => {
    const r = await loadgen(['--mode', 'burst-subscribe', '-c', '10', '--deflate', '--burst-json', '--burst-count', '4', '--burst-size', '1024', '-T', '10s'], deflateTarget);
    expect(r.deflate).toEqual({ offered: true, accepted: 10 });
    expect(r.burst).toMatchObject({ complete: true, json: true, deliveries: 40, compressed: 40 });
    // Compressed: far fewer bytes than the 40 plain frames of 1,028 bytes.
    expect(r.received.bytes).toBeLessThan(40 * 1028);
  });
});
