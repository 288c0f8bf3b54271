/**
 * `redis` is an optional peer dependency: a process in which it cannot be resolved (as for a user
 * who did not install it) still imports the main entry and `wschan/redis`, and only
 * `RedisAdapter.connect` fails, with a typed error that says what to install.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../examples/run.js';

describe('redis is optional', () => {
  it('the main entry loads no Redis client; wschan/redis loads it only to connect, and says what to install when it is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wschan-no-redis-'));
    try {
      // A resolve hook that makes `redis` (and @redis/*) missing: an import of the main entry or of
      // wschan/redis that needed it would fail here. (Hooks run on their own thread: they print nothing.)
      writeFileSync(join(dir, 'hooks.mjs'), `
export async function resolve(specifier, context, next) {
  if (specifier === 'redis' || specifier.startsWith('@redis/')) {
    const e = new Error("Cannot find package '" + specifier + "'"); e.code = 'ERR_MODULE_NOT_FOUND'; throw e;
  }
  return next(specifier, context);
}`);
      writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});`);
      writeFileSync(join(dir, 'main.mjs'), `
const main = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/src/index.js')).href)});
process.stderr.write('main loaded\\n');
const { RedisAdapter } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/src/scale/redis.js')).href)});
process.stderr.write('wschan/redis loaded\\n');
try {
  await RedisAdapter.connect(new main.Server());
} catch (e) {
  console.log(JSON.stringify({ code: e.code, message: e.message }));
}`);
      const r = spawnSync(process.execPath, ['--import', pathToFileURL(join(dir, 'register.mjs')).href, join(dir, 'main.mjs')], { encoding: 'utf8', timeout: 15_000 });
      expect(r.stderr.split('\n').filter((l) => l !== '' && !l.includes('ExperimentalWarning') && !l.includes('--trace-warnings'))).toEqual(['main loaded', 'wschan/redis loaded']);
      expect(JSON.parse(r.stdout)).toEqual({
        code: 'WS_ERR_MISSING_PEER_DEPENDENCY',
        message: 'wschan/redis needs the optional peer dependency `redis` (node-redis 5 or later): npm install redis',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
