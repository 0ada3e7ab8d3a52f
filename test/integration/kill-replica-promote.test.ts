// Kill matrix, replica promote (shared parts: kill.ts): a fresh primary and replica per step, promote
// --fence SIGKILLed before each step. The app's user writes to whichever cluster takes writes between
// the kill and the re-run (the old primary before it is stopped, the promoted replica after); the re-run
// list prints finishes the failover: every committed row is on the new primary, which archives into the
// app's stanza and has a full backup on its new timeline; the old primary stays stopped and disabled.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { addUser, cleanUpAfterAll, expectInterruptedAt, killBefore, made, matrix, stepsOf, userWrite } from './kill.js';
import { listEntry, pgbackrestInfo, pgmam, pgmamOk, sh, sql, uniqueName } from './helpers.js';

cleanUpAfterAll();

describe('kill matrix: replica promote', () => {
  it('killed before each step, written to meanwhile: the re-run finishes the failover, no row lost', { timeout: 1_200_000 }, async () => {
    let steps: string[] | undefined;
    for (let i = 0; steps === undefined || i < steps.length; i++) {
      const app = uniqueName();
      const replica = `${app}_replica`;
      made.push(app);
      made.unshift(replica);
      await pgmamOk(['initcluster', app, '--yes']);
      const port = (await listEntry(app)).port;
      await sql(port, "create table t (k text primary key); insert into t values ('before')");
      await addUser(port);
      await pgmamOk(['replica', 'create', app, '--yes']);
      const rport = (await listEntry(replica)).port;
      const args = ['replica', 'promote', replica, '--fence'];
      steps ??= await stepsOf(args);
      const step = steps[i]!;
      await killBefore(args, replica, step);
      const e = await expectInterruptedAt(replica, 'replica promote', step);
      // Whichever takes writes: the old primary until it is stopped, the replica once promoted.
      const wrote = (await userWrite(port, `during-${step}`)) || (await userWrite(rport, `during-${step}`));
      const again = await pgmam((e?.interrupted?.rerun ?? '').split(' ').slice(1));
      expect(again.code, `${step}: ${again.stderr}`).toBe(0);
      expect(await listEntry(replica)).toMatchObject({ role: 'app', status: 'online', interrupted: null });
      expect(await sql(rport, 'select pg_is_in_recovery()')).toBe('f');
      expect(await sql(rport, `select count(*) from t where k in ('before', 'during-${step}')`), step).toBe(wrote ? '2' : '1');
      expect((await sh('pgbackrest', [`--stanza=${app}`, 'check'], { user: 'postgres' })).code).toBe(0);
      const last = (await pgbackrestInfo(app))[0]!.backup.at(-1)!;
      expect(last.type).toBe('full');
      expect(await listEntry(app)).toMatchObject({ status: 'down' });
      expect(readFileSync(`/etc/postgresql/15/${app}/start.conf`, 'utf8').trim()).toBe('disabled');
      matrix.push(`replica promote × ${step} → ${wrote ? 'a row committed meanwhile' : 'no cluster took writes meanwhile'}; re-run ${again.stdout.includes('is complete') ? 'finished the promotion' : 'ran it again'}: writable, archiving, full backup; old primary stopped and disabled; 0 rows lost`);
      const drop = await pgmam(['drop', replica, '--purge-backups', '--yes']);
      expect(drop.code, drop.stderr).toBe(0);
      const dropOld = await pgmam(['drop', app, '--yes']);
      expect(dropOld.code, dropOld.stderr).toBe(0);
    }
  });
});
