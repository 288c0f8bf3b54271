/** The compressible bodies of the tests and of the compression benchmarks have one source, stress-tests/compressible.ts. */
import { readFileSync } from 'node:fs';
import zlib from 'node:zlib';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compressibleText } from '../helpers/text.js';
import { ROOT } from '../examples/run.js';

type Source = typeof import('../../stress-tests/compressible.js');
const bench = (await import(pathToFileURL(`${ROOT}bench/compressible.mjs`).href)) as { compressible: Source['compressibleText'] };
const built = (await import(pathToFileURL(`${ROOT}dist/stress-tests/compressible.js`).href)) as Source;

describe('compressible message bodies', () => {
  it('bench/compressible.mjs hands out the built generator itself, which makes the same bytes as the tests use', () => {
    expect(bench.compressible).toBe(built.compressibleText);
    expect(readFileSync(`${ROOT}bench/compressible.mjs`, 'utf8')).not.toMatch(/allocUnsafe|1103515245/);
    for (const [n, seed] of [[0, 1], [100, 2], [70_000, 3]] as const) expect(bench.compressible(n, seed).equals(compressibleText(n, seed))).toBe(true);
  });

  it('is seeded (same seed, same bytes; another seed, other bytes) and compresses to under a third at level 1', () => {
    const a = compressibleText(64 * 1024, 5);
    expect(a.length).toBe(64 * 1024);
    expect(compressibleText(64 * 1024, 5).equals(a)).toBe(true);
    expect(compressibleText(64 * 1024, 6).equals(a)).toBe(false);
    expect(zlib.deflateRawSync(a, { level: 1 }).length).toBeLessThan(a.length / 3);
  });
});
