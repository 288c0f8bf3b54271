/**
 * The package as a user gets it: a clean checkout (the files git knows, no dist/) is packed with
 * `npm pack`, whose `prepare` script must build what the exports map points at; the tarball is
 * installed into a scratch app under the OS's temporary folder (outside the repository) with
 * `npm install --offline`, next to a tarball of the already-installed @sinclair/typebox (no
 * network, and a throwaway npm cache: nothing is left behind). Then, against the installed copy:
 * an ES module script and a CommonJS script open a server and a client and exchange a message,
 * and the repository's tsc type-checks a program under moduleResolution NodeNext, Node16 and
 * Bundler (an .mts and a .cts file where the mode has both, so the CommonJS types are checked too).
 * CI runs the suite on Node 20, 22 and 24 (.ci/run), so this runs on each of them.
 */
import { copyFileSync, mkdirSync, readFileSync, readdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, TSC, cleanEnv, mustRun, run, scratch, writeUserTsconfig } from './tools.js';

const work = scratch('wschan-pack');
const cache = join(work.dir, 'npm-cache');
const app = join(work.dir, 'app');
// A throwaway cache (its logs go there too); --offline: the registry is never asked.
const npmFlags = ['--cache', cache, '--offline', '--no-audit', '--no-fund', '--loglevel=error'];
let packed: { filename: string; files: { path: string }[] };

afterAll(() => work.remove());

/** A copy of what a clean clone holds: git's tracked and untracked-but-not-ignored files, with the repository's node_modules linked in (for the build's tsc). */
async function cleanCheckout(into: string): Promise<void> {
  const { stdout } = await mustRun('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT });
  for (const rel of stdout.split('\0')) {
    if (rel === '') continue;
    const to = join(into, rel);
    mkdirSync(dirname(to), { recursive: true });
    try {
      copyFileSync(join(ROOT, rel), to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // deleted in the work tree, not yet committed
    }
  }
  symlinkSync(join(ROOT, 'node_modules'), join(into, 'node_modules'), 'dir');
}

/** Every file path the exports map (and main/types) names. */
function exportTargets(pkg: { main: string; types: string; exports: unknown }): string[] {
  const out = new Set<string>([pkg.main, pkg.types]);
  const walk = (v: unknown): void => {
    if (typeof v === 'string') out.add(v);
    else if (v !== null && typeof v === 'object') for (const x of Object.values(v)) walk(x);
  };
  walk(pkg.exports);
  return [...out].map((p) => p.replace(/^\.\//, ''));
}

beforeAll(async () => {
  const checkout = join(work.dir, 'checkout');
  await cleanCheckout(checkout);
  expect(readdirSync(checkout)).not.toContain('dist');
  const [own, typebox] = await Promise.all([
    // `npm pack` runs `prepare` (the package build) in the clean checkout.
    mustRun('npm', ['pack', '--json', '--pack-destination', work.dir, ...npmFlags], { cwd: checkout, timeoutMs: 120_000 }),
    // The one runtime dependency, packed from node_modules (no registry).
    mustRun('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work.dir, ...npmFlags, join(ROOT, 'node_modules/@sinclair/typebox')], { cwd: work.dir }),
  ]);
  packed = (JSON.parse(own.stdout) as (typeof packed)[])[0]!;
  const typeboxFile = (JSON.parse(typebox.stdout) as { filename: string }[])[0]!.filename;
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', version: '1.0.0', private: true }, null, 2));
  await mustRun('npm', ['install', ...npmFlags, join(work.dir, packed.filename), join(work.dir, typeboxFile)], { cwd: app, timeoutMs: 120_000 });
}, 240_000);

describe('npm pack of a clean checkout', () => {
  it('builds on prepare: the tarball holds every file that main, types and the exports map name', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { main: string; types: string; exports: unknown };
    const files = new Set(packed.files.map((f) => f.path));
    const targets = exportTargets(pkg);
    expect(targets.length).toBeGreaterThanOrEqual(9);
    for (const t of targets.filter((t) => t !== 'package.json')) expect(files.has(t), `${t} missing from the tarball`).toBe(true);
    expect(files.has('dist/cjs/package.json')).toBe(true);
  });

  it('holds only what a user needs: the ESM and CommonJS builds, their types, README, LICENSE, package.json', () => {
    const paths = packed.files.map((f) => f.path);
    const extra = paths.filter((p) => !/^dist\/(esm|cjs)\/.+\.(js|d\.ts)$/.test(p) && !['package.json', 'README.md', 'LICENSE', 'dist/cjs/package.json'].includes(p));
    expect(extra).toEqual([]);
    // Both builds hold the same modules.
    const esm = paths.filter((p) => p.startsWith('dist/esm/')).map((p) => p.slice('dist/esm/'.length)).sort();
    const cjs = paths.filter((p) => p.startsWith('dist/cjs/') && p !== 'dist/cjs/package.json').map((p) => p.slice('dist/cjs/'.length)).sort();
    // The thread entry point runs as an ES module in both builds (src/scale/thread-main-url.ts).
    const threadMain = ['scale/thread-main.d.ts', 'scale/thread-main.js'];
    expect(esm).toEqual(expect.arrayContaining(threadMain));
    expect(cjs).toEqual(esm.filter((p) => !threadMain.includes(p)));
    expect(esm).toContain('index.js');
    expect(esm).toContain('protocol/index.d.ts');
  });
});

const script = (kind: 'esm' | 'cjs'): string => {
  const load =
    kind === 'esm'
      ? `import { Server, connect, WebSocketError, serveThreads } from 'wschan';
import { FrameParser, ParseStatus, Opcode, encodeFrame } from 'wschan/protocol';
import { RedisAdapter } from 'wschan/redis';
import { fileURLToPath } from 'node:url';
const resolved = ['wschan', 'wschan/protocol', 'wschan/redis'].map((s) => fileURLToPath(import.meta.resolve(s)));
await main();`
      : `const { Server, connect, WebSocketError, serveThreads } = require('wschan');
const { FrameParser, ParseStatus, Opcode, encodeFrame } = require('wschan/protocol');
const { RedisAdapter } = require('wschan/redis');
const resolved = ['wschan', 'wschan/protocol', 'wschan/redis'].map((s) => require.resolve(s));
main().catch((err) => { console.error(err); process.exitCode = 1; });`;
  return `${load}
async function main() {
  const server = new Server().handleData((conn, data, isBinary) => conn.write(data, isBinary));
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  const conn = await connect('ws://127.0.0.1:' + port + '/');
  await conn.write('hello from ${kind}');
  let echoed;
  for await (const m of conn) { echoed = m.data.toString(); break; }
  await conn.close();
  await server.close();
  const parser = new FrameParser({ role: 'client', maxFrameSize: 1024, maxMessageSize: 1024, allowRsv1: false });
  parser.push(encodeFrame(Opcode.Text, Buffer.from('sans-I/O')));
  const status = parser.advance();
  // serveThreads starts its thread from the installed package (one thread runs on every Node).
  const threaded = await serveThreads(new URL('./thread-app.mjs', 'file://' + process.cwd() + '/'), { threads: 1, port: 0, host: '127.0.0.1' });
  const tconn = await connect('ws://127.0.0.1:' + threaded.port + '/');
  await tconn.write('x');
  let fromThread;
  for await (const m of tconn) { fromThread = m.data.toString(); break; }
  await threaded.close();
  console.log(JSON.stringify({ echoed, fromThread, parsed: status === ParseStatus.Frame ? parser.payload.toString() : status, errorClass: new WebSocketError('WS_ERR_X', 'x') instanceof Error, redis: typeof RedisAdapter, resolved }));
}
`;
};

describe('the installed package runs', () => {
  for (const kind of ['esm', 'cjs'] as const) {
    it(`${kind === 'esm' ? "import from 'wschan'" : "require('wschan')"}: a server and a client exchange a message; wschan/protocol parses a frame`, async () => {
      const file = join(app, kind === 'esm' ? 'main.mjs' : 'main.cjs');
      writeFileSync(file, script(kind));
      writeFileSync(join(app, 'thread-app.mjs'), "export default (server, thread) => { server.handleData((conn, data) => conn.write('thread ' + thread.index + ': ' + data)); };\n");
      const r = await mustRun(process.execPath, [file], { cwd: app, timeoutMs: 20_000 });
      const out = JSON.parse(r.stdout.trim()) as { echoed: string; fromThread: string; parsed: string; errorClass: boolean; redis: string; resolved: string[] };
      expect(out.echoed).toBe(`hello from ${kind}`);
      expect(out.fromThread).toBe('thread 0: x');
      expect(out.parsed).toBe('sans-I/O');
      expect(out.errorClass).toBe(true);
      expect(out.redis).toBe('function'); // loads without the optional peer `redis` installed
      // From the installed copy, and the build of its own module system.
      const installed = join(realpathSync(app), 'node_modules/wschan', kind === 'esm' ? 'dist/esm' : 'dist/cjs');
      expect(out.resolved).toEqual([join(installed, 'index.js'), join(installed, 'protocol/index.js'), join(installed, 'scale/redis.js')]);
    }, 30_000);
  }
});

/** A program that uses the types (the @ts-expect-error lines fail if they were `any`). */
const typedProgram = (kind: 'esm' | 'cjs'): string => `import { Server, connect, type Conn, type CloseInfo, type WriteResult } from 'wschan';
import { FrameParser, ParseStatus, type Frame } from 'wschan/protocol';
import { RedisAdapter } from 'wschan/redis';

export async function program(): Promise<void> {
  const server = new Server<{ user: string }>({ maxMessageSize: 1 << 20, overflow: 'drop-oldest' });
  server.handleOpen((conn: Conn<{ user: string }>) => {
    const user: string = conn.data.user;
    console.log(user, conn.id);
  });
  // @ts-expect-error maxMessageSize is a number
  new Server({ maxMessageSize: 'big' });
  const conn = await connect('ws://127.0.0.1:1/');
  const w: Promise<WriteResult> = conn.write('${kind}');
  // @ts-expect-error write takes a string or bytes
  conn.write(42);
  const closed: Promise<CloseInfo> = conn.closed;
  const parser = new FrameParser({ role: 'server', maxFrameSize: 10, maxMessageSize: 10, allowRsv1: false });
  const s: ParseStatus = parser.advance();
  const f: Frame = parser.frame();
  console.log(w, closed, s, f.opcode, typeof RedisAdapter);
}
`;

describe('the installed package type-checks (the repository tsc, strict)', () => {
  const modes = [
    { name: 'NodeNext', module: 'NodeNext', files: ['program.mts', 'program.cts'] },
    { name: 'Node16', module: 'Node16', files: ['program.mts', 'program.cts'] },
    { name: 'Bundler', module: 'Preserve', files: ['program.ts'] },
  ] as const;
  it(`moduleResolution ${modes.map((m) => m.name).join(', ')}: .mts and .cts files resolve the ESM and the CommonJS types (Bundler: the ESM types)`, async () => {
    // The three compilers run at once: each is single-threaded and mostly reads @types/node.
    const results = await Promise.all(
      modes.map(async (mode) => {
        const dir = join(app, `types-${mode.name.toLowerCase()}`);
        mkdirSync(dir);
        for (const f of mode.files) writeFileSync(join(dir, f), typedProgram(f.endsWith('.cts') ? 'cjs' : 'esm'));
        // The package's types are proven by the @ts-expect-error lines and the files listed.
        writeUserTsconfig(dir, { module: mode.module, moduleResolution: mode.name, files: [...mode.files] });
        const r = await run(process.execPath, [TSC, '-p', dir, '--listFiles', '--pretty', 'false'], { cwd: dir, env: cleanEnv(), timeoutMs: 90_000 });
        return { mode, r };
      }),
    );
    for (const { mode, r } of results) {
      expect(r.code, `${mode.name}: tsc exited with ${r.code}\n${r.stdout.split('\n').filter((l) => !l.startsWith('/')).join('\n')}`).toBe(0);
      const listed = r.stdout.split('\n').map((l) => l.trim());
      const from = (p: string): boolean => listed.includes(join(app, 'node_modules/wschan', p));
      expect([from('dist/esm/index.d.ts'), from('dist/esm/protocol/index.d.ts')], `${mode.name}: the ESM types`).toEqual([true, true]);
      const cjs = mode.files.length > 1;
      expect([from('dist/esm/scale/redis.d.ts')], `${mode.name}: the ESM types of wschan/redis`).toEqual([true]);
      expect([from('dist/cjs/index.d.ts'), from('dist/cjs/protocol/index.d.ts'), from('dist/cjs/scale/redis.d.ts')], `${mode.name}: the CommonJS types`).toEqual([cjs, cjs, cjs]);
    }
  }, 120_000);
});
