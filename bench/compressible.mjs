// Message bodies for the compression benchmarks (deflate-stall, deflate-crossover): compressible
// JSON-like words from a seeded generator, different per seed; zlib level 1 takes them to ~1/5.
export function compressible(n, seed) {
  const words = ['{"id":', '"user":"ada"', '"text":"hello there"', ',', '}', '\n', 'websocket ', 'deflate ', String(seed)];
  const out = Buffer.allocUnsafe(n);
  let x = seed * 2654435761 + 1;
  let off = 0;
  while (off < n) {
    x = (x * 1103515245 + 12345) >>> 0;
    off += out.write(words[x % words.length], off);
  }
  return out;
}
