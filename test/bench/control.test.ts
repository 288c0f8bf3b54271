/**
 * The benchmark control protocol (bench/README.md, "Control protocol"): the TypeScript twin in
 * stress-tests/echo-app.ts (wschan's echo server) must build the same burst messages as
 * bench/peers/control.mjs (ws, Bun, the floor), and the node:net floor must answer a burst as
 * the other peers do: every message, in order, to every client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Conn } from '../../src/index.js';
import { burstJson, burstPayload, parseBurst } from '../../stress-tests/echo-app.js';
import { ROOT } from '../examples/run.js';
import { waitUntil } from '../helpers/net.js';

interface ControlModule {
  parseBurst(text: string): [number, number, boolean] | null;
  burstJson(k: number, size: number): string;
  burstPayload(k: number, size: number): Buffer;
}
const control = (await import(pathToFileURL(`${ROOT}bench/peers/control.mjs`).href)) as ControlModule;

describe('control protocol twins', () => {
  it('parse the same commands the same way', () => {
    const inputs = ['__burst:1:0', '__burst:100:64', '__burst:20:1024:json', '__burst:3:63:json', '__burst:0:64', '__burst:100001:1', '__burst:1:1048577', '__burst:5:64:xml', '__burst:5:64 ', 'hello'];
    for (const text of inputs) {
      const a = control.parseBurst(text);
      const b = parseBurst(text);
      expect(b === undefined ? null : [b.count, b.size, b.json], text).toEqual(a);
    }
    expect(parseBurst('__burst:20:1024:json')).toEqual({ count: 20, size: 1024, json: true });
    expect(parseBurst('__burst:3:63:json')).toBeUndefined(); // a JSON tick is at least 64 bytes
  });

  it('build the same JSON ticks: exactly size ASCII bytes, JSON carrying seq k, differing per k', () => {
    for (const size of [64, 100, 1024, 5000]) {
      for (const k of [0, 1, 7, 99, 12345]) {
        const s = burstJson(k, size);
        expect(s).toBe(control.burstJson(k, size));
        expect(Buffer.byteLength(s)).toBe(size);
        expect(JSON.parse(s).seq).toBe(k);
      }
      expect(burstJson(1, size)).not.toBe(burstJson(2, size));
    }
    expect(JSON.parse(burstJson(3, 1024)).items.length).toBeGreaterThan(5);
  });

  it('build the same binary messages', () => {
    for (const [k, size] of [[0, 0], [5, 3], [70000, 64], [2, 4096]] as const) expect(burstPayload(k, size).equals(control.burstPayload(k, size))).toBe(true);
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
