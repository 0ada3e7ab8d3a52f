// Kill matrix, initcluster (shared parts and what is asserted: kill.ts).
import { describe, expect, it } from 'vitest';
import { cleanUpAfterAll, made, matrix, stepsOf, killBefore, expectInterruptedAt, expectHealthy } from './kill.js';
import { pgmam, sql, uniqueName } from './helpers.js';

cleanUpAfterAll();

describe('kill matrix: initcluster', () => {
  it('initcluster: killed before each step, a re-run rolls back and creates the cluster', { timeout: 900_000 }, async () => {
    const app = uniqueName();
    made.push(app);
    const steps = await stepsOf(['initcluster', app]);
    expect(steps.length).toBeGreaterThan(5);
    for (const step of steps) {
      await killBefore(['initcluster', app], app, step);
      await expectInterruptedAt(app, 'initcluster', step);
      const again = await pgmam(['initcluster', app, '--yes']);
      expect(again.code, `${step}: ${again.stderr}`).toBe(0);
      const e = await expectHealthy(app);
      expect(await sql(e.port, 'select 1')).toBe('1');
      matrix.push(`initcluster × ${step} → listed as interrupted; re-run rolled back and created ${app} (online, full backup, check ok)`);
      const drop = await pgmam(['drop', app, '--purge-backups', '--yes']);
      expect(drop.code, drop.stderr).toBe(0);
    }
  });

});
