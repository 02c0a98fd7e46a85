import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: crash tests spawn child processes, so keep file-level parallelism modest.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
