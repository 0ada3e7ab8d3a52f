// Kill matrix, pitr (shared parts and what is asserted: kill.ts).
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { addUser, cleanUpAfterAll, made, matrix, stepsOf, killBefore, expectInterruptedAt, expectHealthy, preservedDirs, userWrite, whereIs } from './kill.js';
import { listEntry, targetBetween, pgmam, sql, uniqueName } from './helpers.js';

cleanUpAfterAll();

describe('kill matrix: pitr', () => {
  it('pitr: killed before each step, no row lost; a re-run rolls back (or finishes a promoted restore) and restores', { timeout: 1_200_000 }, async () => {
    const app = uniqueName();
    made.push(app);
    const r0 = await pgmam(['initcluster', app, '--yes']);
    expect(r0.code, r0.stderr).toBe(0);
    const port = (await listEntry(app)).port;
    await sql(port, 'create table t (k text primary key, at timestamptz default now())');
    await addUser(port);
    const args = (t: string) => ['pitr', app, '--to', t];
    let steps: string[] | undefined;
    let k = 0;
    for (let i = 0; ; i++) {
      k++;
      const target = await targetBetween(port, `insert into t (k) values ('before-${k}')`, `insert into t (k) values ('after-${k}')`);
      const rowsBefore = (await sql(port, 'select k from t order by k')).split('\n');
      steps ??= await stepsOf(args(target));
      if (i >= steps.length) break;
      const step = steps[i]!;
      const preservedBefore = preservedDirs(app);
      await killBefore(args(target), app, step);
      await expectInterruptedAt(app, 'pitr', step);
      // No data directory lost: the preserved ones are all there, and the data is in one of them or in place.
      for (const d of preservedBefore) expect(existsSync(`/var/lib/postgresql/15/${d}/PG_VERSION`)).toBe(true);
      // A user writes between the kill and the re-run, wherever the cluster accepts it: open before the
      // pitr closed it, closed from then until hand-over.
      const wrote = await userWrite(port, `user-${k}`);
      const again = await pgmam([...args(target), '--yes']);
      expect(again.code, `${step}: ${again.stderr}`).toBe(0);
      await expectHealthy(app);
      const rows = (await sql(port, 'select k from t order by k')).split('\n');
      // Restored to the target: every row of before it, none after (the user's row of this round is
      // in the cluster only when the kill came after hand-over and the re-run finished).
      expect(rows.filter((r) => r !== `user-${k}`)).toEqual(rowsBefore.filter((r) => r !== `after-${k}`));
      // The user's row, committed after the target, is in the preserved state of before the restore.
      const where = wrote ? await whereIs(app, port, `user-${k}`) : 'refused';
      expect(where, `${step}: user-${k}`).toBeDefined();
      // The state of before the restore (with after-k) is kept in a preserved directory.
      expect(preservedDirs(app).length).toBeGreaterThan(preservedBefore.length);
      matrix.push(`pitr × ${step} → ${again.stdout.includes('interrupted pitr is finished') ? 're-run finished it' : 're-run rolled back and restored'}; user write between kill and re-run: ${wrote ? `committed, now in ${where === 'cluster' ? 'the cluster' : `preserved ${where!.split('/').pop()}`}` : 'refused (closed or down)'}; 0 rows lost`);
      // For the next round, the rows after-k are gone; start from the current state.
      if (again.stdout.includes('interrupted pitr is finished')) expect(rows).not.toContain(`after-${k}`);
      expect(where === 'cluster').toBe(again.stdout.includes('interrupted pitr is finished') && wrote);
    }
  });

});
