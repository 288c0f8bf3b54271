/**
 * The README's "Typed messages" code blocks compile under the project's strict settings, as the
 * files they say they are (`// chat-protocol.ts` ...), with `wschan` and `wschan/typed` resolved to
 * this repository's sources. A snippet a user cannot paste is a bug.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('README: typed messages', () => {
  it('every code block of the section compiles under strict', () => {
    const readme = readFileSync(`${ROOT}README.md`, 'utf8');
    const start = readme.indexOf('\n## Typed messages\n');
    expect(start, 'the README has a "Typed messages" section').toBeGreaterThan(0);
    const end = readme.indexOf('\n## ', start + 1);
    const section = readme.slice(start, end === -1 ? undefined : end);
    const blocks = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBe(3);
    const dir = `${ROOT}test/typed/readme-snippets/`;
    const files = new Map<string, string>();
    for (const code of blocks) {
      const name = /^\/\/ ([\w-]+\.ts)\b/.exec(code)?.[1];
      expect(name, `a block starts with its file name: ${code.slice(0, 40)}`).toBeDefined();
      files.set(`${dir}${name!}`, code);
    }
    const config = ts.getParsedCommandLineOfConfigFile(`${ROOT}tsconfig.test.json`, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(String(d.messageText)); } })!;
    const options: ts.CompilerOptions = {
      ...config.options,
      noEmit: true,
      incremental: false,
      baseUrl: ROOT,
      paths: { 'wschan': ['src/index.ts'], 'wschan/typed': ['src/typed/index.ts'] },
    };
    const host = ts.createCompilerHost(options);
    const read = host.readFile.bind(host);
    const exists = host.fileExists.bind(host);
    host.readFile = (f) => files.get(f) ?? read(f);
    host.fileExists = (f) => files.has(f) || exists(f);
    const dirExists = host.directoryExists?.bind(host);
    host.directoryExists = (d) => `${d}/` === dir || d === dir || (dirExists?.(d) ?? true);
    const program = ts.createProgram([...files.keys()], options, host);
    const errors = ts.getPreEmitDiagnostics(program).map((d) => `${d.file?.fileName.replace(ROOT, '') ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
    expect(errors).toEqual([]);
  }, 60_000);
});
