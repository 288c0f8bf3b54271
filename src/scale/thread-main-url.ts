/**
 * The thread entry point (src/scale/thread-main.ts) as a URL for `new Worker(...)`. A worker's
 * entry runs as an ES module (it awaits at the top level), so in both builds it is the ES module
 * build's file: here, beside this module. The CommonJS build (dist/cjs) cannot say import.meta;
 * `npm run build:package` replaces this file there with one that points from dist/cjs/scale to
 * dist/esm/scale (scripts/finish-cjs-build.mjs).
 */
// @ts-ignore TS1343 in the CommonJS build only, whose emitted copy of this file is replaced.
export const THREAD_MAIN: URL = new URL('./thread-main.js', import.meta.url);
