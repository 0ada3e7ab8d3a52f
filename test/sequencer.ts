// Longest integration files first, so the parallel run ends with short files filling the gaps
// (a fresh clone has no vitest cache to order by). Seconds measured on a 2-core machine with 4
// workers (all files at once, in the run that split the suite into tiers).
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const SECONDS: Record<string, number> = {
  // integration tier
  branch: 372,
  'bad-input': 279,
  operations: 186,
  pitr: 180,
  backup: 160,
  export: 129,
  drop: 89,
  initcluster: 69,
  'data-root': 110,
  'dry-run': 60,
  retention: 120,
  resetwal: 45,
  refusals: 35,
  links: 5,
  s3: 240,
  outage: 330,
  fleet: 175,
  'tls-repo': 90,
  tls: 80,
  replica: 200,
  deb: 240,
  standalone: 90,
  progress: 120,
  // kill tier
  'kill-branch-create-1': 625,
  'kill-branch-create-2': 626,
  'kill-initcluster': 489,
  'kill-branch-sync-1': 480,
  'kill-branch-sync-2': 479,
  'kill-pitr': 425,
  'kill-resetwal': 175,
  'kill-child': 120,
  'kill-others': 300,
  'kill-repo': 110,
  'kill-recover': 330,
  'kill-takeover': 200,
  'kill-serve': 40,
  'kill-replica-create': 504,
  'kill-replica-promote': 622,
  'kill-tls': 76,
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
