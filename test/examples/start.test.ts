/** `npm start` (examples/broadcast/demo.ts) as a first-time user meets it: ids from 1, and a busy port. */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { runScript } from './run.js';

describe('npm start', () => {
  it('names its first client "client 1" (server and client connections are numbered apart)', async () => {
    const r = await runScript('examples/broadcast/demo.js', ['--seconds', '1'], { env: { PORT: '0' } });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^client 1 joined from 127\.0\.0\.1/m);
  });

  it('on a busy port prints one line (EADDRINUSE, the port, how to choose another) and exits 1, without a stack', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      const r = await runScript('examples/broadcast/demo.js', ['--seconds', '1'], { env: { PORT: String(port) } });
      expect(r.code).toBe(1);
      expect(r.out).toBe(
        `wschan demo: port ${port} on 127.0.0.1 is already in use (EADDRINUSE); choose another with PORT=<port> npm start (PORT=0 picks a free one)\n`,
      );
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
