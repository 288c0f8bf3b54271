/**
 * `npm install <git url>`: npm clones the repository's committed HEAD, installs its
 * devDependencies and runs `prepare` (the package build) in the clone, then installs the result;
 * `require('wschan')` and `import 'wschan'` must then work from the scratch app. This takes one to
 * two minutes and reads the npm registry (npm resolves the clone's devDependencies; --prefer-offline
 * takes what the cache holds), so it runs once per CI run: .ci/run sets WSCHAN_GIT_INSTALL_TEST=1 on
 * its first Node version. Elsewhere it is skipped with that reason printed. The tarball path
 * (`npm pack` + install, no network) is tested on every Node by pack-install.test.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, mustRun, scratch } from './tools.js';

const enabled = process.env['WSCHAN_GIT_INSTALL_TEST'] === '1';
if (!enabled) {
  console.warn('skipped test/package/git-install.test.ts: it runs once per CI run (.ci/run sets WSCHAN_GIT_INSTALL_TEST=1 on the first Node version); set it to run it here');
}

describe.skipIf(!enabled)('npm install <git url>', () => {
  const work = scratch('wschan-git');
  afterAll(() => work.remove());

  it('builds the package on prepare and installs it: require and import both work', async () => {
    // What a user sees is what is committed: npm clones HEAD, not the work tree.
    const { stdout: head } = await mustRun('git', ['rev-parse', 'HEAD'], { cwd: ROOT });
    const app = join(work.dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    const url = `git+${pathToFileURL(ROOT).href.replace(/\/$/, '')}#${head.trim()}`;
    await mustRun('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', url], { cwd: app, timeoutMs: 280_000 });
    const probe = (kind: string): string =>
      `server: typeof w.Server, connect: typeof w.connect, threads: typeof w.serveThreads, kind: '${kind}'`;
    writeFileSync(join(app, 'main.cjs'), `const w = require('wschan'); console.log(JSON.stringify({ ${probe('cjs')}, file: require.resolve('wschan') }));\n`);
    writeFileSync(join(app, 'main.mjs'), `import * as w from 'wschan'; console.log(JSON.stringify({ ${probe('esm')}, file: import.meta.resolve('wschan') }));\n`);
    for (const file of ['main.cjs', 'main.mjs']) {
      const r = await mustRun(process.execPath, [file], { cwd: app, timeoutMs: 20_000 });
      const out = JSON.parse(r.stdout.trim()) as { server: string; connect: string; threads: string; kind: string; file: string };
      expect(out).toMatchObject({ server: 'function', connect: 'function', threads: 'function' });
      expect(out.file).toContain(out.kind === 'cjs' ? 'node_modules/wschan/dist/cjs/index.js' : 'node_modules/wschan/dist/esm/index.js');
    }
  }, 300_000);
});
