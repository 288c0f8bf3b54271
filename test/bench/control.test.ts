/**
 * The benchmark control protocol (bench/README.md, "Control protocol"): the burst messages have
 * one source, stress-tests/burst.ts. wschan's echo server uses it from source; the other peers
 * (ws, Bun, the floor) through bench/peers/control.mjs, which must take them from the build of
 * that file rather than carry a copy; and the node:net floor must answer a burst as the other
 * peers do: every message, in order, to every client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Conn } from '../../src/index.js';
import { burstJson, burstPayload, parseBurst } from '../../stress-tests/burst.js';
import { ROOT } from '../examples/run.js';
import { waitUntil } from '../helpers/net.js';

interface ControlModule {
  parseBurst(text: string): [number, number, boolean] | null;
  burstJson(k: number, size: number): string;
  burstPayload(k: number, size: number): Buffer;
}
type BurstModule = typeof import('../../stress-tests/burst.js');
const control = (await import(pathToFileURL(`${ROOT}bench/peers/control.mjs`).href)) as ControlModule;
const built = (await import(pathToFileURL(`${ROOT}dist/stress-tests/burst.js`).href)) as BurstModule;

describe('one source for the burst messages', () => {
  it('bench/peers/control.mjs hands out the built stress-tests/burst.ts functions themselves, not a copy', () => {
    expect(control.burstJson).toBe(built.burstJson);
    expect(control.burstPayload).toBe(built.burstPayload);
    // No second implementation in the peers' module: it has no generator code of its own.
    const text = readFileSync(`${ROOT}bench/peers/control.mjs`, 'utf8');
    expect(text).not.toMatch(/JSON\.stringify|Buffer\.alloc/);
    // The build is the source: the same bytes (a stale dist/ fails here).
    for (const [k, size] of [[0, 64], [7, 1024], [12345, 5000]] as const) expect(built.burstJson(k, size)).toBe(burstJson(k, size));
    expect(built.burstPayload(70000, 64).equals(burstPayload(70000, 64))).toBe(true);
  });

  it('parses commands: control.mjs gives the tuple the peers destructure, null where burst.ts says undefined', () => {
    const inputs = ['__burst:1:0', '__burst:100:64', '__burst:20:1024:json', '__burst:3:63:json', '__burst:0:64', '__burst:100001:1', '__burst:1:1048577', '__burst:5:64:xml', '__burst:5:64 ', 'hello'];
    const accepted = ['__burst:1:0', '__burst:100:64', '__burst:20:1024:json'];
    for (const text of inputs) {
      const b = parseBurst(text);
      expect(b !== undefined, text).toBe(accepted.includes(text));
      expect(control.parseBurst(text), text).toEqual(b === undefined ? null : [b.count, b.size, b.json]);
    }
    expect(parseBurst('__burst:20:1024:json')).toEqual({ count: 20, size: 1024, json: true });
    expect(parseBurst('__burst:3:63:json')).toBeUndefined(); // a JSON tick is at least 64 bytes
  });

  it('JSON ticks: exactly size ASCII bytes, JSON carrying seq k, differing per k', () => {
    for (const size of [64, 100, 1024, 5000]) {
      for (const k of [0, 1, 7, 99, 12345]) {
        const s = burstJson(k, size);
        expect(Buffer.byteLength(s)).toBe(size);
        expect(JSON.parse(s).seq).toBe(k);
      }
      expect(burstJson(1, size)).not.toBe(burstJson(2, size));
    }
    expect(JSON.parse(burstJson(3, 1024)).items.length).toBeGreaterThan(5);
  });

  it('binary messages: k as a big-endian uint32, then 0x2a', () => {
    expect(burstPayload(70000, 8)).toEqual(Buffer.from([0, 1, 0x11, 0x70, 0x2a, 0x2a, 0x2a, 0x2a]));
    expect(burstPayload(5, 3)).toEqual(Buffer.from([0x2a, 0x2a, 0x2a]));
    expect(burstPayload(0, 0).length).toBe(0);
  });
});

describe('bench/peers/node-floor.mjs answers the burst', () => {
  let floor: ChildProcess | undefined;
  const conns: Conn[] = [];
  afterEach(() => {
    for (const c of conns.splice(0)) c.terminate();
    floor?.kill('SIGKILL');
    floor = undefined;
  });

  async function startFloor(): Promise<number> {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const child = spawn(process.execPath, [`${ROOT}bench/peers/node-floor.mjs`, '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    floor = child;
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await waitUntil(() => out.includes('listening') || child.exitCode !== null, 5000, `node-floor to listen (output: ${out})`);
    expect(child.exitCode, out).toBeNull();
    return port;
  }

  it('every client, the sender included, gets every message in order; binary and JSON bursts', async () => {
    const port = await startFloor();
    const got: { data: Buffer; isBinary: boolean }[][] = [[], [], []];
    for (const box of got) {
      conns.push(await connect(`ws://127.0.0.1:${port}/`, { handleData: (_c, data, isBinary) => void box.push({ data: Buffer.from(data), isBinary }) }));
    }
    await conns[1]!.write('__burst:3:64');
    await waitUntil(() => got.every((b) => b.length === 3), 5000, 'three binary messages at every client');
    for (const box of got) expect(box).toEqual([0, 1, 2].map((k) => ({ data: control.burstPayload(k, 64), isBinary: true })));
    await conns[0]!.write('__burst:2:300:json');
    await waitUntil(() => got.every((b) => b.length === 5), 5000, 'two text messages at every client');
    for (const box of got) expect(box.slice(3).map((m) => [m.isBinary, m.data.toString()])).toEqual([0, 1].map((k) => [false, control.burstJson(k, 300)]));
    // Anything else is still echoed, to the sender only.
    await conns[2]!.write('__burst:oops');
    await waitUntil(() => got[2]!.length === 6, 5000, 'the echo');
    expect(got[2]![5]!.data.toString()).toBe('__burst:oops');
    expect([got[0]!.length, got[1]!.length]).toEqual([5, 5]);
  });
});
