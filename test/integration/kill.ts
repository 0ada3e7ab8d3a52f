// The kill matrix's shared parts. Each of initcluster, pitr, branch create, branch sync and resetwal
// is SIGKILLed just before each of its steps in turn (the PGMAM_TEST_PAUSE_BEFORE seam stops the run
// there after the journal is written; nothing is timed by guessing). After each kill: no committed
// row lost, the parent unchanged, no data directory lost, `pgmam list` names the interrupted step;
// re-running the same command brings the cluster to a correct, running, backed-up state. The matrix
// is split over several files (kill-*.test.ts) so that they run in parallel.
import { execa } from 'execa';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, expect } from 'vitest';
import { CONFIG, listEntry, pgbackrestInfo, PGMAM, pgmam, pgmamOk, queryDataDirCopy, removeTestCluster, REPO, sh, sql, STATE, targetBetween, type ListEntry, uniqueName } from './helpers.js';

export const made: string[] = [];
export const matrix: string[] = [];
/** Call once at a kill file's top: removes what it made and prints its part of the matrix. */
export const cleanUpAfterAll = () => afterAll(async () => {
  for (const n of made.reverse()) await removeTestCluster(n);
  // The matrix, for the issue's note.
  console.log(`kill matrix (command × step → outcome):\n${matrix.join('\n')}`);
}, 300_000);

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The step ids of a plan, from its --dry-run. */
export async function stepsOf(args: string[]): Promise<string[]> {
  const r = await pgmam([...args, '--dry-run']);
  expect(r.code, r.stderr).toBe(0);
  return [...r.stdout.matchAll(/^(\d+)\. ([a-z0-9-]+):/gm)].map((m) => m[2]!);
}

/** Runs pgmam until it stops before `step`, then SIGKILLs it. */
export async function killBefore(args: string[], name: string, step: string): Promise<void> {
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

export async function expectInterruptedAt(name: string, command: string, step: string): Promise<ListEntry | undefined> {
  const r = await pgmam(['list', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const e = (JSON.parse(r.stdout) as ListEntry[]).find((x) => x.name === name);
  expect(e?.interrupted, `list after a kill before ${command} ${step}`).toMatchObject({ command, step });
  return e;
}

export async function expectHealthy(name: string): Promise<ListEntry> {
  const e = await listEntry(name);
  expect(e.status).toBe('online');
  expect(e.interrupted).toBeNull();
  expect(e.lastBackup?.type).toBe('full');
  expect((await sh('pgbackrest', [`--stanza=${name}`, 'check'], { user: 'postgres' })).code).toBe(0);
  return e;
}

/** A managed app with table t: 'before' committed before the returned target, 'after' after it. */
export async function appWithTarget(): Promise<{ app: string; port: number; target: string }> {
  const app = uniqueName();
  made.push(app);
  await pgmamOk(['initcluster', app, '--yes']);
  const port = (await listEntry(app)).port;
  const target = await targetBetween(port, "create table t as select 'before' k", "insert into t values ('after')");
  return { app, port, target };
}

/** A pgbackrest on PATH that holds `command` (restore, backup) until ${dir}/go exists, then runs the real one. */
export function blockingPgbackrest(command = 'restore'): string {
  const wrap = mkdtempSync('/tmp/pgmam-wrap-');
  chmodSync(wrap, 0o777);
  writeFileSync(`${wrap}/pgbackrest`, `#!/bin/sh\ncase " $* " in *" ${command} "*) touch ${wrap}/blocked; while [ ! -e ${wrap}/go ]; do sleep 0.1; done;; esac\nexec /usr/bin/pgbackrest "$@"\n`, { mode: 0o755 });
  return wrap;
}

export const groupAlive = (g: number) => {
  try {
    process.kill(-g, 0);
    return true;
  } catch {
    return false;
  }
};

export const preservedDirs = (name: string) => readdirSync('/var/lib/postgresql/15').filter((d) => d.startsWith(`${name}.pre-`));

/** What the branch commands must never change on the parent. */
export async function parentState(parent: string, port: number) {
  return {
    status: (await listEntry(parent)).status,
    rows: await sql(port, 'select count(*), md5(string_agg(k, \',\' order by k)) from t'),
    timeline: await sql(port, 'select timeline_id from pg_control_checkpoint()'),
    backups: (await pgbackrestInfo(parent))[0]!.backup.map((b) => b.label),
    history: readdirSync(`${REPO}/archive/${parent}/15-1`).filter((f) => f.endsWith('.history')),
  };
}


/** branch create killed before every other step (`part` 0 or 1: two files run the halves in parallel). */
export async function branchCreateMatrix(part: number): Promise<void> {
  const parent = uniqueName();
  made.push(parent);
  await pgmamOk(['initcluster', parent, '--yes']);
  const pport = (await listEntry(parent)).port;
  await sql(pport, 'create table t (k text primary key)');
  await sql(pport, "insert into t values ('p1'), ('p2')");
  await addUser(pport);
  const branch = `${parent}_dev`;
  made.unshift(branch);
  const args = ['branch', 'create', parent, '--name', 'dev'];
  const steps = (await stepsOf(args)).filter((_, i) => i % 2 === part);
  for (const step of steps) {
    const before = await parentState(parent, pport);
    await killBefore(args, branch, step);
    const e0 = await expectInterruptedAt(branch, 'branch create', step);
    expect(await parentState(parent, pport)).toEqual(before);
    // Closed to users until hand-over (or not running yet): the branch's user cannot connect.
    expect(e0?.port ? await userConnects(e0.port) : false, step).toBe(false);
    const again = await pgmam([...args, '--yes']);
    expect(again.code, `${step}: ${again.stderr}`).toBe(0);
    const e = await expectHealthy(branch);
    expect(e.parent).toBe(parent);
    expect(await sql(e.port, 'select string_agg(k, \',\' order by k) from t')).toBe('p1,p2');
    expect(await parentState(parent, pport)).toEqual(before);
    expect(await userConnects(e.port)).toBe(true);
    matrix.push(`branch create × ${step} → parent unchanged; the branch's user could not connect before the re-run; re-run ${again.stdout.includes('is complete') ? 'finished the hand-over' : 'rolled back and created the branch'} with the parent's rows; 0 rows lost`);
    const drop = await pgmam(['branch', 'drop', branch, '--purge-backups', '--yes']);
    expect(drop.code, drop.stderr).toBe(0);
  }
}

/** branch sync killed before every other step (`part` 0 or 1), the parent written to between rounds. */
export async function branchSyncMatrix(part: number): Promise<void> {
  const parent = uniqueName();
  made.push(parent);
  await pgmamOk(['initcluster', parent, '--yes']);
  const pport = (await listEntry(parent)).port;
  await sql(pport, 'create table t (k text primary key)');
  await addUser(pport);
  const branch = `${parent}_dev`;
  made.unshift(branch);
  await pgmamOk(['branch', 'create', parent, '--name', 'dev', '--yes']);
  const bport = (await listEntry(branch)).port;
  const args = ['branch', 'sync', branch];
  const steps = (await stepsOf(args)).filter((_, i) => i % 2 === part);
  for (const [i, step] of steps.entries()) {
    await sql(pport, `insert into t values ('p${i}')`);
    const before = await parentState(parent, pport);
    const preservedBefore = preservedDirs(branch);
    await killBefore(args, branch, step);
    await expectInterruptedAt(branch, 'branch sync', step);
    expect(await parentState(parent, pport)).toEqual(before);
    for (const d of preservedBefore) expect(existsSync(`/var/lib/postgresql/15/${d}/PG_VERSION`)).toBe(true);
    // A user of the branch writes between the kill and the re-run, wherever the branch accepts it.
    const key = `user-${part}-${i}`;
    const wrote = await userWrite(bport, key);
    const again = await pgmam([...args, '--yes']);
    expect(again.code, `${step}: ${again.stderr}`).toBe(0);
    const e = await expectHealthy(branch);
    const where = wrote ? await whereIs(branch, e.port, key) : 'refused';
    expect(where, `${step}: ${key}`).toBeDefined();
    expect(await sql(e.port, `select count(*) from t where k like 'p%'`)).toBe(String(i + 1));
    expect(await parentState(parent, pport)).toEqual(before);
    matrix.push(`branch sync × ${step} → parent unchanged; user write between kill and re-run: ${wrote ? `committed, now in ${where === 'cluster' ? 'the branch' : `preserved ${where!.split('/').pop()}`}` : 'refused (closed or down)'}; re-run ${again.stdout.includes('is finished') ? 'finished it' : 'put the branch back and synced it'}; 0 rows lost`);
  }
}

/** A user of the app: a login role with a password, over TCP as applications connect (never pgmam's local postgres). */
export const USER = { role: 'app_user', password: 'pw-app-user' };

/** Creates the user and lets it write table t. */
export async function addUser(port: number): Promise<void> {
  await sql(port, `create role ${USER.role} login password '${USER.password}'`);
  await sql(port, `grant select, insert on t to ${USER.role}`);
}

/** The user tries to commit a row: true when the cluster accepted it (false: down, or closed to users). */
export async function userWrite(port: number, key: string, db = 'postgres', table = 't'): Promise<boolean> {
  const r = await sh('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', USER.role, '-d', db, '-c', `insert into ${table} (k) values ('${key}')`], {
    env: { PGPASSWORD: USER.password, PGCONNECT_TIMEOUT: '5', PATH: process.env['PATH'] ?? '' },
  });
  return r.code === 0;
}

/** Where a committed row is now: 'cluster', or the preserved data directory (listed by pgmam list) that holds it. */
export async function whereIs(app: string, port: number, key: string): Promise<string | undefined> {
  if ((await sql(port, `select count(*) from t where k = '${key}'`)) === '1') return 'cluster';
  const listed = (await listEntry(app)).preserved.map((p) => p.path).reverse();
  for (const dir of listed) if ((await queryDataDirCopy(dir, `/etc/postgresql/15/${app}/pg_hba.conf`, `select count(*) from t where k = '${key}'`)) === '1') return dir;
  return undefined;
}

/** Whether the user can connect at all (false: down, or pg_hba.conf does not admit users). */
export async function userConnects(port: number, db = 'postgres'): Promise<boolean> {
  const r = await sh('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(port), '-U', USER.role, '-d', db, '-c', 'select 1'], {
    env: { PGPASSWORD: USER.password, PGCONNECT_TIMEOUT: '5', PATH: process.env['PATH'] ?? '' },
  });
  return r.code === 0;
}
