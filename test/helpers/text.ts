/** Message bodies for the permessage-deflate tests, from seeded generators (the same bytes every run). */

export { compressibleText } from '../../stress-tests/compressible.js';

/** `n` random lowercase letters: ~60% of their size after deflate, unless the window already holds them. */
export function randomLetters(n: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0, x = seed; i < n; i++) out[i] = 97 + ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) % 26;
  return out;
}
