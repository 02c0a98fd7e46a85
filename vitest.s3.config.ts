import { defineConfig } from 'vitest/config';

// The S3 tests: they need the Ceph cluster that test/s3/run.mjs starts (npm run test:s3). Their files end
// in .s3.ts so that the default config (test/**/*.test.ts, npm test) never picks them up.
export default defineConfig({
  test: {
    include: ['test/s3/**/*.s3.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // One radosgw on two cores: test files one after the other (fault tests stop and pause it).
    fileParallelism: false,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
