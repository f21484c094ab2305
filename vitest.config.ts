import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // The machine has 2 cores and e2e files each start their own clusters.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
