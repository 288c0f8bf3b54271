/**
 * Errors nobody handles are printed (once per code), and errors and lifecycle events are
 * published on node:diagnostics_channel for logging and tracing tools.
 */
import { channel, subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, DiagnosticsChannel, HandshakeError, type CloseInfo, type Conn, type WebSocketError } from '../../src/index.js';
import { resetUnhandledWarnings } from '../../src/conn/diagnostics.js';
import { ROOT } from '../examples/run.js';
import { closeAll, guardProcess, startServer, waitUntil } from '../helpers/net.js';
import { runNodeChild } from '../helpers/child.js';

guardProcess();
afterEach(async () => {
  await closeAll();
  resetUnhandledWarnings();
});

/** Collect the process warnings of type WschanWarning while `fn` runs. */
async function warningsDuring(fn: () => Promise<void>): Promise<Error[]> {
  const seen: Error[] = [];
  const onWarning = (w: Error): void => {
    if (w.name === 'WschanWarning') seen.push(w);
  };
  process.on('warning', onWarning);
  try {
    await fn();
    // process.emitWarning emits on the next tick
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off('warning', onWarning);
  }
  return seen;
}

/** Collect every message published on `name` while `fn` runs. */
async function published(names: string[], fn: (got: [string, Record<string, unknown>][]) => Promise<void>): Promise<[string, Record<string, unknown>][]> {
  const got: [string, Record<string, unknown>][] = [];
  const subs = names.map((n) => [n, (m: unknown) => got.push([n, m as Record<string, unknown>])] as const);
  for (const [n, f] of subs) subscribe(n, f);
  try {
    await fn(got);
  } finally {
    for (const [n, f] of subs) unsubscribe(n, f);
  }
  return got;
}

describe('errors with no handleError', () => {
  it('a handler that throws is printed as a WschanWarning once per error code, and still closes with 1011', async () => {
    const { url } = await startServer(undefined, (s) =>
      s.handleData(() => {
        throw new Error('boom in handleData');
      }),
    );
    const infos: CloseInfo[] = [];
    const warnings = await warningsDuring(async () => {
      for (let i = 0; i < 3; i++) {
        const c = await connect(url);
        await c.write('x');
        infos.push(await c.closed);
      }
    });
    expect(infos.map((i) => i.code)).toEqual([1011, 1011, 1011]);
    expect(warnings).toHaveLength(1);
    const w = warnings[0] as Error & { code?: string; detail?: string };
    expect(w.code).toBe('WS_ERR_HANDLER_FAILED');
    expect(w.message).toContain('boom in handleData');
    expect(w.detail).toContain('No handleError is set');
    // the thrower's own stack, so the user can find the line
    expect(w.detail).toContain('Error: boom in handleData');
  });

  it('another error code gets its own warning; with handleError set nothing is printed', async () => {
    const { url } = await startServer(undefined, (s) =>
      s.handleOpen(() => {
        throw new Error('boom in handleOpen');
      }),
    );
    const errors: WebSocketError[] = [];
    const { url: url2 } = await startServer(undefined, (s) =>
      s
        .handleData(() => {
          throw new Error('handled');
        })
        .handleError((_c, e) => errors.push(e)),
    );
    const warnings = await warningsDuring(async () => {
      const a = await connect(url);
      expect((await a.closed).code).toBe(1011);
      const b = await connect(url2);
      await b.write('x');
      expect((await b.closed).code).toBe(1011);
    });
    expect(warnings.map((w) => (w as Error & { code?: string }).code)).toEqual(['WS_ERR_HANDLER_FAILED']);
    expect(warnings[0]!.message).toContain('boom in handleOpen');
    expect(errors.map((e) => e.code)).toEqual(['WS_ERR_HANDLER_FAILED']);
  });

  it('a client-side handler that throws is printed too', async () => {
    const { url } = await startServer(undefined, (s) => s.handleOpen((c) => void c.write('hi')));
    const warnings = await warningsDuring(async () => {
      const c = await connect(url, {
        handleData: () => {
          throw new Error('client boom');
        },
      });
      expect((await c.closed).code).toBe(1011);
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toContain('client boom');
  });

  it('reaches stderr in a real process once, and --disable-warning=WschanWarning silences it', async () => {
    const script = `
      import { Server, connect } from './dist/src/index.js';
      const s = new Server().handleData(() => { throw new Error('boom from the child'); });
      const { port } = await s.listen({ port: 0, host: '127.0.0.1' });
      for (let i = 0; i < 3; i++) { const c = await connect('ws://127.0.0.1:' + port); await c.write('x'); await c.closed; }
      await s.close();
      console.log('done');
    `;
    const run = (flags: string[]) => runNode(flags, script);
    const loud = await run([]);
    expect(loud.out).toContain('done');
    expect(loud.out.match(/WschanWarning: a handler threw: boom from the child/g)).toHaveLength(1);
    const quiet = await run(['--disable-warning=WschanWarning']);
    expect(quiet.out).toContain('done');
    expect(quiet.out).not.toContain('WschanWarning');
  });
});

describe('node:diagnostics_channel', () => {
  it('publishes open, error and close for both sides of a connection, in order', async () => {
    const { url } = await startServer(undefined, (s) =>
      s
        .handleData(() => {
          throw new Error('boom');
        })
        .handleError(() => {}),
    );
    let client: Conn | undefined;
    const got = await published([DiagnosticsChannel.connOpen, DiagnosticsChannel.connError, DiagnosticsChannel.connClose], async (got) => {
      client = await connect(url);
      await client.write('x');
      await client.closed;
      await waitUntil(() => got.filter(([n]) => n === DiagnosticsChannel.connClose).length === 2, 2000, 'both closes');
    });
    const server = got.find(([n, m]) => n === DiagnosticsChannel.connOpen && (m['conn'] as Conn).role === 'server')![1]['conn'] as Conn;
    const bySide = (side: Conn) => got.filter(([, m]) => m['conn'] === side).map(([n]) => n);
    expect(bySide(server)).toEqual(['wschan:conn:open', 'wschan:conn:error', 'wschan:conn:close']);
    expect(bySide(client!)).toEqual(['wschan:conn:open', 'wschan:conn:close']);
    const err = got.find(([n]) => n === DiagnosticsChannel.connError)![1]['error'] as WebSocketError;
    expect(err.code).toBe('WS_ERR_HANDLER_FAILED');
    const close = got.find(([n, m]) => n === DiagnosticsChannel.connClose && m['conn'] === server)![1]['info'] as CloseInfo;
    expect(close.code).toBe(1011);
  });

  it('publishes a refused handshake on both sides (server: req and error.status; client: url and error)', async () => {
    const { port } = await startServer({ path: '/only' });
    const got = await published([DiagnosticsChannel.handshakeRefused], async (got) => {
      await connect(`ws://127.0.0.1:${port}/elsewhere`).then(
        () => expect.fail('should be refused'),
        (e: unknown) => expect(e).toBeInstanceOf(HandshakeError),
      );
      await waitUntil(() => got.length === 2, 2000, 'two refusals');
    });
    const server = got.find(([, m]) => m['role'] === 'server')![1];
    expect((server['error'] as HandshakeError).status).toBe(404);
    expect((server['req'] as { url: string }).url).toBe('/elsewhere');
    const client = got.find(([, m]) => m['role'] === 'client')![1];
    expect(client['url']).toBe(`ws://127.0.0.1:${port}/elsewhere`);
    expect((client['error'] as HandshakeError).status).toBe(404);
  });

  it('publishes nothing to a channel nobody subscribes to (hasSubscribers is false)', async () => {
    // The other tests unsubscribe when done: the hot path is back to a property read per event.
    for (const name of Object.values(DiagnosticsChannel)) expect(channel(name).hasSubscribers).toBe(false);
  });
});

function runNode(flags: string[], script: string): Promise<{ code: number | null; out: string }> {
  return runNodeChild([...flags, '--input-type=module', '-e', script], { cwd: ROOT });
}
