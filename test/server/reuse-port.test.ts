/**
 * listen({ reusePort: true }): several listeners on one port (SO_REUSEPORT, Node >= 22.12 / 23.1
 * on Linux), which the threaded server needs. Where Node lacks it, listen() refuses with
 * WS_ERR_UNSUPPORTED instead of binding alone (an older Node would ignore the option silently).
 */
import { describe, expect, it } from 'vitest';
import { connect, Server } from '../../src/index.js';
import { reusePortMissing } from '../../src/server/reuse-port.js';

const MISSING = reusePortMissing();

describe('listen({ reusePort: true })', () => {
  if (MISSING !== undefined) {
    it('refuses with WS_ERR_UNSUPPORTED, naming what is missing, and can listen again without it', async () => {
      console.warn(`reuse-port.test.ts: SO_REUSEPORT listeners cannot run here (needs ${MISSING}); asserting the refusal instead`);
      const server = new Server();
      const err = await server.listen({ port: 0, host: '127.0.0.1', reusePort: true }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'WS_ERR_UNSUPPORTED' });
      expect((err as Error).message).toContain('Node >= 22.12');
      const addr = await server.listen({ port: 0, host: '127.0.0.1' });
      expect(addr.port).toBeGreaterThan(0);
      await server.close();
    });
    return;
  }

  it('lets two servers listen on the same port, and both serve', async () => {
    const a = new Server().handleOpen((c) => void c.write('a'));
    const b = new Server().handleOpen((c) => void c.write('b'));
    const { port } = await a.listen({ port: 0, host: '127.0.0.1', reusePort: true });
    await b.listen({ port, host: '127.0.0.1', reusePort: true });
    // Without reusePort the port is taken.
    await expect(new Server().listen({ port, host: '127.0.0.1' })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    const seen = new Set<string>();
    for (let i = 0; i < 64 && seen.size < 2; i++) {
      const c = await connect(`ws://127.0.0.1:${port}`);
      for await (const m of c) {
        seen.add(m.data.toString());
        break;
      }
      await c.close();
    }
    expect([...seen].sort()).toEqual(['a', 'b']);
    await Promise.all([a.close(), b.close()]);
  });
});
