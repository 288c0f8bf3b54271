/** The scripts other people rely on: `npm run echo` and `npm run autobahn-client`. */
import { once } from 'node:events';
import { connect as h2connect } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { connect, Server, type Conn } from '../../src/index.js';
import { runScript } from './run.js';

describe('npm run echo', () => {
  for (const deflate of [false, true]) {
    it(`echoes text and binary as the same type${deflate ? ' with --deflate' : ''}, printing one line when listening`, async () => {
      const { out, child } = await runScript('stress-tests/echo-server.js', ['--port', '0', ...(deflate ? ['--deflate'] : [])], {
        until: (o) => o.includes('\n'),
      });
      try {
        const m = /^wschan echo server listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        expect(m, out).not.toBeNull();
        const port = Number(m![1]);
        const conn = await connect(`ws://127.0.0.1:${port}`, { deflate });
        if (deflate) expect(conn.extensions).toMatch(/^permessage-deflate/);
        await conn.write('hello');
        await conn.write(Buffer.from([0, 1, 2]));
        await conn.write('x'.repeat(5000));
        const got: Array<[string, boolean]> = [];
        for await (const m of conn) {
          got.push([m.isBinary ? m.data.toString('hex') : m.data.toString(), m.isBinary]);
          if (got.length === 3) break;
        }
        expect(got).toEqual([['hello', false], ['000102', true], ['x'.repeat(5000), false]]);
        await conn.close();
      } finally {
        child.kill('SIGTERM');
      }
    });
  }
});

describe('npm run echo -- --http2', () => {
  it('serves RFC 8441 WebSockets and HTTP/1.1 upgrades on one TLS port, with the printed certificate fingerprint', async () => {
    const { out, child } = await runScript('stress-tests/echo-server.js', ['--port', '0', '--http2', '--deflate'], {
      until: (o) => o.includes('listening'),
    });
    try {
      const fp = /^certificate SHA-256 fingerprint ([0-9A-F:]{95})$/m.exec(out);
      const m = /^wschan echo server listening on wss:\/\/127\.0\.0\.1:(\d+) \(HTTP\/2 RFC 8441 and HTTP\/1\.1\)/m.exec(out);
      expect(fp, out).not.toBeNull();
      expect(m, out).not.toBeNull();
      const port = Number(m![1]);
      // The certificate is self-signed: trust it by the printed fingerprint, as a user would.
      const session = h2connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
      session.on('error', () => {});
      try {
        await once(session, 'connect');
        expect((session.socket as TLSSocket).getPeerCertificate().fingerprint256).toBe(fp![1]);
        const [a, b] = await Promise.all([
          connect(`wss://127.0.0.1:${port}/`, { http2: session, deflate: true }),
          connect(`wss://127.0.0.1:${port}/`, { tls: { rejectUnauthorized: false } }),
        ]);
        expect(a.transport).toBe('http2');
        expect(a.extensions).toMatch(/^permessage-deflate/);
        expect(b.transport).toBe('http1');
        await a.write('over h2');
        await b.write(Buffer.from([1, 2]));
        const ra = await a[Symbol.asyncIterator]().next();
        const rb = await b[Symbol.asyncIterator]().next();
        expect(ra.value?.data.toString()).toBe('over h2');
        expect(rb.value?.isBinary).toBe(true);
        expect(rb.value?.data.toString('hex')).toBe('0102');
        await Promise.all([a.close(), b.close()]);
      } finally {
        session.destroy();
      }
    } finally {
      child.kill('SIGTERM');
    }
  });
});

describe('npm run autobahn-client', () => {
  it('runs the driver loop against a fuzzing server: getCaseCount, runCase echoing every message, updateReports', async () => {
    // A small stand-in for the Autobahn fuzzing server, with three cases.
    const cases = [['text', false], [Buffer.from([9, 8, 7]), true], ['', false]] as const;
    const echoed: Array<[string, boolean]> = [];
    const visits: string[] = [];
    const server = new Server<{ url: string }>();
    server.handleUpgrade((req) => ({ data: { url: req.url ?? '' } }));
    server.handleOpen((conn: Conn<{ url: string }>) => {
      const url = new URL(conn.data.url, 'ws://x');
      visits.push(url.pathname);
      if (url.pathname === '/getCaseCount') void conn.write(String(cases.length)).then(() => conn.close());
      else if (url.pathname === '/runCase') {
        const [data, isBinary] = cases[Number(url.searchParams.get('case')) - 1]!;
        void conn.write(data, isBinary);
      } else void conn.close();
    });
    server.handleData((conn, data, isBinary) => {
      echoed.push([isBinary ? data.toString('hex') : data.toString(), isBinary]);
      void conn.close();
    });
    const addr = await server.listen({ port: 0, host: '127.0.0.1' });
    try {
      const r = await runScript('stress-tests/autobahn-client.js', ['--url', `ws://127.0.0.1:${addr.port}`, '--agent', 'test'], { timeoutMs: 20_000 });
      expect(r.code).toBe(0);
      expect(r.out).toContain('running cases 1..3 of 3 as agent test');
      expect(visits).toEqual(['/getCaseCount', '/runCase', '/runCase', '/runCase', '/updateReports']);
      expect(echoed).toEqual([['text', false], ['090807', true], ['', false]]);
    } finally {
      await server.close();
    }
  });
});
