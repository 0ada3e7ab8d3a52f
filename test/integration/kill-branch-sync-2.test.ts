// Kill matrix, branch sync, part 2 of 2 (shared parts and what is asserted: kill.ts).
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cleanUpAfterAll, made, matrix, stepsOf, killBefore, expectInterruptedAt, expectHealthy, preservedDirs, parentState } from './kill.js';
import { listEntry, pgmam, sql, uniqueName } from './helpers.js';

cleanUpAfterAll();
/** Every other step: the matrix of this command is split over two files that run in parallel. */
const PART = 1;

describe('kill matrix: branch sync, part 2 of 2', () => {
  it(`branch sync: killed before every other step (part ${PART + 1} of 2), the parent unchanged; a re-run puts the branch back and syncs it`, { timeout: 1_200_000 }, async () => {
    const parent = uniqueName();
    made.push(parent);
    expect((await pgmam(['initcluster', parent, '--yes'])).code).toBe(0);
    const pport = (await listEntry(parent)).port;
    await sql(pport, 'create table t (k text primary key)');
    const branch = `${parent}_dev`;
    made.unshift(branch);
    expect((await pgmam(['branch', 'create', parent, '--name', 'dev', '--yes'])).code).toBe(0);
    const args = ['branch', 'sync', branch];
    const steps = (await stepsOf(args)).filter((_, i) => i % 2 === PART);
    for (const [i, step] of steps.entries()) {
      await sql(pport, `insert into t values ('p${i}')`);
      const before = await parentState(parent, pport);
      const preservedBefore = preservedDirs(branch);
      await killBefore(args, branch, step);
      await expectInterruptedAt(branch, 'branch sync', step);
      expect(await parentState(parent, pport)).toEqual(before);
      for (const d of preservedBefore) expect(existsSync(`/var/lib/postgresql/15/${d}/PG_VERSION`)).toBe(true);
      const again = await pgmam([...args, '--yes']);
      expect(again.code, `${step}: ${again.stderr}`).toBe(0);
      const e = await expectHealthy(branch);
      expect(await sql(e.port, 'select count(*) from t')).toBe(String(i + 1));
      expect(await parentState(parent, pport)).toEqual(before);
      matrix.push(`branch sync × ${step} → parent unchanged; re-run put the branch's directory back and synced it`);
    }
  });

});
