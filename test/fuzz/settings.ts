/**
 * How long the property-based fuzz targets run (issue 10). Coverage-guided fuzzing (Jazzer.js,
 * libFuzzer) was tried first: @jazzer.js/core 4.0.0 installs from the npm registry with its native
 * addon inside the package, but that addon needs glibc 2.38 and Debian 12 has 2.36; 2.x downloads
 * its addon from GitHub at install time, which this machine and CI cannot reach. So the targets
 * are fast-check properties over seeded generators: random bytes, and mutations (flips, inserts,
 * deletions, truncations, splices) of the seed corpus in test/fuzz/corpus.
 *
 * - In `npm test` (CI): a fixed seed and FUZZ_RUNS runs per target (default 200), so the run is
 *   short, bounded and repeatable.
 * - `npm run fuzz`: FUZZ_SEED=random and a time budget per target (FUZZ_SECONDS); a failure prints
 *   the seed and the shrunk counterexample, which then becomes a regression test.
 */
import fc from 'fast-check';

const seedEnv = process.env['FUZZ_SEED'];
const seconds = Number(process.env['FUZZ_SECONDS'] ?? 0);
const seed = seedEnv === undefined ? 6455 : seedEnv === 'random' ? Date.now() ^ (Math.random() * 0x7fffffff) : Number(seedEnv);

export function fuzzParams<T>(runs = Number(process.env['FUZZ_RUNS'] ?? 200)): fc.Parameters<T> {
  if (seconds > 0) {
    return { seed, numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: seconds * 1000, markInterruptAsFailure: false, endOnFailure: true };
  }
  return { seed, numRuns: runs, endOnFailure: true };
}

/** The vitest time limit of one target: its fuzzing budget plus room to shrink a failure. */
export const TARGET_TIMEOUT = seconds > 0 ? seconds * 1000 + 120_000 : 60_000;

type Edit =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'truncate'; at: number };

/** Random edits: bit flips, byte sets, inserts, deletions, a truncation. */
export function edits(maxLength = 6): fc.Arbitrary<Edit[]> {
  const edit: fc.Arbitrary<Edit> = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 8 }) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  );
  return fc.array(edit, { maxLength });
}

export function applyEdits(input: Buffer, list: readonly Edit[]): Buffer {
  let bytes = Buffer.from(input);
  for (const e of list) {
    const at = bytes.length === 0 ? 0 : e.at % (bytes.length + 1);
    if (e.kind === 'flip' && at < bytes.length) bytes[at] ^= 1 << e.bit;
    else if (e.kind === 'set' && at < bytes.length) bytes[at] = e.byte;
    else if (e.kind === 'insert') bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(e.bytes), bytes.subarray(at)]);
    else if (e.kind === 'delete') bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + e.count)]);
    else if (e.kind === 'truncate') bytes = bytes.subarray(0, at);
  }
  return bytes;
}

/** A mutation of one of `seeds`: random edits, a splice of two seeds, or plain random bytes. */
export function mutated(seeds: readonly Buffer[]): fc.Arbitrary<Buffer> {
  const fromSeed = fc
    .tuple(fc.constantFrom(...seeds), fc.constantFrom(...seeds), fc.boolean(), edits())
    .map(([a, b, splice, list]) => applyEdits(splice ? Buffer.concat([a, b]) : a, list));
  return fc.oneof({ weight: 4, arbitrary: fromSeed }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }).map((u) => Buffer.from(u)) });
}

/** Cut points for splitting `length` bytes into chunks (sorted, within range). */
export function splits(): fc.Arbitrary<number[]> {
  return fc.array(fc.nat(), { maxLength: 12 });
}

export function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % (bytes.length + 1))))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of at) {
    out.push(bytes.subarray(prev, c));
    prev = c;
  }
  out.push(bytes.subarray(prev));
  return out;
}
