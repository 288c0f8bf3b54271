import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // expect.poll waits for a state another process reaches (a Redis subscription, a closed socket);
    // its 1 s default was missed on a loaded machine. A bound on a wait, not a measurement.
    expect: { poll: { timeout: 10_000 } },
    // Socket tests listen on port 0 (the kernel picks a free one), so files can run in parallel.
    pool: 'forks',
    reporters: ['default'],
  },
});
