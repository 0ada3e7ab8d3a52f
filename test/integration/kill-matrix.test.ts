// The kill matrix: each of initcluster, pitr, branch create, branch sync and resetwal is SIGKILLed
// just before each of its steps in turn (the PGMAM_TEST_PAUSE_BEFORE seam stops the run there after
// the journal is written; nothing is timed by guessing). After each kill: no committed row lost, the
// parent unchanged, no data directory lost, `pgmam list` names the interrupted step; re-running the
// same command brings the cluster to a correct, running, backed-up state.
import { execa } from 'execa';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { CONFIG, PGMAM, REPO, STATE, listEntry, targetBetween, pgbackrestInfo, pgmam, removeTestCluster, sh, sql, uniqueName, type ListEntry } from './helpers.js';

const made: string[] = [];
const matrix: string[] = [];
afterAll(async () => {
  for (const n of made.reverse()) await removeTestCluster(n);
  // The matrix, for the note.
  console.log(`kill matrix (command × step → outcome):\n${matrix.join('\n')}`);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The step ids of a plan, from its --dry-run. */
async function stepsOf(args: string[]): Promise<string[]> {
  const r = await pgmam([...args, '--dry-run']);
  expect(r.code, r.stderr).toBe(0);
  return [...r.stdout.matchAll(/^(\d+)\. ([a-z0-9-]+):/gm)].map((m) => m[2]!);
}

/** Runs pgmam until it stops before `step`, then SIGKILLs it. */
async function killBefore(args: string[], name: string, step: string): Promise<void> {
  const marker = `${STATE}/journal/${name}.paused`;
  const child = execa(PGMAM, [...args, '--yes', '-q'], { reject: false, env: { PGMAM_CONFIG: CONFIG, PGMAM_TEST_PAUSE_BEFORE: step }, stdin: 'ignore', cwd: '/tmp' });
  let exited = false;
  void child.then(() => (exited = true));
  const deadline = Date.now() + 120_000;
  while (!(existsSync(marker) && readFileSync(marker, 'utf8').startsWith(`${child.pid} ${step}`))) {
    if (exited) throw new Error(`pgmam ${args.join(' ')} ended before step ${step}: ${(await child).stderr}`);
    if (Date.now() > deadline) throw new Error(`pgmam did not reach ${step}`);
    await sleep(20);
  }
  child.kill('SIGKILL');
  await child;
}

async function expectInterruptedAt(name: string, command: string, step: string): Promise<ListEntry | undefined> {
  const r = await pgmam(['list', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const e = (JSON.parse(r.stdout) as ListEntry[]).find((x) => x.name === name);
  expect(e?.interrupted, `list after a kill before ${command} ${step}`).toMatchObject({ command, step });
  return e;
}

async function expectHealthy(name: string): Promise<ListEntry> {
  const e = await listEntry(name);
  expect(e.status).toBe('online');
  expect(e.interrupted).toBeNull();
  expect(e.lastBackup?.type).toBe('full');
  expect((await sh('pgbackrest', [`--stanza=${name}`, 'check'], { user: 'postgres' })).code).toBe(0);
  return e;
}

/** A managed app with table t: 'before' committed before the returned target, 'after' after it. */
async function appWithTarget(): Promise<{ app: string; port: number; target: string }> {
  const app = uniqueName();
  made.push(app);
  expect((await pgmam(['initcluster', app, '--yes'])).code).toBe(0);
  const port = (await listEntry(app)).port;
  const target = await targetBetween(port, "create table t as select 'before' k", "insert into t values ('after')");
  return { app, port, target };
}

/** A pgbackrest on PATH that holds `restore` until ${dir}/go exists, then runs the real one. */
function blockingRestore(): string {
  const wrap = mkdtempSync('/tmp/pgmam-wrap-');
  chmodSync(wrap, 0o777);
  writeFileSync(`${wrap}/pgbackrest`, `#!/bin/sh\ncase " $* " in *" restore "*) touch ${wrap}/blocked; while [ ! -e ${wrap}/go ]; do sleep 0.1; done;; esac\nexec /usr/bin/pgbackrest "$@"\n`, { mode: 0o755 });
  return wrap;
}

const groupAlive = (g: number) => {
  try {
    process.kill(-g, 0);
    return true;
  } catch {
    return false;
  }
};

const preservedDirs = (name: string) => readdirSync('/var/lib/postgresql/15').filter((d) => d.startsWith(`${name}.pre-`));

describe('kill matrix', () => {
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

  it('pitr: killed before each step, no row lost; a re-run rolls back (or finishes a promoted restore) and restores', { timeout: 1_200_000 }, async () => {
    const app = uniqueName();
    made.push(app);
    const r0 = await pgmam(['initcluster', app, '--yes']);
    expect(r0.code, r0.stderr).toBe(0);
    const port = (await listEntry(app)).port;
    await sql(port, 'create table t (k text primary key, at timestamptz default now())');
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
      const again = await pgmam([...args(target), '--yes']);
      expect(again.code, `${step}: ${again.stderr}`).toBe(0);
      await expectHealthy(app);
      const rows = (await sql(port, 'select k from t order by k')).split('\n');
      // Restored to the target: every row of before it, none after.
      expect(rows).toEqual(rowsBefore.filter((r) => r !== `after-${k}`));
      // The state of before the restore (with after-k) is kept in a preserved directory.
      expect(preservedDirs(app).length).toBeGreaterThan(preservedBefore.length);
      matrix.push(`pitr × ${step} → ${again.stdout.includes('interrupted pitr is finished') ? 're-run finished the promoted restore' : 're-run rolled back and restored'}; rows before the target kept, the replaced state preserved`);
      // For the next round, the rows after-k are gone; start from the current state.
      if (again.stdout.includes('interrupted pitr is finished')) expect(rows).not.toContain(`after-${k}`);
    }
  });

  /** What the branch commands must never change on the parent. */
  async function parentState(parent: string, port: number) {
    return {
      status: (await listEntry(parent)).status,
      rows: await sql(port, 'select count(*), md5(string_agg(k, \',\' order by k)) from t'),
      timeline: await sql(port, 'select timeline_id from pg_control_checkpoint()'),
      backups: (await pgbackrestInfo(parent))[0]!.backup.map((b) => b.label),
      history: readdirSync(`${REPO}/archive/${parent}/15-1`).filter((f) => f.endsWith('.history')),
    };
  }

  it('branch create: killed before each step, the parent unchanged; a re-run rolls back and creates the branch', { timeout: 1_200_000 }, async () => {
    const parent = uniqueName();
    made.push(parent);
    expect((await pgmam(['initcluster', parent, '--yes'])).code).toBe(0);
    const pport = (await listEntry(parent)).port;
    await sql(pport, 'create table t (k text primary key)');
    await sql(pport, "insert into t values ('p1'), ('p2')");
    const branch = `${parent}_dev`;
    made.unshift(branch);
    const args = ['branch', 'create', parent, '--name', 'dev'];
    const steps = await stepsOf(args);
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

  it('branch sync: killed before each step, the parent unchanged; a re-run puts the branch back and syncs it', { timeout: 1_200_000 }, async () => {
    const parent = uniqueName();
    made.push(parent);
    expect((await pgmam(['initcluster', parent, '--yes'])).code).toBe(0);
    const pport = (await listEntry(parent)).port;
    await sql(pport, 'create table t (k text primary key)');
    const branch = `${parent}_dev`;
    made.unshift(branch);
    expect((await pgmam(['branch', 'create', parent, '--name', 'dev', '--yes'])).code).toBe(0);
    const args = ['branch', 'sync', branch];
    const steps = await stepsOf(args);
    for (const [i, step] of steps.entries()) {
      await sql(pport, `insert into t values ('p${i}')`);
      const before = await parentState(parent, pport);
      const preservedBefore = preservedDirs(branch);
      await killBefore(args, branch, step);
      await expectInterruptedAt(branch, 'branch sync', step);
      expect(await parentState(parent, pport)).toEqual(before);
      for (const d of preservedBefore) expect(existsSync(`/var/lib/postgresql/15/${d}/PG_VERSION`)).toBe(true);
      const again = await pgmam([...args, '--yes']);
      expect(again.code, `${step}: ${again.stderr}`).toBe(0);
      const e = await expectHealthy(branch);
      expect(await sql(e.port, 'select count(*) from t')).toBe(String(i + 1));
      expect(await parentState(parent, pport)).toEqual(before);
      matrix.push(`branch sync × ${step} → parent unchanged; re-run put the branch's directory back and synced it`);
    }
  });

  it('resetwal: killed before each step, the rows kept; a re-run finishes (or redoes the copy) and the cluster runs', { timeout: 900_000 }, async () => {
    const app = uniqueName();
    made.push(app);
    expect((await pgmam(['initcluster', app, '--yes'])).code).toBe(0);
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

  it('a kill while a child runs: the lock is held until the child group is gone, then a re-run converges', { timeout: 300_000 }, async () => {
    const { app, port, target } = await appWithTarget();

    const wrap = blockingRestore();
    const child = execa(PGMAM, ['pitr', app, '--to', target, '--yes', '-q'], { reject: false, env: { PGMAM_CONFIG: CONFIG, PATH: `${wrap}:${process.env['PATH']}` }, stdin: 'ignore', cwd: '/tmp' });
    for (let i = 0; i < 1200 && !existsSync(`${wrap}/blocked`); i++) await sleep(50);
    expect(existsSync(`${wrap}/blocked`)).toBe(true);
    child.kill('SIGKILL');
    await child;

    // pgmam is dead, its restore is not: a re-run is refused and changes nothing.
    const journal = JSON.parse(readFileSync(`${STATE}/journal/${app}.json`, 'utf8')) as { groups: number[]; steps: string[]; at: number };
    expect(journal.steps[journal.at]).toBe('restore-backup');
    expect(journal.groups.length).toBeGreaterThan(0);
    const preserved = preservedDirs(app);
    const refused = await pgmam(['pitr', app, '--to', target, '--yes']);
    expect(refused.code).toBe(4);
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
    const wrap = blockingRestore();
    const child = execa(PGMAM, ['pitr', app, '--to', target, '--yes', '-q'], { reject: false, env: { PGMAM_CONFIG: CONFIG, PATH: `${wrap}:${process.env['PATH']}` }, stdin: 'ignore', cwd: '/tmp' });
    for (let i = 0; i < 1200 && !existsSync(`${wrap}/blocked`); i++) await sleep(50);
    const journal = JSON.parse(readFileSync(`${STATE}/journal/${app}.json`, 'utf8')) as { groups: number[] };
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/failed at step \d+\/\d+ restore-backup/);
    // The blocked restore got the signal too: nothing of pgmam's is left running.
    for (let i = 0; i < 50 && journal.groups.some(groupAlive); i++) await sleep(100);
    expect(journal.groups.some(groupAlive)).toBe(false);
    const e = await listEntry(app);
    expect(e.interrupted).toMatchObject({ command: 'pitr', step: 'restore-backup', status: 'failed' });
    // check counts it unhealthy (exit 7) and names the command that settles it.
    const health = await pgmam(['check', app, '--json']);
    expect(health.code).toBe(7);
    expect(JSON.parse(health.stdout)[0].problems.join('\n')).toMatch(/failed pitr at restore-backup \(run: pgmam pitr/);
    rmSync(wrap, { recursive: true, force: true });
    const again = await pgmam(['pitr', app, '--to', target, '--yes']);
    expect(again.code, again.stderr).toBe(0);
    await expectHealthy(app);
    expect(await sql(port, 'select string_agg(k, \',\') from t')).toBe('before');
    matrix.push('pitr × restore-backup (SIGTERM to pgmam) → signal passed to the restore, exit 6, listed as failed at restore-backup; re-run rolled back and restored');
  });
});
