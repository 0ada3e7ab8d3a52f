// Kill matrix, branch create --cow on XFS (reflink=1): killed before each step, and killed in the
// middle of the copy while its backup session is held. The parent is never left in a backup and
// never changed; rows the parent commits between the kill and the re-run are in the branch after it.
import { execa } from 'execa';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser, expectHealthy, expectInterruptedAt, killBefore, matrix, parentState, sleep, stepsOf, userConnects, userWrite, whereIs } from './kill.js';
import { CONFIG, PGMAM, TEST_ROOT, listEntry, mountXfs, pgmam, removeTestCluster, sql, testConfigLines, unmountXfs, uniqueName } from './helpers.js';

const IMAGE = `${TEST_ROOT}/xfs.img`;
const MOUNT = `${TEST_ROOT}/xfs`;
const XFS_CONFIG = `${TEST_ROOT}/xfs.conf`;
const parent = uniqueName();
const branch = `${parent}_cow`;
const args = ['branch', 'create', parent, '--name', 'cow', '--cow'];
let port: number;

/** Backends of the parent that are in a backup pgmam started (its held session). */
const backupSessions = () => sql(port, "select count(*) from pg_stat_activity where query ilike '%pg_backup_start%' and pid <> pg_backend_pid()");

beforeAll(async () => {
  await mountXfs(IMAGE, MOUNT, '1G');
  writeFileSync(XFS_CONFIG, [...testConfigLines(), `data-root = ${MOUNT}/%v/%c`].join('\n') + '\n');
  const init = await pgmam(['initcluster', parent, '-q'], { env: { PGMAM_CONFIG: XFS_CONFIG } });
  if (init.code !== 0) throw new Error(`initcluster failed: ${init.stderr}`);
  port = (await listEntry(parent)).port;
  await sql(port, 'create table t (k text primary key)');
  await sql(port, "insert into t values ('p1'), ('p2')");
  await addUser(port);
}, 180_000);
afterAll(async () => {
  for (const n of [branch, parent]) await removeTestCluster(n);
  await unmountXfs(IMAGE, MOUNT);
  console.log(`kill matrix (command × step → outcome):\n${matrix.join('\n')}`);
}, 300_000);

/** After a kill: the parent unchanged and out of any backup; a row committed now; the re-run converges and the branch has it. */
async function rerunConverges(what: string, before: Awaited<ReturnType<typeof parentState>>, key: string): Promise<void> {
  expect(await parentState(parent, port)).toEqual(before);
  for (let i = 0; i < 50 && (await backupSessions()) !== '0'; i++) await sleep(100);
  expect(await backupSessions(), `${what}: the parent is still in pgmam's backup`).toBe('0');
  const all = "select string_agg(k, ',' order by k) from t";
  const rowsAtKill = await sql(port, all);
  await sql(port, `insert into t values ('${key}')`);
  const parentRows = await sql(port, all);
  const again = await pgmam([...args, '--yes']);
  expect(again.code, `${what}: ${again.stderr}`).toBe(0);
  const e = await expectHealthy(branch);
  // Rolled back and made again: every row the parent had committed, the one written after the kill
  // included. From hand-over on, the branch is finished as it was: the parent's rows at the kill.
  expect(await sql(e.port, all)).toBe(what === 'hand-over' ? rowsAtKill : parentRows);
  expect(await userConnects(e.port)).toBe(true);
  const drop = await pgmam(['branch', 'drop', branch, '--purge-backups', '--yes']);
  expect(drop.code, drop.stderr).toBe(0);
}

describe('kill matrix: branch sync --cow', () => {
  it("killed before the copy's steps: the parent unchanged; the branch user's row is in the branch or its preserved directory; the re-run converges", { timeout: 900_000 }, async () => {
    const made = await pgmam([...args, '--yes']);
    expect(made.code, made.stderr).toBe(0);
    const bport = (await listEntry(branch)).port;
    const sync = ['branch', 'sync', branch, '--cow'];
    for (const [i, step] of ['cow-copy', 'request-recovery', 'start-cluster', 'wait-promoted', 'hand-over'].entries()) {
      await sql(port, `insert into t values ('s${i}')`);
      const before = await parentState(parent, port);
      await killBefore(sync, branch, step);
      await expectInterruptedAt(branch, 'branch sync', step);
      expect(await parentState(parent, port)).toEqual(before);
      for (let j = 0; j < 50 && (await backupSessions()) !== '0'; j++) await sleep(100);
      expect(await backupSessions()).toBe('0');
      const key = `user_${i}`;
      const wrote = await userWrite(bport, key);
      const again = await pgmam([...sync, '--yes']);
      expect(again.code, `${step}: ${again.stderr}`).toBe(0);
      const e = await expectHealthy(branch);
      const where = wrote ? await whereIs(branch, e.port, key) : 'refused';
      expect(where, `${step}: ${key}`).toBeDefined();
      expect(await sql(e.port, "select count(*) from t where k like 's%'")).toBe(String(i + 1));
      matrix.push(`branch sync --cow × ${step} → parent unchanged and in no backup; user write between kill and re-run: ${wrote ? `committed, now in ${where === 'cluster' ? 'the branch' : `preserved ${where!.split('/').pop()}`}` : 'refused (closed or down)'}; 0 rows lost`);
    }
    const drop = await pgmam(['branch', 'drop', branch, '--purge-backups', '--yes']);
    expect(drop.code, drop.stderr).toBe(0);
    // Its preserved data directories (one per sync) keep the name until pruned.
    const prune = await pgmam(['prune', branch, '--older-than', '0', '--yes']);
    expect(prune.code, prune.stderr).toBe(0);
  });
});

describe('kill matrix: branch create --cow', () => {
  it('killed before each step: the parent unchanged, never left in a backup; the re-run creates the branch with the rows committed meanwhile', { timeout: 1_200_000 }, async () => {
    for (const step of await stepsOf(args)) {
      const before = await parentState(parent, port);
      await killBefore(args, branch, step);
      const e0 = await expectInterruptedAt(branch, 'branch create', step);
      expect(e0?.port ? await userConnects(e0.port) : false, step).toBe(false);
      const key = `k_${step.replace(/-/g, '_')}`;
      await rerunConverges(step, await parentState(parent, port), key);
      // The row written between the kill and the re-run changed the parent's rows, nothing else.
      expect((await parentState(parent, port)).backups).toEqual(before.backups);
      matrix.push(`branch create --cow × ${step} → parent unchanged and in no backup; re-run ${step === 'hand-over' ? 'finished the hand-over' : 'created the branch again, with the row committed after the kill'}; 0 rows lost`);
    }
  });

  it('killed during the copy, its backup session held: PostgreSQL ends the backup with the session; the re-run converges', { timeout: 300_000 }, async () => {
    // A cp on PATH that holds the reflink copy until released (its PID written, so the test ends only what it started).
    const wrap = `${TEST_ROOT}/wrap`;
    await execa('install', ['-d', '-m', '0777', wrap]);
    writeFileSync(`${wrap}/cp`, `#!/bin/sh\ncase " $* " in *" --reflink=always "*) echo $$ > ${wrap}/pid; while [ ! -e ${wrap}/go ]; do sleep 0.1; done;; esac\nexec /bin/cp "$@"\n`, { mode: 0o755 });
    const before = await parentState(parent, port);
    const child = execa(PGMAM, [...args, '--yes', '-q'], { reject: false, env: { PGMAM_CONFIG: CONFIG, PATH: `${wrap}:${process.env['PATH']}` }, stdin: 'ignore', cwd: '/tmp' });
    let exited = false;
    void child.then(() => (exited = true));
    for (let i = 0; i < 600 && !existsSync(`${wrap}/pid`) && !exited; i++) await sleep(100);
    expect(exited, `pgmam ended before the copy: ${exited ? (await child).stderr : ''}`).toBe(false);
    expect(await backupSessions()).toBe('1');
    child.kill('SIGKILL');
    await child;
    process.kill(Number(readFileSync(`${wrap}/pid`, 'utf8')), 'SIGKILL');
    // The run counts as interrupted once its children are gone too (psql ends at the end of its input).
    for (let i = 0; i < 100 && !(await listEntry(branch).then((e) => e.interrupted, () => null)); i++) await sleep(100);
    await expectInterruptedAt(branch, 'branch create', 'cow-copy');
    const key = 'k_during_copy';
    await rerunConverges('during the copy', before, key);
    matrix.push('branch create --cow × during cow-copy (session held) → the parent left its backup when pgmam died; re-run created the branch; 0 rows lost');
  });
});
