import { defineConfig } from 'vitest/config';
import { LongestFirst } from './test/sequencer.js';

// Integration files share nothing (each has its own state directory, repository, config and port
// range: test/integration/helpers.ts), so they run in parallel. Two tiers: `npm test` (unit and
// integration) and `npm run test:kill` (the kill matrix, kill-*.test.ts), which .ci/run runs after it.
const WORKERS = Number(process.env['PGMAM_TEST_WORKERS'] ?? 4);
const real = { globalSetup: ['test/integration/global-setup.ts'], maxWorkers: WORKERS, testTimeout: 180_000, hookTimeout: 180_000 };

export default defineConfig({
  test: {
    maxWorkers: WORKERS,
    sequence: { sequencer: LongestFirst },
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { test: { name: 'integration', include: ['test/integration/**/*.test.ts'], exclude: ['test/integration/kill-*.test.ts'], ...real } },
      { test: { name: 'kill', include: ['test/integration/kill-*.test.ts'], ...real } },
    ],
  },
});
