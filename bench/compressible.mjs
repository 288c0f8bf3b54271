// Message bodies for the compression benchmarks (deflate-stall, deflate-crossover): compressible
// JSON-like words from a seeded generator, different per seed; zlib level 1 takes them to ~1/5.
// One source with the tests' bodies: stress-tests/compressible.ts, taken from its build here.
let source;
try {
  source = await import('../dist/stress-tests/compressible.js');
} catch (err) {
  throw new Error('bench/compressible.mjs imports dist/stress-tests/compressible.js: run `npm run build` first', { cause: err });
}

export const compressible = source.compressibleText;
