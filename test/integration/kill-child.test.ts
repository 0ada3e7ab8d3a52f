// Kill matrix, kills and signals while a child runs (shared parts and what is asserted: kill.ts).
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { addUser, cleanUpAfterAll, matrix, expectInterruptedAt, expectHealthy, appWithTarget, blockingPgbackrest, groupAlive, preservedDirs, sleep, userWrite } from './kill.js';
import { CONFIG, PGMAM, STATE, listEntry, pgmam, sql } from './helpers.js';

cleanUpAfterAll();

const journalGroups = (app: string) => (JSON.parse(readFileSync(`${STATE}/journal/${app}.json`, 'utf8')) as { groups: number[] }).groups;

/** The wrapped restore is blocked, and pgmam has recorded its process group (just after starting it). */
async function blockedAndRecorded(wrap: string, app: string) {
  for (let i = 0; i < 1200 && !existsSync(`${wrap}/blocked`); i++) await sleep(50);
  expect(existsSync(`${wrap}/blocked`)).toBe(true);
  const running = () => journalGroups(app).filter(groupAlive).length >= 1;
  for (let i = 0; i < 100 && !running(); i++) await sleep(50);
  // The wrapper's group is the newest one recorded: wait a moment for the lock and journal writes to land.
  await sleep(300);
  expect(running()).toBe(true);
}

describe('kill matrix: kills and signals while a child runs', () => {
  it('a kill while a child runs: the lock is held until the child group is gone, then a re-run converges', { timeout: 300_000 }, async () => {
    const { app, port, target } = await appWithTarget();

    const wrap = blockingPgbackrest();
    const child = execa(PGMAM, ['pitr', app, '--to', target, '--yes', '-q'], { reject: false, env: { PGMAM_CONFIG: CONFIG, PATH: `${wrap}:${process.env['PATH']}` }, stdin: 'ignore', cwd: '/tmp' });
    await blockedAndRecorded(wrap, app);
    child.kill('SIGKILL');
    await child;

    // pgmam is dead, its restore is not: a re-run is refused and changes nothing.
    const journal = JSON.parse(readFileSync(`${STATE}/journal/${app}.json`, 'utf8')) as { groups: number[]; steps: string[]; at: number };
    expect(journal.steps[journal.at]).toBe('restore-backup');
    expect(journal.groups.some(groupAlive)).toBe(true);
    const preserved = preservedDirs(app);
    const refused = await pgmam(['pitr', app, '--to', target, '--yes']);
    expect(refused.code, `${refused.stderr}\n${refused.stdout}`).toBe(4);
    expect(refused.stderr).toMatch(/child process groups/);
    expect(preservedDirs(app)).toEqual(preserved);
    expect((await listEntry(app)).interrupted).toBeNull();

    // The restore finishes on its own; then the run counts as interrupted and a re-run converges.
    writeFileSync(`${wrap}/go`, '');
    for (let i = 0; i < 1200 && journal.groups.some(groupAlive); i++) await sleep(100);
    expect(journal.groups.some(groupAlive)).toBe(false);
    await expectInterruptedAt(app, 'pitr', 'restore-backup');
    const again = await pgmam(['pitr', app, '--to', target, '--yes']);
    expect(again.code, again.stderr).toBe(0);
    await expectHealthy(app);
    expect(await sql(port, 'select string_agg(k, \',\') from t')).toBe('before');
    rmSync(wrap, { recursive: true, force: true });
    matrix.push('pitr × restore-backup (pgmam SIGKILLed while its pgbackrest restore ran) → re-run refused (exit 4) while the child group lived; after it ended: listed as interrupted, re-run rolled back and restored');
  });

  it('SIGTERM during a restore: passed on to the child, the step fails (exit 6), list says so, a re-run converges', { timeout: 300_000 }, async () => {
    const { app, port, target } = await appWithTarget();
    const wrap = blockingPgbackrest();
    const child = execa(PGMAM, ['pitr', app, '--to', target, '--yes', '-q'], { reject: false, env: { PGMAM_CONFIG: CONFIG, PATH: `${wrap}:${process.env['PATH']}` }, stdin: 'ignore', cwd: '/tmp' });
    await blockedAndRecorded(wrap, app);
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/failed at step \d+\/\d+ restore-backup/);
    // The blocked restore got the signal too: nothing of pgmam's is left running (the killed shell's
    // last `sleep 0.1` may outlive it by a moment, and list counts the run as running until it ends).
    const recorded = journalGroups(app);
    for (let i = 0; i < 50 && recorded.some(groupAlive); i++) await sleep(100);
    expect(recorded.some(groupAlive)).toBe(false);
    const e = await listEntry(app);
    expect(e.interrupted, `${r.stderr}\njournals: ${existsSync(`${STATE}/journal`) ? readdirSync(`${STATE}/journal`).join(', ') : '-'}`).toMatchObject({ command: 'pitr', step: 'restore-backup', status: 'failed' });
    // check counts it unhealthy (exit 7) and names the command that settles it.
    const health = await pgmam(['check', app, '--json']);
    expect(health.code, health.stderr).toBe(7);
    expect(JSON.parse(health.stdout)[0].problems.join('\n')).toMatch(/failed pitr at restore-backup \(run: pgmam pitr/);
    rmSync(wrap, { recursive: true, force: true });
    const again = await pgmam(['pitr', app, '--to', target, '--yes']);
    expect(again.code, again.stderr).toBe(0);
    await expectHealthy(app);
    expect(await sql(port, 'select string_agg(k, \',\') from t')).toBe('before');
    matrix.push('pitr × restore-backup (SIGTERM to pgmam) → signal passed to the restore, exit 6, listed as failed at restore-backup; re-run rolled back and restored');
  });

  it('a kill during a backup: the user keeps writing, the child finishes or not, a re-run backs up; no row lost', { timeout: 300_000 }, async () => {
    const { app, port } = await appWithTarget();
    await addUser(port);
    const wrap = blockingPgbackrest('backup');
    const child = execa(PGMAM, ['backup', app, '--type', 'full', '-q'], { reject: false, env: { PGMAM_CONFIG: CONFIG, PATH: `${wrap}:${process.env['PATH']}` }, stdin: 'ignore', cwd: '/tmp' });
    for (let i = 0; i < 1200 && !existsSync(`${wrap}/blocked`); i++) await sleep(50);
    expect(existsSync(`${wrap}/blocked`)).toBe(true);
    child.kill('SIGKILL');
    await child;
    // A backup never closes the cluster: the user's write is accepted and stays.
    expect(await userWrite(port, 'during-backup')).toBe(true);
    writeFileSync(`${wrap}/go`, '');
    await sleep(500);
    const again = await pgmam(['backup', app, '--type', 'full']);
    expect(again.code, again.stderr).toBe(0);
    expect(await sql(port, "select string_agg(k, ',' order by k) from t")).toBe('after,before,during-backup');
    await expectHealthy(app);
    rmSync(wrap, { recursive: true, force: true });
    matrix.push('backup × pgbackrest backup (pgmam SIGKILLed while it ran) → user write during it committed and kept; re-run took the full backup; 0 rows lost');
  });
});
