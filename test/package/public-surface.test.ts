/**
 * What is not documented is not public: every export of `wschan` (src/index.ts) and of
 * `wschan/protocol` (src/protocol/index.ts) is named in README.md's table for it, every name in
 * those tables is exported, and Conn's public members are exactly the rows of README.md's Conn
 * table (the broadcast internals reach Conn through a module-level accessor instead).
 * The names come from the TypeScript compiler (export lists, `export *`, types and values alike).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { Conn, Server, connect } from '../../src/index.js';
import { ROOT } from './tools.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

const program = ts.createProgram([join(ROOT, 'src/index.ts'), join(ROOT, 'src/protocol/index.ts')], {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  strict: true,
  noEmit: true,
  types: ['node'],
  typeRoots: [join(ROOT, 'node_modules/@types')],
});
const checker = program.getTypeChecker();

function exportsOf(file: string): string[] {
  const source = program.getSourceFile(join(ROOT, file));
  if (source === undefined) throw new Error(`${file} is not in the program`);
  const symbol = checker.getSymbolAtLocation(source);
  if (symbol === undefined) throw new Error(`${file} is not a module`);
  return checker.getExportsOfModule(symbol).map((s) => s.name).sort();
}

/** The lines of README.md from a heading to the next heading of the same or a higher level. */
function section(heading: string): string {
  const lines = README.split('\n');
  const start = lines.findIndex((l) => l.trim() === heading);
  if (start < 0) throw new Error(`README.md has no heading "${heading}"`);
  const level = /^#+/.exec(heading)![0].length;
  let end = start + 1;
  while (end < lines.length && !(/^#+ /.test(lines[end]!) && /^#+/.exec(lines[end]!)![0].length <= level)) end++;
  return lines.slice(start + 1, end).join('\n');
}

/** The names in the first column of a section's tables: each `code span`'s leading identifier (`write(data)` → write). */
function firstColumnNames(text: string): string[] {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const cells = /^\|([^|]*(?:\\\|[^|]*)*)\|/.exec(line);
    if (cells === null || /^\|\s*-/.test(line)) continue;
    for (const m of cells[1]!.matchAll(/`([^`]+)`/g)) {
      const code = m[1]!;
      const sym = /^\[Symbol\.(\w+)\]/.exec(code);
      if (sym !== null) names.add(`[Symbol.${sym[1]}]`);
      const id = /^(?:new\s+)?([A-Za-z_$][\w$]*)/.exec(code);
      if (id !== null && sym === null) names.add(id[1]!);
    }
  }
  names.delete('export'); // the header row
  names.delete('member');
  names.delete('field');
  return [...names].sort();
}

describe('the public surface is what the README documents', () => {
  it("every export of 'wschan' is in README's export table, and the table names only exports", () => {
    const exported = exportsOf('src/index.ts');
    expect(exported.length).toBeGreaterThan(30);
    expect(firstColumnNames(section('### Everything `wschan` exports'))).toEqual(exported);
  });

  it("every export of 'wschan/protocol' is in README's protocol table, and the table names only exports", () => {
    const exported = exportsOf('src/protocol/index.ts');
    expect(exported).toContain('FrameParser');
    expect(firstColumnNames(section('## The protocol core: `wschan/protocol`'))).toEqual(exported);
  });

  it("Conn's public members are exactly the rows of README's Conn table", () => {
    const source = program.getSourceFile(join(ROOT, 'src/conn/conn.ts'))!;
    const decl = source.statements.find((s): s is ts.ClassDeclaration => ts.isClassDeclaration(s) && s.name?.text === 'Conn')!;
    const type = checker.getDeclaredTypeOfSymbol(checker.getSymbolAtLocation(decl.name!)!);
    const members = checker
      .getPropertiesOfType(type)
      .filter((p) => !p.name.startsWith('#')) // ES private: not reachable from outside
      .map((p) => (p.name.startsWith('__@') ? `[Symbol.${/^__@(\w+?)@/.exec(p.name)![1]}]` : p.name))
      .sort();
    const documented = firstColumnNames(section('### `Conn<D>`'));
    expect(members).toEqual(documented);
  });

  it('a live connection has no broadcast internals (tryWriteFrame, tryPublish, deflateKeyFor)', async () => {
    const server = new Server();
    const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
    try {
      const conn = await connect(`ws://127.0.0.1:${port}/`);
      expect(conn).toBeInstanceOf(Conn);
      for (const name of ['tryWriteFrame', 'tryPublish', 'deflateKeyFor']) expect(name in conn, name).toBe(false);
      await conn.close();
    } finally {
      await server.close();
    }
  });
});
