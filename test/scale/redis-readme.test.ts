/**
 * The README's "Redis" section compiles under the project's strict settings, importing the package
 * by its own name (`wschan`, `wschan/redis`) as a user would.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../examples/run.js';

function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n## ${heading}`);
  if (start < 0) throw new Error(`README has no "## ${heading}" section`);
  const end = markdown.indexOf('\n## ', start + 4);
  return markdown.slice(start, end < 0 ? undefined : end);
}

describe('README: Redis', () => {
  it('its TypeScript blocks (one Redis, a Redis Cluster) compile under strict against the built package', () => {
    const text = section(readFileSync(join(ROOT, 'README.md'), 'utf8'), 'Redis: fan-out across machines');
    const blocks = [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBe(2);
    expect(blocks[1]).toContain('cluster: { rootNodes');
    // Inside the package (dist/ is ignored) so that `wschan` resolves to itself through "exports".
    const dir = join(ROOT, 'dist', 'readme-check');
    mkdirSync(dir, { recursive: true });
    const files = blocks.map((block, i) => {
      const file = join(dir, `redis-${i}.ts`);
      writeFileSync(file, block);
      return file;
    });
    try {
      const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!;
      const program = ts.createProgram(files, { ...config.options, noEmit: true, incremental: false, noUnusedLocals: true, strict: true });
      const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      expect(diagnostics).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000); // a whole type-check of the package: 9-17 s on the shared 2-core machine
});
