// Kill tests for what the step-by-step matrices leave out: pitr --undo settles a killed pitr; a killed
// --undo converges; a killed drop is finished by its re-run, stanza last; so is a killed purge; a killed adopt and a killed
// export converge while users keep writing to the (open) cluster.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { addUser, appWithTarget, cleanUpAfterAll, expectHealthy, expectInterruptedAt, killBefore, made, matrix, userWrite } from './kill.js';
import { REPO, STATE, TEST_ROOT, freePort, listEntry, pgmam, sh, sql, traces, uniqueName } from './helpers.js';

cleanUpAfterAll();
const rows = (port: number) => sql(port, "select string_agg(k, ',' order by k) from t");

describe('kill: pitr --undo and drop', () => {
  it('a pitr killed mid-way: pgmam pitr --undo settles it (rolled back) and the cluster is as before', { timeout: 300_000 }, async () => {
    const { app, port, target } = await appWithTarget();
    await killBefore(['pitr', app, '--to', target], app, 'restore-backup');
    await expectInterruptedAt(app, 'pitr', 'restore-backup');
    const undo = await pgmam(['pitr', app, '--undo', '--yes']);
    expect(undo.code, undo.stderr).toBe(0);
    expect((await listEntry(app)).interrupted).toBeNull();
    expect(await rows(port)).toBe('after,before');
    matrix.push('pitr × restore-backup, then pitr --undo → the interrupted pitr rolled back; rows as before the pitr (after,before)');
  });

  it('an --undo killed after moving the current data directory aside: a re-run converges, both directories kept', { timeout: 300_000 }, async () => {
    const { app, port, target } = await appWithTarget();
    const r = await pgmam(['pitr', app, '--to', target, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(await rows(port)).toBe('before');
    await sql(port, "insert into t values ('after-pitr')");
    await killBefore(['pitr', app, '--undo'], app, 'put-back-datadir');
    await expectInterruptedAt(app, 'pitr --undo', 'put-back-datadir');
    const again = await pgmam(['pitr', app, '--undo', '--yes']);
    expect(again.code, again.stderr).toBe(0);
    await expectHealthy(app);
    expect(await rows(port)).toBe('after,before');
    // The restored state with after-pitr is preserved, not lost.
    const preserved = (await listEntry(app)).preserved.map((p) => p.path);
    expect(preserved.some((p) => p.includes('.pre-undo-'))).toBe(true);
    for (const p of preserved) expect(existsSync(`${p}/PG_VERSION`)).toBe(true);
    matrix.push('pitr --undo × put-back-datadir → re-run rolled the --undo back (nothing removed) and undid again; the pitr state kept as .pre-undo');
  });

  it('a drop --purge-backups killed after pg_dropcluster: listed as interrupted, other commands refused, a re-run finishes (stanza last)', { timeout: 300_000 }, async () => {
    const { app } = await appWithTarget();
    await killBefore(['drop', app, '--purge-backups'], app, 'delete-stanza');
    await expectInterruptedAt(app, 'drop', 'delete-stanza');
    expect(existsSync(`${REPO}/backup/${app}`)).toBe(true);
    expect((await pgmam(['prune', app, '--yes'])).code).toBe(4);
    const again = await pgmam(['drop', app, '--purge-backups', '--yes']);
    expect(again.code, again.stderr).toBe(0);
    expect(await traces(app)).toEqual([]);
    expect(existsSync(`${STATE}/journal/${app}.json`)).toBe(false);
    matrix.push('drop --purge-backups × delete-stanza → listed as interrupted drop; prune refused (exit 4); re-run finished: stanza deleted, nothing left');
  });

  it.each(['delete-stanza', 'remove-stanza-file', 'forget-app'])('a purge of a dropped app killed before %s: listed as interrupted, the name still taken; a re-run finishes it; nothing left', { timeout: 300_000 }, async (step) => {
    const { app } = await appWithTarget();
    expect((await pgmam(['drop', app, '--yes'])).code).toBe(0);
    await killBefore(['purge', app], app, step);
    await expectInterruptedAt(app, 'purge', step);
    expect((await pgmam(['initcluster', app, '--yes'])).code).toBe(4);
    const again = await pgmam(['purge', app, '--yes']);
    expect(again.code, again.stderr).toBe(0);
    expect(await traces(app)).toEqual([]);
    expect((await pgmam(['initcluster', app, '--dry-run'])).code).toBe(0);
    matrix.push(`purge × ${step} → listed as interrupted purge; initcluster of the name refused (exit 4); re-run finished: stanza, stanza file and record gone, the name free`);
  });

  it('an adopt killed before its restart: the user keeps writing; a re-run finishes it; no row lost', { timeout: 300_000 }, async () => {
    const name = uniqueName();
    made.push(name);
    const port = await freePort();
    expect((await sh('pg_createcluster', ['15', name, '--port', String(port), '--start'])).code).toBe(0);
    await sql(port, "create table t as select 'before' k");
    await addUser(port);
    await killBefore(['adopt', `15/${name}`], name, 'restart-cluster');
    await expectInterruptedAt(name, 'adopt', 'restart-cluster');
    expect(await userWrite(port, 'during-adopt')).toBe(true);
    const again = await pgmam(['adopt', `15/${name}`, '--yes']);
    expect(again.code, again.stderr).toBe(0);
    await expectHealthy(name);
    expect(await rows(port)).toBe('before,during-adopt');
    matrix.push('adopt × restart-cluster → user write meanwhile committed; re-run finished the adopt (restart, stanza, full backup); 0 rows lost');
  });

  it('an export killed before its manifest: the user keeps writing; a re-run removes the unfinished export and makes a whole one', { timeout: 300_000 }, async () => {
    const { app, port } = await appWithTarget();
    await addUser(port);
    const to = `${TEST_ROOT}/exports-${app}`;
    await killBefore(['export', app, '--to', to], app, 'write-manifest');
    await expectInterruptedAt(app, 'export', 'write-manifest');
    expect(await userWrite(port, 'during-export')).toBe(true);
    const again = await pgmam(['export', app, '--to', to, '--yes']);
    expect(again.code, again.stderr).toBe(0);
    const dirs = (await sh('ls', [`${to}/${app}`])).stdout.split('\n').filter(Boolean);
    expect(dirs).toHaveLength(1);
    expect((await pgmam(['export', '--verify', `${to}/${app}/${dirs[0]}`])).code).toBe(0);
    expect(await rows(port)).toBe('after,before,during-export');
    await sh('rm', ['-rf', to]);
    matrix.push('export × write-manifest → user write meanwhile committed; re-run removed the unfinished export and made a whole, verified one; 0 rows lost');
  });
});
