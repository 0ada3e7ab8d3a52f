// Kill matrix, per-app operations (shared parts: kill.ts): set-port and restart SIGKILLed before each
// of their steps. The app's user writes between the kill and the re-run wherever the app accepts it;
// the re-run (as list prints it) finishes: for set-port the cluster and its stanza file on the new
// port, archiving checked; for restart the cluster running. No committed row is lost.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { addUser, appWithTarget, cleanUpAfterAll, expectInterruptedAt, killBefore, matrix, stepsOf, userWrite } from './kill.js';
import { freePort, listEntry, pgmam, sh, sql, STANZA_DIR } from './helpers.js';

cleanUpAfterAll();

describe('kill matrix: set-port, restart', () => {
  it('set-port: killed before each step, the re-run finishes: the cluster and its stanza file on the new port; no row lost', { timeout: 600_000 }, async () => {
    const { app } = await appWithTarget();
    let port = (await listEntry(app)).port;
    await addUser(port);
    const steps = await stepsOf(['set-port', app, String(await freePort())]);
    expect(steps).toEqual(['set-port', 'point-stanza-file', 'stop-cluster', 'start-cluster', 'verify-accepting', 'check-archiving']);
    for (const [i, step] of steps.entries()) {
      const to = await freePort();
      await killBefore(['set-port', app, String(to)], app, step);
      await expectInterruptedAt(app, 'set-port', step);
      // The user writes where the cluster answers (the old port, or the new one once restarted); refused while it is down.
      const key = `during-set-port-${i}`;
      const wrote = (await userWrite(port, key)) || (await userWrite(to, key));
      const again = await pgmam(['set-port', app, String(to), '--yes']);
      expect(again.code, `${step}: ${again.stderr}`).toBe(0);
      const e = await listEntry(app);
      expect(e).toMatchObject({ port: to, status: 'online', interrupted: null });
      expect(readFileSync(`${STANZA_DIR}/${app}.conf`, 'utf8')).toContain(`pg1-port=${to}\n`);
      expect((await sh('pgbackrest', [`--stanza=${app}`, 'check'], { user: 'postgres' })).code).toBe(0);
      port = to;
      if (wrote) expect(await sql(port, `select count(*) from t where k = '${key}'`)).toBe('1');
      expect(await sql(port, "select count(*) from t where k = 'before'")).toBe('1');
      matrix.push(`set-port × ${step} → user write meanwhile ${wrote ? 'committed' : 'refused (the cluster was down)'}; re-run finished: on port ${to}, stanza file too, archiving checked; 0 rows lost`);
    }
  });

  it('restart: killed before each step, the re-run finishes: running, accepting; no row lost', { timeout: 300_000 }, async () => {
    const { app } = await appWithTarget();
    const port = (await listEntry(app)).port;
    await addUser(port);
    const steps = await stepsOf(['restart', app]);
    expect(steps).toEqual(['stop-cluster', 'start-cluster', 'verify-accepting']);
    for (const [i, step] of steps.entries()) {
      await killBefore(['restart', app], app, step);
      await expectInterruptedAt(app, 'restart', step);
      const key = `during-restart-${i}`;
      const wrote = await userWrite(port, key);
      const again = await pgmam(['restart', app, '--yes']);
      expect(again.code, `${step}: ${again.stderr}`).toBe(0);
      expect((await listEntry(app)).status).toBe('online');
      if (wrote) expect(await sql(port, `select count(*) from t where k = '${key}'`)).toBe('1');
      matrix.push(`restart × ${step} → user write meanwhile ${wrote ? 'committed' : 'refused (down)'}; re-run finished the restart; 0 rows lost`);
    }
  });
});
