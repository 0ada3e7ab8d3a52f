// Kill matrix, initcluster (shared parts and what is asserted: kill.ts). A user of the app (its owner,
// over TCP with its password) tries to write between each kill and the re-run: the cluster is closed
// to users until hand-over, so nothing a user wrote can be removed by the re-run's rollback.
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cleanUpAfterAll, made, matrix, stepsOf, killBefore, expectInterruptedAt, expectHealthy, USER, userConnects, userWrite } from './kill.js';
import { TEST_ROOT, pgmam, sql, uniqueName } from './helpers.js';

cleanUpAfterAll();

describe('kill matrix: initcluster', () => {
  it('initcluster: killed before each step, no user can write before hand-over; a re-run rolls back (or finishes) and the user\'s rows stay', { timeout: 900_000 }, async () => {
    const app = uniqueName();
    made.push(app);
    const pw = `${TEST_ROOT}/${app}.pw`;
    writeFileSync(pw, `${USER.password}\n`, { mode: 0o600 });
    const args = ['initcluster', app, '--db', 'appdb', '--owner', USER.role, '--password-file', pw];
    const steps = await stepsOf(args);
    expect(steps.at(-1)).toBe('hand-over');
    for (const step of steps) {
      await killBefore(args, app, step);
      const e0 = await expectInterruptedAt(app, 'initcluster', step);
      // The user cannot even connect (closed to users, or not running yet): nothing of theirs to lose.
      expect(e0?.port ? await userConnects(e0.port, 'appdb') : false, step).toBe(false);
      const again = await pgmam([...args, '--yes']);
      expect(again.code, `${step}: ${again.stderr}`).toBe(0);
      const e = await expectHealthy(app);
      // Handed over: the user writes now, and the rows are there.
      await sql(e.port, 'create table u (k text)', 'appdb');
      await sql(e.port, `grant insert, select on u to ${USER.role}`, 'appdb');
      expect(await userWrite(e.port, 'k2', 'appdb', 'u')).toBe(true);
      expect(await sql(e.port, 'select string_agg(k, \',\') from u', 'appdb')).toBe('k2');
      matrix.push(`initcluster × ${step} → the user could not connect before the re-run (closed to users); re-run ${again.stdout.includes('is complete') ? 'finished the hand-over' : 'rolled back and created'} ${app}; the user's rows after it: kept`);
      const drop = await pgmam(['drop', app, '--purge-backups', '--yes']);
      expect(drop.code, drop.stderr).toBe(0);
    }
  });
});
