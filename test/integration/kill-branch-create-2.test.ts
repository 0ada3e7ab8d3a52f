// Kill matrix, branch create, part 2 of 2: every other step, so that the two halves run in
// parallel (the matrix itself and what it asserts: kill.ts).
import { describe, it } from 'vitest';
import { branchCreateMatrix, cleanUpAfterAll } from './kill.js';

cleanUpAfterAll();

describe('kill matrix: branch create, part 2 of 2', () => {
  it('branch create: killed before every other step (part 2 of 2), the parent unchanged; a re-run rolls back and creates the branch', { timeout: 1_200_000 }, () => branchCreateMatrix(1));
});
