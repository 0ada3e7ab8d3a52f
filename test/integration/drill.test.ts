// Restore drills against a real app: its newest backup and archive restored into a scratch cluster,
// checked (pg_amcheck, the app's probe), RTO and RPO in list, check and the metrics file; the app never
// stopped or changed by a drill; a damaged backup fails with exit 7 naming the damaged file; a failed
// drill leaves no scratch cluster (kept with --keep-on-error until the next drill drops it).
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG, clusters, listEntry, pgbackrestInfo, pgmam, pgmamOk, removeTestCluster, REPO, sql, switchWalAndWait, TEST_ROOT, uniqueName } from './helpers.js';

const PROBES = `${TEST_ROOT}/drill-probes`;
let app = '';
let port = 0;
const scratch = () => `${app}_drill`;

interface Drilled {
  cluster: string;
  result: string;
  drill: { ok: boolean; rtoSeconds: number | null; rpoSeconds: number | null; rpoBytes: number | null; lostTransactions: number | null; backup: string | null; failedStep: string | null; error: string | null } | null;
  reason: string | null;
}
type WithDrill = { name: string; lastDrill: { at: string; ok: boolean; rtoSeconds: number | null; rpoSeconds: number | null } | null };

/** What no drill may change on the app. */
async function appState() {
  return {
    status: (await listEntry(app)).status,
    rows: await sql(port, "select count(*), md5(string_agg(k, ',' order by k)) from t"),
    timeline: await sql(port, 'select timeline_id from pg_control_checkpoint()'),
    backups: (await pgbackrestInfo(app))[0]!.backup.map((b) => b.label),
    history: readdirSync(`${REPO}/archive/${app}/15-1`).filter((f) => f.endsWith('.history')),
  };
}

/** Nothing of the scratch cluster on the host. */
async function noScratch(): Promise<void> {
  expect((await clusters()).map((c) => c.cluster)).not.toContain(scratch());
  expect(existsSync(`/etc/postgresql/15/${scratch()}`)).toBe(false);
  expect(existsSync(`/var/lib/postgresql/15/${scratch()}`)).toBe(false);
}

const lastDrillOf = async () => ((JSON.parse((await pgmamOk(['list', '--json'])).stdout) as WithDrill[]).find((e) => e.name === app) ?? { lastDrill: null }).lastDrill;

/** The biggest file of the newest full backup, damaged in its middle; returns a function that puts it back. */
function damageNewestFull(): { file: string; restore: () => void } {
  const label = readdirSync(`${REPO}/backup/${app}`).filter((d) => /^\d{8}-\d{6}F$/.test(d)).sort().at(-1)!;
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(`${d}/${e.name}`) : files.push(`${d}/${e.name}`);
  };
  walk(`${REPO}/backup/${app}/${label}/pg_data/base`);
  const file = files.sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
  copyFileSync(file, `${TEST_ROOT}/damaged.orig`);
  const bytes = readFileSync(file);
  for (let i = 0; i < 16; i++) bytes[Math.floor(bytes.length / 2) + i]! ^= 0xff;
  writeFileSync(file, bytes);
  return { file: file.slice(`${REPO}/backup/${app}/`.length), restore: () => copyFileSync(`${TEST_ROOT}/damaged.orig`, `${REPO}/backup/${app}/${file.slice(`${REPO}/backup/${app}/`.length)}`) };
}

beforeAll(async () => {
  mkdirSync(PROBES, { recursive: true });
  appendFileSync(CONFIG, `drill-probe-dir = ${PROBES}\n`);
  app = uniqueName();
  await pgmamOk(['initcluster', app, '--yes', '-q']);
  port = (await listEntry(app)).port;
  await sql(port, "create table t (k text primary key, v int); insert into t select 'row' || g, g from generate_series(1, 20000) g; insert into t values ('sentinel', 0)");
  // A backup that holds the table (the damaged-backup case alters one of its files).
  await pgmamOk(['backup', app, '--type', 'full', '-q']);
  writeFileSync(`${PROBES}/${app}.sql`, "select k from t where k = 'sentinel'\n");
  await switchWalAndWait(port);
}, 180_000);

afterAll(async () => {
  await removeTestCluster(`${app}_drill`);
  await removeTestCluster(app);
}, 120_000);

describe('drill', () => {
  it('drill --all: restored, promoted, checked and probed; RTO and RPO in list, check and the metrics; the app unchanged; no scratch left', { timeout: 180_000 }, async () => {
    const before = await appState();
    const r = await pgmam(['drill', '--all', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [d] = JSON.parse(r.stdout) as Drilled[];
    expect(d).toMatchObject({ cluster: `15/${app}`, result: 'passed', drill: { ok: true, backup: before.backups.at(-1), failedStep: null } });
    expect(d!.drill!.rtoSeconds).toBeGreaterThan(0);
    expect(d!.drill!.rpoSeconds).toBeGreaterThanOrEqual(0);
    expect(await lastDrillOf()).toEqual({ at: expect.any(String), ok: true, rtoSeconds: d!.drill!.rtoSeconds, rpoSeconds: d!.drill!.rpoSeconds });
    const prom = `${TEST_ROOT}/drill.prom`;
    const c = await pgmam(['check', app, '--json', '--prometheus', prom]);
    expect(c.code, c.stdout).toBe(0);
    expect((JSON.parse(c.stdout) as Array<{ lastDrill: { ok: boolean; rtoSeconds: number } }>)[0]!.lastDrill).toMatchObject({ ok: true, rtoSeconds: d!.drill!.rtoSeconds });
    const metrics = readFileSync(prom, 'utf8');
    expect(metrics).toContain(`pgmam_drill_ok{cluster="15/${app}"} 1`);
    expect(metrics).toContain(`pgmam_drill_rto_seconds{cluster="15/${app}"} ${d!.drill!.rtoSeconds}`);
    expect(await appState()).toEqual(before);
    await noScratch();
  });

  it('RPO of a running app whose last commit is not archived yet: that commit counted, its age the RPO', { timeout: 180_000 }, async () => {
    // No timed segment switch for this case (archive_timeout; the test's own change, reset after).
    await sql(port, "alter system set archive_timeout = '1h'");
    await sql(port, 'select pg_reload_conf()');
    try {
      await switchWalAndWait(port);
      await sql(port, "insert into t values ('unarchived', 1)");
      await new Promise((ok) => setTimeout(ok, 2000));
      const r = await pgmam(['drill', app, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const d = (JSON.parse(r.stdout) as Drilled[])[0]!.drill!;
      expect(d.rpoBytes).toBeGreaterThan(0);
      expect(d.lostTransactions).toBeGreaterThanOrEqual(1);
      expect(d.rpoSeconds).toBeGreaterThanOrEqual(2);
    } finally {
      await sql(port, 'alter system reset archive_timeout');
      await sql(port, 'select pg_reload_conf()');
    }
    expect(await sql(port, "select count(*) from t where k = 'unarchived'")).toBe('1');
    await noScratch();
  });

  it('a probe that finds nothing fails the drill at probe (exit 7); the scratch dropped', { timeout: 180_000 }, async () => {
    writeFileSync(`${PROBES}/${app}.sql`, "select k from t where k = 'no such row'\n");
    try {
      const r = await pgmam(['drill', app]);
      expect(r.code, r.stderr).toBe(7);
      expect(r.stdout).toContain(`15/${app}: drill FAILED at probe: the probe ${PROBES}/${app}.sql returned nothing`);
    } finally {
      writeFileSync(`${PROBES}/${app}.sql`, "select k from t where k = 'sentinel'\n");
    }
    await noScratch();
  });

  it('a damaged backup: exit 7 naming the damaged file; check unhealthy; the app unchanged; the scratch dropped', { timeout: 180_000 }, async () => {
    const before = await appState();
    const damaged = damageNewestFull();
    try {
      const r = await pgmam(['drill', app]);
      expect(r.code, r.stderr).toBe(7);
      expect(r.stdout).toContain(`15/${app}: drill FAILED at restore-backup: the backup is damaged: invalid checksum '${damaged.file}' (pgbackrest verify)`);
    } finally {
      damaged.restore();
    }
    expect(await lastDrillOf()).toMatchObject({ ok: false, rtoSeconds: null });
    const c = await pgmam(['check', app]);
    expect(c.code, c.stderr).toBe(7);
    expect(c.stdout).toContain('failed at restore-backup: the backup is damaged');
    expect(await appState()).toEqual(before);
    await noScratch();
  });

  it('--keep-on-error keeps a failed drill\'s scratch cluster; the next drill drops it, then passes', { timeout: 240_000 }, async () => {
    const damaged = damageNewestFull();
    try {
      expect((await pgmam(['drill', app, '--keep-on-error'])).code).toBe(7);
    } finally {
      damaged.restore();
    }
    expect(existsSync(`/etc/postgresql/15/${scratch()}`)).toBe(true);
    expect((await listEntry(scratch())).interrupted).toMatchObject({ command: 'drill', step: 'restore-backup', status: 'failed', rerun: `pgmam drill ${app}` });
    const again = await pgmam(['drill', app]);
    expect(again.code, again.stderr).toBe(0);
    expect(await lastDrillOf()).toMatchObject({ ok: true });
    await noScratch();
    // Healthy again: the last drill passed.
    expect((await pgmam(['check', app])).code).toBe(0);
  });

  it('refused, nothing changed: a name pgmam does not manage (4), neither names nor --all (2), another user (4)', { timeout: 60_000 }, async () => {
    const before = await appState();
    expect((await pgmam(['drill', 't_nosuchapp'])).code).toBe(4);
    expect((await pgmam(['drill'])).code).toBe(2);
    expect((await pgmam(['drill', app], { user: 'postgres' })).code).toBe(4);
    expect(await appState()).toEqual(before);
    await noScratch();
  });
});
