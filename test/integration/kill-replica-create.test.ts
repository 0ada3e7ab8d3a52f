// Kill matrix, replica create (shared parts: kill.ts): SIGKILLed before each of its steps while the
// app's user keeps writing to the primary. After each kill: the primary's rows all there, the replica
// not open to users, `list` names the step; the re-run list prints rolls the half-made replica and its
// link back (or finishes the hand-over) and makes it again: it streams every row, with one slot and one
// role on the primary.
import { describe, expect, it } from 'vitest';
import { addUser, cleanUpAfterAll, expectInterruptedAt, killBefore, made, matrix, stepsOf, userConnects, userWrite } from './kill.js';
import { listEntry, pgmam, pgmamOk, sql, uniqueName } from './helpers.js';

cleanUpAfterAll();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('kill matrix: replica create', () => {
  it('killed before each step, the primary written to meanwhile: the re-run converges, no row lost', { timeout: 900_000 }, async () => {
    const app = uniqueName();
    const replica = `${app}_replica`;
    made.push(app);
    made.unshift(replica);
    await pgmamOk(['initcluster', app, '--yes']);
    const port = (await listEntry(app)).port;
    await sql(port, 'create table t (k text primary key)');
    await addUser(port);
    const args = ['replica', 'create', app];
    const steps = await stepsOf(args);
    expect(steps[0]).toBe('limit-slot-wal');
    expect(steps.at(-1)).toBe('hand-over');
    for (const step of steps) {
      await killBefore(args, replica, step);
      const e = await expectInterruptedAt(replica, 'replica create', step);
      expect(await userWrite(port, `during-${step}`), step).toBe(true);
      if (step !== 'hand-over' && e?.port) expect(await userConnects(e.port), step).toBe(false);
      const again = await pgmam((e?.interrupted?.rerun ?? '').split(' ').slice(1));
      expect(again.code, `${step}: ${again.stderr}`).toBe(0);
      const r = await listEntry(replica);
      expect(r).toMatchObject({ role: 'replica', parent: app, status: 'online', interrupted: null });
      let seen = '';
      for (let i = 0; i < 50 && seen !== '1'; i++, await sleep(200)) seen = await sql(r.port, `select count(*) from t where k = 'during-${step}'`);
      expect(seen, step).toBe('1');
      expect(await sql(port, "select string_agg(slot_name, ',') from pg_replication_slots")).toBe(`pgmam_${replica}`);
      expect(await sql(port, "select string_agg(rolname, ',') from pg_roles where rolname like 'pgmam_repl_%'")).toBe(`pgmam_repl_${replica}`);
      expect(await sql(port, 'select count(*) from t')).toBe(String(steps.indexOf(step) + 1));
      matrix.push(`replica create × ${step} → primary written to meanwhile; re-run ${again.stdout.includes('is complete') ? 'finished the hand-over' : 'rolled back and made the replica again'}; it streams the row; 1 slot, 1 role; 0 rows lost`);
      const drop = await pgmam(['replica', 'drop', replica, '--yes']);
      expect(drop.code, drop.stderr).toBe(0);
    }
  });
});
