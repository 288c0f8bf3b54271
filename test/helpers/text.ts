/** Message bodies for the permessage-deflate tests, from seeded generators (the same bytes every run). */

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

/** `n` random lowercase letters: ~60% of their size after deflate, unless the window already holds them. */
export function randomLetters(n: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0, x = seed; i < n; i++) out[i] = 97 + ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) % 26;
  return out;
}
