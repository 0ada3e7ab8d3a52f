// Longest integration files first, so the parallel run ends with short files filling the gaps
// (a fresh clone has no vitest cache to order by). Seconds measured on a 2-core machine, 4 workers.
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const SECONDS: Record<string, number> = {
  'kill-branch-create-1': 300,
  'kill-branch-create-2': 300,
  'kill-branch-sync-1': 200,
  'kill-branch-sync-2': 200,
  'kill-initcluster': 200,
  'kill-pitr': 190,
};

const weight = (s: TestSpecification) => {
  const file = s.moduleId.split('/').at(-1)!.replace(/\.test\.ts$/, '');
  return s.project.name === 'unit' ? 1e6 : (SECONDS[file] ?? 60);
};

export class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => weight(b) - weight(a));
  }
}
