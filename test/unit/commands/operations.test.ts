// prune, install-links, check and schedule: guards and plans over gathered facts.
import { fakeContext } from '../fakes.js';
import { describe, expect, it } from 'vitest';
import { planEnv, aRecord } from '../fixtures.js';
import { checkCommand, type CheckFacts } from '../../../src/commands/check/check.js';
import { installLinksCommand, type LinkFacts } from '../../../src/commands/install-links/install-links.js';
import { ORPHANS, pruneCommand, recoverPrune, type PruneApp, type PruneFacts, type PruneOptions } from '../../../src/commands/prune/prune.js';
import { isPreservedName } from '../../../src/state/store.js';
import { recoverSchedule, scheduleCommand, type ScheduleFacts, type ScheduleJournal } from '../../../src/commands/schedule/schedule.js';
import { assemblePlan, type PlanEnv } from '../../../src/plan/command.js';
import type { ManagedCluster } from '../../../src/state/store.js';

const env: PlanEnv = planEnv();
const dir = '/var/lib/postgresql/15/app1';
const record: ManagedCluster = aRecord('app1', {
  preserved: [
    { path: `${dir}.pre-pitr-20261110T000000Z`, reason: 'pitr', createdAt: '2026-11-10T00:00:00.000Z' },
    { path: `${dir}.pre-sync-20261121T000000Z`, reason: 'pitr', createdAt: '2026-11-21T00:00:00.000Z' },
  ],
});
const facts = (over: Partial<PruneApp> = {}): PruneFacts => ({ uid: 0, now: new Date('2026-11-22T00:00:00Z'), apps: [{ name: 'app1', record, dataDir: dir, lock: { holder: undefined, alive: false }, journal: undefined, ...over }] });
const week: PruneOptions = { name: 'app1', orphans: false, olderThanSeconds: 7 * 86400, json: false, dryRun: false, yes: true, keepOnError: false };
const failed = (f: PruneFacts) => assemblePlan(pruneCommand, f, week, env).guards.filter((g) => !g.check().ok).map((g) => g.id);

describe('prune', () => {
  it.each([
    [`${dir}.pre-pitr-20261110T000000Z`, true],
    [`${dir}.pre-sync-20261121T000000Z/..`, false],
    [`${dir}.pre-x/../../etc`, false],
    [`${dir}/../other`, false],
    [`${dir}.pre-`, false],
    ['/etc', false],
  ])('%s is a preserved directory of the cluster: %s', (path, ok) => expect(isPreservedName(dir, path)).toBe(ok));

  it('removes only the preserved directories older than --older-than; typed name to confirm', () => {
    const plan = assemblePlan(pruneCommand, facts(), week, env);
    expect(plan.steps.map((s) => s.show)).toEqual([[`rm -rf ${dir}.pre-pitr-20261110T000000Z`]]);
    expect(plan).toMatchObject({ destructive: true, typeToConfirm: 'app1', journal: { data: { preserved: [record.preserved[0]] } } });
  });

  it('warns when it removes the directory pitr --undo would put back; says the age as given', async () => {
    const onlyPitr = { ...record, preserved: [record.preserved[0]!] };
    expect(assemblePlan(pruneCommand, facts({ record: onlyPitr }), week, env).notes).toContain(`warning: ${dir}.pre-pitr-20261110T000000Z is the one pgmam pitr app1 --undo puts back: once removed, that pitr cannot be undone`);
    // The newest pitr directory stays: the older one is not the undo's.
    expect(assemblePlan(pruneCommand, facts(), week, env).notes?.some((n) => n.startsWith('warning:'))).toBe(false);
    const { ctx, out } = fakeContext();
    await pruneCommand.report(ctx, { ...week, olderThanSeconds: 30 * 86400, olderThanText: '30d' }, facts(), assemblePlan(pruneCommand, facts(), { ...week, olderThanSeconds: 30 * 86400, olderThanText: '30d' }, env));
    expect(out.join('')).toBe('15/app1: no preserved directory is older than 30d\n');
  });

  it('a dropped app: its preserved directories sit beside the data directory it had; the record goes with the last one', async () => {
    const { ctx, fs } = fakeContext();
    const dropped = { ...record, dropped: { at: 'x', dataDir: dir }, preserved: [record.preserved[0]!] };
    fs.files.set(`${ctx.paths.clustersDir}/app1.json`, JSON.stringify(dropped));
    const f = facts({ record: dropped, dataDir: dir });
    expect(failed(f)).toEqual([]);
    const plan = assemblePlan(pruneCommand, f, week, env);
    await (plan.steps[0]!.run as (c: typeof ctx) => Promise<void>)(ctx);
    expect(fs.files.has(`${ctx.paths.clustersDir}/app1.json`)).toBe(false);
  });

  it('an interrupted prune is finished by its re-run', async () => {
    const { ctx } = fakeContext();
    const j = { format: 1 as const, command: 'prune', target: '15/app1', name: 'app1', rerun: 'r', pid: 9, groups: [], startedAt: 'x', steps: ['remove-preserved'], at: 0, status: 'running' as const, error: null, data: {} };
    const r = await recoverPrune(ctx, j, { preserved: [record.preserved[0]!] });
    expect(r).toMatchObject({ way: 'finished', finished: expect.stringContaining('interrupted prune is finished') });
    expect(r.steps.map((s) => s.show)).toEqual([[`rm -rf ${record.preserved[0]!.path}`]]);
  });

  it('--orphans: every dropped app\'s old preserved directories, each app locked, each line back in its own record; no undo warning for a dropped app', async () => {
    const { ctx, fs } = fakeContext();
    const a = { ...record, dropped: { at: 'x', dataDir: dir }, preserved: [record.preserved[0]!] };
    const bDir = '/var/lib/postgresql/15/app2';
    const b = { ...aRecord('app2'), dropped: { at: 'x', dataDir: bDir }, preserved: [{ path: `${bDir}.pre-pitr-20261101T000000Z`, reason: 'pitr', createdAt: '2026-11-01T00:00:00.000Z' }] };
    for (const r of [a, b]) fs.files.set(`${ctx.paths.clustersDir}/${r.name}.json`, JSON.stringify(r));
    const app = (r: typeof a, d: string): PruneApp => ({ name: r.name, record: r, dataDir: d, lock: { holder: undefined, alive: false }, journal: undefined });
    const f: PruneFacts = { uid: 0, now: new Date('2026-11-22T00:00:00Z'), apps: [app(a, dir), app(b, bDir)] };
    const o = { ...week, name: ORPHANS, orphans: true };
    const plan = assemblePlan(pruneCommand, f, o, env);
    expect(plan.guards.filter((g) => !g.check().ok)).toEqual([]);
    expect(plan).toMatchObject({ locks: [ORPHANS, 'app1', 'app2'], typeToConfirm: 'orphans', journal: { rerun: 'pgmam prune --orphans --older-than 604800s --yes' } });
    expect(plan.steps.map((s) => s.show)).toEqual([[`rm -rf ${a.preserved[0]!.path}`], [`rm -rf ${b.preserved[0]!.path}`]]);
    expect(plan.notes?.some((n) => n.startsWith('warning:'))).toBe(false);
    for (const s of plan.steps) await (s.run as (c: typeof ctx) => Promise<void>)(ctx);
    // Their stanza files are gone too (the fake host has none): the records go with their last directories.
    expect([...fs.files.keys()].filter((k) => k.startsWith(ctx.paths.clustersDir))).toEqual([]);
  });

  it('nothing old enough: no steps (the report says so)', () => {
    expect(assemblePlan(pruneCommand, facts(), { ...week, olderThanSeconds: 30 * 86400 }, env).steps).toEqual([]);
  });

  it('refuses while an operation is interrupted, and a recorded path that is not pgmam\'s own', () => {
    const journal = { format: 1 as const, command: 'pitr', target: '15/app1', name: 'app1', rerun: 'r', pid: 9, groups: [], startedAt: 'x', steps: ['a'], at: 0, status: 'running' as const, error: null, data: {} };
    expect(failed(facts({ journal }))).toEqual(['no-interrupted-operation']);
    const edited = { ...record, preserved: [{ path: '/etc', reason: 'pitr', createdAt: '2026-11-01T00:00:00.000Z' }] };
    expect(failed(facts({ record: edited }))).toEqual(['preserved-paths-are-pgmams']);
  });
});

describe('install-links', () => {
  const o = { prefix: '/usr/local/bin', selfPath: '/opt/pgmam/bin/pgmam', json: false, dryRun: false, yes: false, keepOnError: false };
  const links = (existing: Record<string, string | undefined>): LinkFacts => ({ uid: 0, existing: new Map(Object.entries(existing)) });

  it('links pgmam to itself and the legacy names to pgmam, skipping links already right', () => {
    const plan = assemblePlan(installLinksCommand, links({ '/usr/local/bin/pitr': '/usr/local/bin/pgmam' }), o, env);
    expect(plan.steps.map((s) => s.title)).toEqual([
      'link /usr/local/bin/pgmam → /opt/pgmam/bin/pgmam',
      'link /usr/local/bin/initcluster → /usr/local/bin/pgmam',
      'link /usr/local/bin/pgbranch → /usr/local/bin/pgmam',
      'link /usr/local/bin/pgbackup → /usr/local/bin/pgmam',
    ]);
    expect(plan.locks).toEqual([]);
  });

  it('never replaces a file that is not a link', () => {
    const plan = assemblePlan(installLinksCommand, links({ '/usr/local/bin/pgbackup': 'file' }), o, env);
    expect(plan.guards.filter((g) => !g.check().ok).map((g) => g.id)).toEqual(['links-do-not-replace-files']);
  });
});

describe('check', () => {
  const entry = (name: string, managed: boolean) => ({
    cluster: `15/${name}`, name, version: '15', port: 5433, status: 'online' as const, dataDir: `/var/lib/postgresql/15/${name}`, managed, role: managed ? ('app' as const) : ('unmanaged' as const),
    parent: null, stanza: managed ? name : null, lastBackup: null, recoveryWindow: null, repos: [], preserved: [], interrupted: null, fenced: null, successor: null, origin: null, lastDrill: null,
  });
  const f = (): CheckFacts => ({ clusters: [], managed: [], dropped: [], leftovers: [], stanzas: undefined, archivedAt: new Map(), repoViews: new Map(), interrupted: [], lineages: new Map(), problems: [], uid: 0, now: new Date(), entries: [entry('app1', true), entry('main', false)], takeovers: new Map(), results: [], metricsDirExists: undefined });
  const o = { names: [] as string[], json: true, dryRun: false, yes: false, keepOnError: false };

  it('measures as a step (pgbackrest check switches WAL); writes metrics only when asked; quiet for cron; no journal', () => {
    expect(assemblePlan(checkCommand, f(), o, env)).toMatchObject({ steps: [{ id: 'measure-health' }], quiet: true, journal: false, locks: [] });
    expect(assemblePlan(checkCommand, f(), { ...o, prometheus: '/m/pgmam.prom' }, env).steps.map((s) => s.id)).toEqual(['measure-health', 'write-metrics']);
  });

  it('refuses unknown names', () => {
    const plan = assemblePlan(checkCommand, f(), { ...o, names: ['app1', 'nosuch'] }, env);
    expect(plan.guards.map((g) => g.check())).toEqual([{ ok: true }, expect.objectContaining({ ok: false, reason: 'no such cluster: nosuch' }), { ok: true }]);
  });

  it('--prometheus into a directory that does not exist: refused with one line, not a crash', () => {
    const plan = assemblePlan(checkCommand, { ...f(), metricsDirExists: false }, { ...o, prometheus: '/nonexistent/dir/x.prom' }, env);
    expect(plan.guards.filter((g) => !g.check().ok).map((g) => g.check())).toEqual([expect.objectContaining({ reason: '--prometheus /nonexistent/dir/x.prom: the directory /nonexistent/dir does not exist' })]);
  });
});

describe('schedule', () => {
  const o = (action: string) => ({ action, pgmam: '/usr/local/bin/pgmam', json: false, dryRun: false, yes: false, keepOnError: false });
  const f = (systemd: boolean, uid = 0): ScheduleFacts => ({ uid, systemd, files: [], configFile: undefined });
  const ids = (systemd: boolean, action: string) => assemblePlan(scheduleCommand, f(systemd), o(action), env).steps.map((s) => s.title);

  it('cron: install writes /etc/cron.d/pgmam, remove removes it, show only reads', () => {
    expect(ids(false, 'install')).toEqual(['write /etc/cron.d/pgmam', 'write /etc/logrotate.d/pgmam (rotate /var/log/pgmam/*.log weekly)']);
    expect(ids(false, 'remove')).toEqual(['remove /etc/cron.d/pgmam']);
    expect(ids(false, 'show')).toEqual([]);
  });

  it('systemd: the services and timers (backups; weekly drills), then daemon-reload and enable --now', () => {
    expect(ids(true, 'install')).toEqual([
      'write /etc/systemd/system/pgmam-backup.service',
      'write /etc/systemd/system/pgmam-backup.timer',
      'write /etc/systemd/system/pgmam-drill.service',
      'write /etc/systemd/system/pgmam-drill.timer',
      'systemctl daemon-reload',
      'systemctl enable --now pgmam-backup.timer',
      'systemctl enable --now pgmam-drill.timer',
      'write /etc/logrotate.d/pgmam (rotate /var/log/pgmam/*.log weekly)',
    ]);
  });

  it('systemd without drill-schedule: an earlier drill timer is taken away', () => {
    const noDrills = { ...env, config: { ...env.config, 'drill-schedule': '' } };
    expect(assemblePlan(scheduleCommand, f(true), o('install'), noDrills).steps.map((s) => s.title)).toEqual([
      'write /etc/systemd/system/pgmam-backup.service',
      'write /etc/systemd/system/pgmam-backup.timer',
      'systemctl disable --now pgmam-drill.timer',
      'remove /etc/systemd/system/pgmam-drill.service',
      'remove /etc/systemd/system/pgmam-drill.timer',
      'systemctl daemon-reload',
      'systemctl enable --now pgmam-backup.timer',
      'write /etc/logrotate.d/pgmam (rotate /var/log/pgmam/*.log weekly)',
    ]);
  });

  it('install and remove need root; show does not', () => {
    const failed = (action: string) => assemblePlan(scheduleCommand, f(false, 1000), o(action), env).guards.filter((g) => !g.check().ok).map((g) => g.id);
    expect(failed('install')).toEqual(['runs-as-root']);
    expect(failed('show')).toEqual([]);
  });

  it('install journals under _schedule, and an interrupted one is finished by its re-run: every step again', async () => {
    const plan = assemblePlan(scheduleCommand, f(true), o('install'), env);
    expect(plan.locks).toEqual(['_schedule']);
    const data = (plan.journal as { data: ScheduleJournal }).data;
    const { ctx } = fakeContext();
    const j = { format: 1 as const, command: 'schedule', target: plan.target, name: '_schedule', rerun: 'r', pid: 9, groups: [], startedAt: 'x', steps: plan.steps.map((s) => s.id), at: 3, status: 'running' as const, error: null, data };
    const r = await recoverSchedule(ctx, j, data);
    expect(r).toMatchObject({ way: 'finished' });
    expect(r.steps.map((s) => s.title)).toEqual(plan.steps.map((s) => s.title));
  });
});
