/**
 * The README compiles and its runnable blocks run (STYLE.md: "a snippet that a user cannot paste
 * is a bug"). The convention for README.md's fenced code blocks, by info string:
 *
 * - ```ts: every block is type-checked, as an ES module of its own, under `strict` (NodeNext),
 *   with `wschan` and its subpaths mapped to src/ (from package.json's exports) and other
 *   packages (express, fastify...) from the repository's node_modules. A block that uses names it does not define
 *   (a `server` made in an earlier block, your own `authenticate`) gets them from a prelude: an
 *   HTML comment `<!-- prelude: ...TypeScript... -->` right before the block (blank lines
 *   between are fine). GitHub does not show the comment; the checker prepends its text. A block
 *   whose first line names a file (`// chat-protocol.ts`) is written as that file, so that later
 *   blocks can import it (`./chat-protocol.js`).
 * - ```js run, ```sh run (also bash/shell/javascript/mjs/cjs): the block claims to run, so it
 *   runs, and must exit 0 within 20 s: a JavaScript block with an `import` statement as main.mjs,
 *   any other as main.cjs; a shell block with `bash -euo pipefail`. Each runs in a scratch folder
 *   outside the repository whose node_modules/wschan links to this repository (so `wschan`
 *   resolves through package.json's exports to dist/esm or dist/cjs: `npm test` builds them).
 * - ```js without `run` (or with `fragment`): a fragment, only checked to parse (`node --check`).
 * - ```sh without `run`: shown, not run (commands that install or start a server).
 * - Anything else (diagrams, text, JSON) is not checked.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, TSC, cleanEnv, run, scratch, writeUserTsconfig } from './tools.js';

export interface Block {
  /** 1-based line of README.md where the block's code starts (the line after the fence). */
  line: number;
  lang: string;
  flags: string[];
  code: string;
  prelude: string;
}

/** The fenced code blocks of a Markdown text (``` fences), each with the prelude comment before it. */
export function extractBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,})\s*([^`]*)$/.exec(lines[i]!);
    if (open === null) continue;
    const fence = open[2]!;
    const [lang = '', ...flags] = open[3]!.trim().split(/\s+/).filter((w) => w !== '');
    let j = i + 1;
    while (j < lines.length && !new RegExp(`^\\s*${fence}\\s*$`).test(lines[j]!)) j++;
    if (j >= lines.length) throw new Error(`README.md:${i + 1}: a code block is never closed`);
    // The prelude: an HTML comment ending on the last non-blank line before the fence.
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    let prelude = '';
    if (k >= 0 && lines[k]!.trim().endsWith('-->')) {
      let s = k;
      while (s >= 0 && !lines[s]!.includes('<!--')) s--;
      const comment = lines.slice(s, k + 1).join('\n');
      const m = /<!--\s*prelude:([\s\S]*?)-->/.exec(comment);
      if (m !== null) prelude = m[1]!.trim();
    }
    blocks.push({ line: i + 2, lang: lang.toLowerCase(), flags, code: lines.slice(i + 1, j).join('\n'), prelude });
    i = j;
  }
  return blocks;
}

/** `wschan` and each subpath of package.json's exports, mapped to its source (dist/esm/x.d.ts → src/x.ts). */
function sourcePaths(): Record<string, string[]> {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
  const paths: Record<string, string[]> = {};
  for (const [sub, target] of Object.entries(pkg.exports)) {
    const types = (target as { import?: { types?: string } }).import?.types;
    if (types === undefined) continue;
    const m = /^\.\/dist\/esm\/(.+)\.d\.ts$/.exec(types);
    if (m === null) throw new Error(`package.json exports["${sub}"].import.types is not under dist/esm: ${types}`);
    paths[sub === '.' ? 'wschan' : `wschan/${sub.slice(2)}`] = [join(ROOT, 'src', `${m[1]}.ts`)];
  }
  return paths;
}

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const blocks = extractBlocks(README);
const isTs = (b: Block): boolean => b.lang === 'ts' || b.lang === 'typescript';
const isJs = (b: Block): boolean => ['js', 'javascript', 'mjs', 'cjs'].includes(b.lang);
const isSh = (b: Block): boolean => ['sh', 'bash', 'shell'].includes(b.lang);
const runs = (b: Block): boolean => b.flags.includes('run');

const work = scratch('wschan-readme');
afterAll(() => work.remove());

describe('README.md code blocks', () => {
  it('finds the blocks the README is known to have (the extractor works)', () => {
    expect(blocks.filter(isTs).length).toBeGreaterThanOrEqual(3);
    expect(blocks.filter((b) => isJs(b) && runs(b)).length).toBeGreaterThanOrEqual(2);
    // The quick start runs as written.
    const quick = README.split('\n').findIndex((l) => l.startsWith('## Quick start')) + 1;
    expect(quick, 'README.md has a "## Quick start" section').toBeGreaterThan(0);
    const first = blocks.find((b) => b.line > quick);
    expect(first?.lang).toBe('js');
    expect(first?.flags).toContain('run');
  });

  it('every ```ts block type-checks under strict, with wschan mapped to src/', async () => {
    const dir = join(work.dir, 'ts');
    mkdirSync(dir);
    const files: { name: string; block: Block; offset: number }[] = [];
    // A type: module folder, so that named .ts blocks are ES modules too.
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    blocks.filter(isTs).forEach((b, n) => {
      // A block whose first line names its file (`// chat-protocol.ts`) is that file: the blocks
      // after it may import it (`./chat-protocol.js`).
      const named = /^\/\/ ([\w-]+\.ts)\b/.exec(b.code)?.[1];
      const name = named ?? `block-${String(n + 1).padStart(2, '0')}-line-${b.line}.mts`;
      const prelude = b.prelude === '' ? '' : `${b.prelude}\n`;
      // `export {}` keeps a block without imports a module (its names do not clash with another's).
      writeFileSync(join(dir, name), `${prelude}${b.code}\nexport {};\n`);
      files.push({ name, block: b, offset: prelude === '' ? 0 : prelude.split('\n').length - 1 });
    });
    // Other packages a block imports (express, fastify...) come from the repository's node_modules.
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    writeUserTsconfig(dir, { module: 'NodeNext', moduleResolution: 'NodeNext', files: files.map((f) => f.name), paths: sourcePaths() });
    const r = await run(process.execPath, [TSC, '-p', dir, '--pretty', 'false'], { cwd: dir, env: cleanEnv(), timeoutMs: 120_000 });
    // Point each error at README.md's line.
    const errors = (r.stdout + r.stderr)
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const m = /^([\w.-]+\.m?ts)\((\d+),(\d+)\): (.*)$/.exec(l);
        const f = m === null ? undefined : files.find((x) => x.name === m[1]);
        if (m === null || f === undefined) return l;
        const codeLine = Number(m[2]) - f.offset;
        return codeLine >= 1 ? `README.md:${f.block.line + codeLine - 1}:${m[3]}: ${m[4]}` : `README.md:${f.block.line} (its prelude, line ${m[2]}): ${m[4]}`;
      });
    expect(errors, errors.join('\n')).toEqual([]);
    expect(r.code).toBe(0);
  }, 120_000); // one tsc over every block, src/ and the frameworks' types: 5 s alone, 20+ s beside the suite

  const setupRunDir = (name: string): string => {
    const dir = join(work.dir, name);
    mkdirSync(join(dir, 'node_modules'), { recursive: true });
    symlinkSync(ROOT.replace(/\/$/, ''), join(dir, 'node_modules', 'wschan'), 'dir');
    return dir;
  };

  for (const b of blocks.filter((b) => (isJs(b) || isSh(b)) && runs(b))) {
    it(`the ${b.lang} block at README.md:${b.line} runs and exits 0`, async () => {
      for (const f of ['dist/esm/index.js', 'dist/cjs/index.js']) {
        expect(() => readFileSync(join(ROOT, f)), `${f} is missing: run \`npm run build:package\` (npm test does)`).not.toThrow();
      }
      const dir = setupRunDir(`run-${b.line}`);
      let r;
      if (isJs(b)) {
        const esm = b.lang === 'mjs' || (b.lang !== 'cjs' && /^\s*import\s[^(]/m.test(b.code));
        const file = join(dir, esm ? 'main.mjs' : 'main.cjs');
        writeFileSync(file, b.code);
        r = await run(process.execPath, [file], { cwd: dir, timeoutMs: 20_000 });
      } else {
        const env = cleanEnv({ PATH: `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}` });
        r = await run('bash', ['-euo', 'pipefail', '-c', b.code], { cwd: dir, env, timeoutMs: 20_000 });
      }
      expect(r.code, `README.md:${b.line}: exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`).toBe(0);
    }, 30_000);
  }

  it('every other ```js block parses (node --check)', async () => {
    const dir = join(work.dir, 'fragments');
    mkdirSync(dir);
    const failures: string[] = [];
    for (const b of blocks.filter((b) => isJs(b) && !runs(b))) {
      const esm = b.lang !== 'cjs' && /^\s*(import|export)\s/m.test(b.code);
      const file = join(dir, `line-${b.line}.${esm ? 'mjs' : 'cjs'}`);
      writeFileSync(file, b.code);
      const r = await run(process.execPath, ['--check', file], { cwd: dir });
      if (r.code !== 0) failures.push(`README.md:${b.line}: ${r.stderr}`);
    }
    expect(failures, failures.join('\n')).toEqual([]);
  });
});

describe('README.md: why wschan over ws', () => {
  it('quotes only ratios that bench/RESULTS.md holds', () => {
    const lines = README.split('\n');
    const start = lines.findIndex((l) => l.startsWith('## Why wschan over ws'));
    expect(start, 'README.md has a "## Why wschan over ws" section').toBeGreaterThan(0);
    let end = start + 1;
    while (end < lines.length && !lines[end]!.startsWith('## ')) end++;
    const text = lines.slice(start, end).join('\n');
    const ratios = [...text.matchAll(/(\d+\.\d+)×/g)].map((m) => m[1]!);
    expect(ratios.length).toBeGreaterThanOrEqual(5);
    const results = readFileSync(join(ROOT, 'bench/RESULTS.md'), 'utf8');
    for (const r of ratios) expect(results, `${r}× is not in bench/RESULTS.md`).toContain(`${r}×`);
  });
});

describe('the extractor', () => {
  it('reads fences, info strings and the prelude comment, and reports README line numbers', () => {
    const md = ['# t', '', '<!-- prelude: declare const x: number; -->', '', '```ts', 'x + 1;', '```', 'text', '```js run', 'a()', '```', '```', 'diagram', '```'].join('\n');
    expect(extractBlocks(md)).toEqual([
      { line: 6, lang: 'ts', flags: [], code: 'x + 1;', prelude: 'declare const x: number;' },
      { line: 10, lang: 'js', flags: ['run'], code: 'a()', prelude: '' },
      { line: 13, lang: '', flags: [], code: 'diagram', prelude: '' },
    ]);
  });
});
