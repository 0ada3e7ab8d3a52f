// Kill matrix, resetwal (shared parts and what is asserted: kill.ts).
import { readdirSync, unlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cleanUpAfterAll, made, matrix, stepsOf, killBefore, expectInterruptedAt, expectHealthy, preservedDirs } from './kill.js';
import { listEntry, pgmam, pgmamOk, sh, sql, uniqueName } from './helpers.js';

cleanUpAfterAll();

describe('kill matrix: resetwal', () => {
  it('resetwal: killed before each step, the rows kept; a re-run finishes (or redoes the copy) and the cluster runs', { timeout: 900_000 }, async () => {
    const app = uniqueName();
    made.push(app);
    await pgmamOk(['initcluster', app, '--yes']);
    const port = (await listEntry(app)).port;
    const dataDir = `/var/lib/postgresql/15/${app}`;
    await sql(port, 'create table t as select g from generate_series(1, 100) g');
    const breakIt = async () => {
      await sql(port, 'checkpoint');
      await sh('pg_ctlcluster', ['15', app, 'stop', '-m', 'immediate']);
      for (const f of readdirSync(`${dataDir}/pg_wal`)) if (/^[0-9A-F]{24}$/.test(f)) unlinkSync(`${dataDir}/pg_wal/${f}`);
      expect((await sh('pg_ctlcluster', ['15', app, 'start'])).code).not.toBe(0);
    };
    await breakIt();
    const steps = await stepsOf(['resetwal', app]);
    for (const [i, step] of steps.entries()) {
      if (i > 0) await breakIt();
      await killBefore(['resetwal', app], app, step);
      await expectInterruptedAt(app, 'resetwal', step);
      const again = await pgmam(['resetwal', app, '--yes']);
      expect(again.code, `${step}: ${again.stderr}`).toBe(0);
      await expectHealthy(app);
      expect(await sql(port, 'select count(*) from t')).toBe('100');
      expect(preservedDirs(app).length).toBe(i + 1);
      matrix.push(`resetwal × ${step} → rows kept; ${again.stdout.includes('interrupted resetwal is finished') ? 're-run finished it' : 're-run removed the unfinished copy and ran it'}`);
    }
  });

});
