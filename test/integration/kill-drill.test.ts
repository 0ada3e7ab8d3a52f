// Kill matrix, drill (shared parts: kill.ts): SIGKILLed before each of its steps, and while its restore
// runs. The app keeps its users: one writes between the kill and the re-run. The scratch cluster was
// never open to users: the re-run drops what the killed run made and drills again (past record-drill,
// it only drops it); afterwards no scratch cluster is left, the app has every row, its timeline and
// backups are unchanged, and its last drill passed.
import { execa } from 'execa';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { addUser, appWithTarget, blockingPgbackrest, cleanUpAfterAll, expectInterruptedAt, groupAlive, killBefore, made, matrix, sleep, stepsOf, userWrite } from './kill.js';
import { CONFIG, clusters, PGMAM, pgbackrestInfo, pgmam, sql, STATE } from './helpers.js';

cleanUpAfterAll();

type WithDrill = { name: string; lastDrill: { ok: boolean } | null };
const lastDrill = async (app: string) => ((JSON.parse((await pgmam(['list', '--json'])).stdout) as WithDrill[]).find((e) => e.name === app) ?? { lastDrill: null }).lastDrill;

/** What no drill may change on the app. */
const appState = async (app: string, port: number) => ({
  timeline: await sql(port, 'select timeline_id from pg_control_checkpoint()'),
  backups: (await pgbackrestInfo(app))[0]!.backup.map((b) => b.label),
});

async function noScratch(scratch: string): Promise<void> {
  expect((await clusters()).map((c) => c.cluster)).not.toContain(scratch);
  expect(existsSync(`/etc/postgresql/15/${scratch}`)).toBe(false);
  expect(existsSync(`/var/lib/postgresql/15/${scratch}`)).toBe(false);
  expect(existsSync(`${STATE}/journal/${scratch}.json`)).toBe(false);
}

describe('kill matrix: drill', () => {
  it('killed before each step: the app untouched and writable; the re-run leaves no scratch cluster and records a passing drill', { timeout: 600_000 }, async () => {
    const { app, port } = await appWithTarget();
    await addUser(port);
    const scratch = `${app}_drill`;
    made.unshift(scratch);
    const steps = await stepsOf(['drill', app]);
    expect(steps[0]).toBe('note-app-position');
    expect(steps.at(-1)).toBe('drop-scratch-cluster');
    for (const [i, step] of steps.entries()) {
      const before = await appState(app, port);
      await killBefore(['drill', app], scratch, step);
      await expectInterruptedAt(scratch, 'drill', step);
      // The app is never stopped or closed by a drill: its user's write commits.
      const key = `during-drill-${i}`;
      expect(await userWrite(port, key)).toBe(true);
      const again = await pgmam(['drill', app, '--json']);
      expect(again.code, `${step}: ${again.stderr}`).toBe(0);
      expect(JSON.parse(again.stdout)).toEqual([expect.objectContaining({ result: 'passed', drill: expect.objectContaining({ ok: true }) })]);
      await noScratch(scratch);
      expect(await lastDrill(app)).toMatchObject({ ok: true });
      expect(await sql(port, `select count(*) from t where k = '${key}'`)).toBe('1');
      expect(await appState(app, port)).toEqual(before);
      matrix.push(`drill × ${step} → app untouched, its user's write meanwhile committed; re-run ${again.stderr.includes('had recorded its result') ? 'dropped the scratch cluster (the drill had recorded its result)' : 'dropped the scratch cluster and drilled again'}; no scratch left; 0 rows lost`);
    }
  });

  it('killed while its restore runs: refused while the restore lives; then the re-run drops the scratch and drills again', { timeout: 300_000 }, async () => {
    const { app, port } = await appWithTarget();
    await addUser(port);
    const scratch = `${app}_drill`;
    made.unshift(scratch);
    const before = await appState(app, port);
    const wrap = blockingPgbackrest('restore');
    const child = execa(PGMAM, ['drill', app, '-q'], { reject: false, env: { PGMAM_CONFIG: CONFIG, PATH: `${wrap}:${process.env['PATH']}` }, stdin: 'ignore', cwd: '/tmp' });
    for (let i = 0; i < 1200 && !existsSync(`${wrap}/blocked`); i++) await sleep(50);
    expect(existsSync(`${wrap}/blocked`)).toBe(true);
    const groups = () => (JSON.parse(readFileSync(`${STATE}/journal/${scratch}.json`, 'utf8')) as { groups: number[] }).groups;
    for (let i = 0; i < 100 && !groups().some(groupAlive); i++) await sleep(50);
    await sleep(300);
    child.kill('SIGKILL');
    await child;
    expect(await userWrite(port, 'during-restore')).toBe(true);
    // pgmam is dead, its restore is not: a re-run is refused, nothing changes.
    expect((await pgmam(['drill', app])).code).toBe(4);
    writeFileSync(`${wrap}/go`, '');
    const recorded = groups();
    for (let i = 0; i < 1200 && recorded.some(groupAlive); i++) await sleep(100);
    const again = await pgmam(['drill', app]);
    expect(again.code, again.stderr).toBe(0);
    await noScratch(scratch);
    expect(await lastDrill(app)).toMatchObject({ ok: true });
    expect(await sql(port, "select count(*) from t where k = 'during-restore'")).toBe('1');
    expect(await appState(app, port)).toEqual(before);
    rmSync(wrap, { recursive: true, force: true });
    matrix.push('drill × during restore-backup (pgmam SIGKILLed while its pgbackrest restore ran) → re-run refused (exit 4) while the restore lived; after it: scratch dropped, drilled again; app untouched; 0 rows lost');
  });
});
