// Kill matrix, branch create, part 1 of 2 (shared parts and what is asserted: kill.ts).
import { describe, expect, it } from 'vitest';
import { cleanUpAfterAll, made, matrix, stepsOf, killBefore, expectInterruptedAt, expectHealthy, parentState } from './kill.js';
import { listEntry, pgmam, sql, uniqueName } from './helpers.js';

cleanUpAfterAll();
/** Every other step: the matrix of this command is split over two files that run in parallel. */
const PART = 0;

describe('kill matrix: branch create, part 1 of 2', () => {
  it(`branch create: killed before every other step (part ${PART + 1} of 2), the parent unchanged; a re-run rolls back and creates the branch`, { timeout: 1_200_000 }, async () => {
    const parent = uniqueName();
    made.push(parent);
    expect((await pgmam(['initcluster', parent, '--yes'])).code).toBe(0);
    const pport = (await listEntry(parent)).port;
    await sql(pport, 'create table t (k text primary key)');
    await sql(pport, "insert into t values ('p1'), ('p2')");
    const branch = `${parent}_dev`;
    made.unshift(branch);
    const args = ['branch', 'create', parent, '--name', 'dev'];
    const steps = (await stepsOf(args)).filter((_, i) => i % 2 === PART);
    for (const step of steps) {
      const before = await parentState(parent, pport);
      await killBefore(args, branch, step);
      await expectInterruptedAt(branch, 'branch create', step);
      expect(await parentState(parent, pport)).toEqual(before);
      const again = await pgmam([...args, '--yes']);
      expect(again.code, `${step}: ${again.stderr}`).toBe(0);
      const e = await expectHealthy(branch);
      expect(e.parent).toBe(parent);
      expect(await sql(e.port, 'select string_agg(k, \',\' order by k) from t')).toBe('p1,p2');
      expect(await parentState(parent, pport)).toEqual(before);
      matrix.push(`branch create × ${step} → parent unchanged; re-run rolled back and created ${branch} with the parent's rows`);
      const drop = await pgmam(['branch', 'drop', branch, '--purge-backups', '--yes']);
      expect(drop.code, drop.stderr).toBe(0);
    }
  });

});
