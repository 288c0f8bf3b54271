/**
 * The compiler rejects a wrong kind or payload: test/typed/types-expect-error.ts compiled with its
 * `// @ts-expect-error TSxxxx` directives removed must give exactly error TSxxxx on each line after
 * one, and no error anywhere else. (With the directives, the project's typecheck compiles it clean.)
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FILE = fileURLToPath(new URL('./types-expect-error.ts', import.meta.url));

describe('typed messages: static types', () => {
  it('a wrong kind or payload is a compile error, the error each line expects', () => {
    const source = readFileSync(FILE, 'utf8');
    const lines = source.split('\n');
    const expected = new Map<number, number>(); // 1-based line of the statement -> TS code
    const stripped = lines.map((line, i) => {
      const m = /^(\s*)\/\/ @ts-expect-error TS(\d+)\b/.exec(line);
      if (m === null) return line;
      expected.set(i + 2, Number(m[2]));
      return `${m[1]}// (expect TS${m[2]})`;
    });
    expect(expected.size).toBe(14);

    const config = ts.getParsedCommandLineOfConfigFile(`${ROOT}tsconfig.test.json`, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(String(d.messageText)); } })!;
    const host = ts.createCompilerHost({ ...config.options, noEmit: true, incremental: false });
    const read = host.readFile.bind(host);
    host.readFile = (name) => (name === FILE ? stripped.join('\n') : read(name));
    const program = ts.createProgram([FILE], { ...config.options, noEmit: true, incremental: false }, host);
    const got = new Map<number, number[]>();
    for (const d of ts.getPreEmitDiagnostics(program)) {
      expect(d.file?.fileName, ts.flattenDiagnosticMessageText(d.messageText, '\n')).toBe(FILE);
      const line = d.file!.getLineAndCharacterOfPosition(d.start!).line + 1;
      got.set(line, [...(got.get(line) ?? []), d.code]);
    }
    const want = new Map([...expected].map(([l, c]) => [l, [c]]));
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want));
  }, 60_000);
});
