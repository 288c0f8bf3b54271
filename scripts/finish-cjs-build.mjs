// After `tsc -p tsconfig.cjs.json` (npm run build:package): mark dist/cjs as CommonJS, and give
// the CommonJS build the location of the thread entry point, which only the ES module build has
// (src/scale/thread-main-url.ts says why).
import { writeFileSync } from 'node:fs';

writeFileSync('dist/cjs/package.json', '{"type": "commonjs"}\n');
writeFileSync(
  'dist/cjs/scale/thread-main-url.js',
  [
    '"use strict";',
    '// Written by scripts/finish-cjs-build.mjs: the ES module build\'s thread entry point.',
    'Object.defineProperty(exports, "__esModule", { value: true });',
    'exports.THREAD_MAIN = require("node:url").pathToFileURL(require("node:path").join(__dirname, "..", "..", "esm", "scale", "thread-main.js"));',
    '',
  ].join('\n'),
);
