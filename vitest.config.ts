import { defineConfig } from 'vitest/config';
import { LongestFirst } from './test/sequencer.js';

// Integration files share nothing (each has its own state directory, repository, config and port
// range: test/integration/helpers.ts), so they run in parallel. Most of their time is spent waiting on
// PostgreSQL and pgBackRest (starts, checkpoints, archive pushes), so more workers than cores pay off.
const WORKERS = Number(process.env['PGMAM_TEST_WORKERS'] ?? 4);

export default defineConfig({
  test: {
    maxWorkers: WORKERS,
    sequence: { sequencer: LongestFirst },
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          maxWorkers: WORKERS,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
