/**
 * The library as the threads run it: the built dist/ (npm test builds first). A worker thread runs
 * dist/src/scale/thread-main.js, which Node 20/22 cannot load from TypeScript sources.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DIST = new URL('../../dist/src/index.js', import.meta.url);
if (!existsSync(fileURLToPath(DIST))) throw new Error(`${fileURLToPath(DIST)} is missing: run \`npm run build\` first (npm test does)`);

export * from '../../dist/src/index.js';
export { reusePortMissing } from '../../dist/src/server/reuse-port.js';
