// Kill matrix, branch sync, part 1 of 2: every other step, so that the two halves run in
// parallel (the matrix itself and what it asserts: kill.ts).
import { describe, it } from 'vitest';
import { branchSyncMatrix, cleanUpAfterAll } from './kill.js';

cleanUpAfterAll();

describe('kill matrix: branch sync, part 1 of 2', () => {
  it('branch sync: killed before every other step (part 1 of 2), the parent unchanged; a re-run puts the branch back and syncs it', { timeout: 1_200_000 }, () => branchSyncMatrix(0));
});
