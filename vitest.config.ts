import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Socket tests listen on port 0 (the kernel picks a free one), so files can run in parallel.
    pool: 'forks',
    reporters: ['default'],
  },
});
