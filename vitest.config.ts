import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'tests/**/*.test.ts'],
    globalSetup: ['./tests/support/global-setup.ts'],
    // Generous: these are integration tests of real servers on a shared 2-core machine; a hang still ends.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests share one test PostgreSQL (a database each); keep parallelism modest on 2 cores.
    maxWorkers: 2,
    // As `kumo` sets it for itself (packages/cli/src/bin.ts): no AWS SDK Node 22 notice in test output.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
