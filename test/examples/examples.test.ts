/** Examples run: each is started the way its npm script starts it. */
import { describe, expect, it } from 'vitest';
import { connect } from '../../src/index.js';
import { runScript } from './run.js';

describe('examples/broadcast (npm start)', () => {
  it('the demo serves ticks to its own client and stops by itself with --seconds', async () => {
    const r = await runScript('examples/broadcast/demo.js', ['--seconds', '2'], { env: { PORT: '0' } });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/wschan broadcast demo: WebSocket ws:\/\/127\.0\.0\.1:\d+\//);
    // Any tick: on a loaded machine the client may connect after the first one went out.
    expect(r.out).toMatch(/\[client \d+\] tick #\d+: 1 client\(s\)/);
    const m = /the Node client received (\d+) ticks/.exec(r.out);
    expect(m).not.toBeNull();
    // 100 ms ticks for about 2 s; how many arrive depends on the machine's load, that some did does not.
    expect(Number(m![1])).toBeGreaterThan(0);
  });

  it('the broadcast server sends the same ticks to a second client and serves the web page', async () => {
    const { startBroadcastServer } = await import('../../examples/broadcast/server.js');
    const demo = await startBroadcastServer({ port: 0, interval: 20, log: () => {} });
    try {
      const a = await connect(demo.url);
      const b = await connect(demo.url);
      const seqs = async (c: typeof a): Promise<number[]> => {
        const out: number[] = [];
        for await (const m of c) {
          out.push((JSON.parse(m.data.toString()) as { seq: number }).seq);
          if (out.length === 5) break;
        }
        return out;
      };
      const [sa, sb] = await Promise.all([seqs(a), seqs(b)]);
      for (const s of [sa, sb]) for (let i = 1; i < s.length; i++) expect(s[i]).toBe(s[i - 1]! + 1);
      const page = await fetch(demo.url.replace('ws://', 'http://'));
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('new WebSocket(');
      await Promise.all([a.close(), b.close()]);
    } finally {
      await demo.close();
    }
  });
});

describe('examples/broadcast: the upgrade request', () => {
  it("names each client by the User-Agent of its request (handleUpgrade's UpgradeRequest)", async () => {
    const { startBroadcastServer } = await import('../../examples/broadcast/server.js');
    const lines: string[] = [];
    const demo = await startBroadcastServer({ port: 0, interval: 1000, log: (l: string) => lines.push(l) });
    try {
      const a = await connect(demo.url, { headers: { 'User-Agent': 'wschan-test/1' } });
      const b = await connect(demo.url);
      await new Promise((r) => setTimeout(r, 50));
      expect(lines.filter((l) => l.includes(' joined from '))).toEqual([
        expect.stringMatching(/^client \d+ joined from 127\.0\.0\.1, wschan-test\/1 \(1 connected/),
        expect.stringMatching(/^client \d+ joined from 127\.0\.0\.1, no User-Agent \(2 connected/),
      ]);
      await Promise.all([a.close(), b.close()]);
    } finally {
      await demo.close();
    }
  });
});

describe('examples/rtt (npm run example:rtt)', () => {
  it('pings every client with an 8-byte timestamp and logs the RTT from handlePong', async () => {
    const r = await runScript('examples/rtt/main.js', ['--seconds', '1.5', '--interval', '300', '--clients', '2'], { env: { PORT: '0' } });
    expect(r.code).toBe(0);
    const rtts = [...r.out.matchAll(/client \d+: rtt (-?[\d.]+) ms/g)].map((m) => Number(m[1]));
    expect(rtts.length).toBeGreaterThanOrEqual(4);
    for (const v of rtts) expect(v).toBeGreaterThanOrEqual(0);
    expect(r.out).toMatch(/built-in conn\.rtt: [\d.]+ ms/);
  });
});

describe('examples/jobs (npm run example:jobs)', () => {
  it('every job is answered in order, and the per-connection Channel never holds more than its capacity', async () => {
    const r = await runScript('examples/jobs/main.js', ['--jobs', '30', '--capacity', '3']);
    expect(r.code, r.out).toBe(0);
    const replies = [...r.out.matchAll(/client: done: JOB (\d+)/g)].map((m) => Number(m[1]));
    expect(replies).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(r.out).toMatch(/client: 30 replies in order/);
    const m = /server: the job queue held at most (\d+) of 3 jobs/.exec(r.out);
    expect(m, r.out).not.toBeNull();
    // 30 jobs sent at once to a worker that takes 10 ms each: the queue fills, and stops there.
    expect(Number(m![1])).toBe(3);
  });
});
