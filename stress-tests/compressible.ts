/**
 * Compressible message bodies from a seeded generator, in one place for the tests
 * (test/helpers/text.ts) and the compression benchmarks (bench/compressible.mjs imports the
 * build, dist/stress-tests/compressible.js). No wschan import: a benchmark loads only this.
 */

/** `n` bytes of compressible JSON-like text, different per seed (zlib level 1 takes it to ~1/5). */
export function compressibleText(n: number, seed: number): Buffer {
  const words = ['{"id":', '"user":"ada"', '"text":"hello there"', ',', '}', '\n', 'websocket ', 'deflate ', String(seed)];
  const out = Buffer.allocUnsafe(n);
  let x = seed * 2654435761 + 1;
  let off = 0;
  while (off < n) {
    x = (x * 1103515245 + 12345) >>> 0;
    off += out.write(words[x % words.length]!, off);
  }
  return out;
}
