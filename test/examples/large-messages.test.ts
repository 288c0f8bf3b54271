/** `npm run example:large-messages`: the threadPool* Server options in a program (no timings asserted; the delays are printed). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ROOT, runScript } from './run.js';

describe('examples/large-messages (npm run example:large-messages)', { timeout: 60_000 }, () => {
  it('is the script package.json runs', () => {
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['example:large-messages']).toBe('node dist/examples/large-messages/main.js');
  });

  for (const threshold of [undefined, 1 << 30]) {
    it(`uploads a 4 MiB compressible message, gets the reply, and prints the event-loop delay${threshold === undefined ? '' : ' (--threshold: all on the loop)'}`, async () => {
      const args = ['--mb', '4', ...(threshold === undefined ? [] : ['--threshold', String(threshold)])];
      const r = await runScript('examples/large-messages/main.js', args, { env: { PORT: '0' }, timeoutMs: 30_000 });
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(new RegExp(`^wschan large-messages example on ws://127\\.0\\.0\\.1:\\d+/: threadPoolThreshold ${threshold ?? 131072} bytes`, 'm'));
      expect(r.out).toMatch(/^server: upload 1 from client \d+: 4194304 bytes$/m);
      expect(r.out).toMatch(/^client: reply "received 4194304 bytes"$/m);
      // Compressed on the wire: well under the 4 MiB sent.
      const wire = /^client: sent 4 MiB as (\d+) KiB on the wire$/m.exec(r.out);
      expect(wire, r.out).not.toBeNull();
      expect(Number(wire![1])).toBeLessThan(1024);
      expect(r.out).toMatch(/^meanwhile: \d+ small round trips on another connection$/m);
      expect(r.out).toMatch(/^event-loop delay during the upload: p99 [\d.]+ ms, max [\d.]+ ms$/m);
    });
  }
});
