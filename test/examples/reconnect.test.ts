import { describe, expect, it } from 'vitest';
import { runScript } from './run.js';

describe('examples/reconnect (npm run example:reconnect)', () => {
  it('the client rides out a server restart: it reconnects, resubscribes, and the messages written while down arrive', async () => {
    const r = await runScript('examples/reconnect/main.js', [], { env: { PORT: '0', DOWN_MS: '600' }, timeoutMs: 20_000 });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/client: reconnecting, attempt 1 in \d+ ms/);
    expect([...r.out.matchAll(/client: connected/g)]).toHaveLength(2);
    // Every message the client wrote reached a server, in order, across the restart.
    const hellos = [...r.out.matchAll(/server: got "hello (\d+)"/g)].map((m) => Number(m[1]));
    expect(hellos.length).toBeGreaterThanOrEqual(6);
    expect(hellos).toEqual(Array.from({ length: hellos.length }, (_, i) => i + 1));
    // Ticks came again after the reconnection (the resubscription worked).
    const after = r.out.slice(r.out.lastIndexOf('client: connected'));
    expect(after).toMatch(/client: first tick on this connection: tick \d+/);
    expect(r.out).toMatch(/done: 2 connections, \d+ ticks received, ended: closed/);
  });
});
