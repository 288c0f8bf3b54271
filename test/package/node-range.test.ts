/**
 * The supported Node range is stated once and kept in step: package.json's engines, the README,
 * and the versions .ci/run runs the suite on (the machine's Node 20, then 22 and 24).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './tools.js';

describe('supported Node versions', () => {
  it('package.json engines, the README and .ci/run agree: >= 20, tested on 20, 22 and 24', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines?: { node?: string } };
    expect(pkg.engines?.node).toBe('>=20');
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8').replace(/\s+/g, ' ');
    expect(readme).toContain('Node.js ≥ 20 (`engines` in package.json; CI runs the whole test suite on Node 20, 22 and 24)');
    const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8');
    expect(ci).toMatch(/^for major in 22 24; do$/m);
    expect(ci).toContain('run_suite "the machine\'s Node"');
  });

  it('this run is on a supported Node', () => {
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(20);
  });
});
