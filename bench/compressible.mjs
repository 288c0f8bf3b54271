// Message bodies for the compression benchmarks (deflate-stall, deflate-crossover): compressible
// JSON-like words from a seeded generator, different per seed; zlib level 1 takes them to ~1/5.
// One source with the tests' bodies: stress-tests/compressible.ts, taken from its build here.
import { importBuild } from './build-import.mjs';

const source = await importBuild('stress-tests/compressible.js', 'bench/compressible.mjs');

export const compressible = source.compressibleText;
