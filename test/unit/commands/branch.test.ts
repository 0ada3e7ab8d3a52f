// branch guards and plans over gathered facts.
import { describe, expect, it } from 'vitest';
import { branchCreateCommand, branchCreateGuards, recoverBranchCreate, type BranchCreateFacts, type BranchCreateOptions } from '../../../src/commands/branch/create.js';
import { parseConfLines } from '../../../src/steps/extras.js';
import type { ParentFacts } from '../../../src/restore/parent.js';
import { branchSyncCommand, branchSyncGuards, recoverBranchSync, type BranchSyncFacts, type BranchSyncOptions } from '../../../src/commands/branch/sync.js';
import { assemblePlan } from '../../../src/plan/command.js';
import type { Journal } from '../../../src/state/journal.js';
import { fakeContext } from '../fakes.js';
import { aNewCluster, planEnv, aRecord, aStanza, aCluster } from '../fixtures.js';
import { renderPlan } from '../../../src/plan/render.js';
import type { HostCluster } from '../../../src/pg/clusters.js';
import { emptySource } from '../../../src/restore/source.js';
import type { ManagedCluster } from '../../../src/state/store.js';

const at = (iso: string) => Date.parse(iso) / 1000;
const cluster = (name: string, port: number): HostCluster => aCluster(name, { port, logFile: undefined });
const record = (name: string, role: 'app' | 'branch', parent: string | null = null): ManagedCluster => aRecord(name, { role, parent });
const parent = (over: Partial<ParentFacts> = {}): ParentFacts => ({
  ...emptySource(),
  record: record('app1', 'app'),
  cluster: cluster('app1', 5433),
  server: { inRecovery: false, timeline: 1 },
  control: { systemId: '1', state: 'in production', timeline: 1 },
  stanza: aStanza('app1', {
    backup: [{ label: 'F1', type: 'full', archive: { start: '000000010000000000000002', stop: '000000010000000000000003' }, lsn: { start: '0/2000028', stop: '0/3000050' }, timestamp: { start: at('2026-11-22T04:59:58Z'), stop: at('2026-11-22T05:00:00Z') } }],
    db: [{ id: 1, 'system-id': '1', version: '15' }],
  }),
  stanzaFile: { dataDir: '/var/lib/postgresql/15/app1', port: 5433 },
  currentTimeline: 1,
  archiveDir: '/var/lib/pgbackrest/archive/app1/15-1',
  archiveBefore: ['0000000100000000'],
  tablespaces: [],
  ...over,
});
const createFacts = (over: Partial<BranchCreateFacts> = {}): BranchCreateFacts => ({
  uid: 0, now: new Date('2026-11-22T06:00:00Z'), name: 'app1_dev', parent: parent(), tools: {}, postgres: { uid: 101, gid: 104 }, extras: {}, reflink: undefined, setDatabases: undefined,
  ...aNewCluster('app1_dev', { port: 5434, disk: [] }),
  ...over,
});
const createOpts = (over: Partial<BranchCreateOptions> = {}): BranchCreateOptions => ({ parent: 'app1', label: 'dev', at: undefined, port: undefined, dryRun: false, yes: false, keepOnError: false, json: false, ...over });
const ctx = planEnv();
const planBranchCreate = (f: BranchCreateFacts, o: BranchCreateOptions, e: typeof ctx) => assemblePlan(branchCreateCommand, f, o, e);
const planBranchSync = (f: BranchSyncFacts, o: BranchSyncOptions, e: typeof ctx) => assemblePlan(branchSyncCommand, f, o, e);
const failedIds = (guards: ReturnType<typeof branchCreateGuards>) => guards.filter((g) => !g.check().ok).map((g) => g.id);

describe('branch create: copy-on-write and one database', () => {
  const xfs = { ok: true as const, how: 'XFS with reflink=1 at /srv' };
  it('copies the running parent by reflink inside a held backup session, then recovers it from the parent archive: no restore, no WAL switch first', () => {
    const plan = planBranchCreate(createFacts({ reflink: xfs }), createOpts(), ctx);
    const ids = plan.steps.map((s) => s.id);
    expect(ids).toContain('cow-copy');
    expect(ids).not.toContain('restore-backup');
    expect(ids).not.toContain('switch-wal');
    expect(ids.indexOf('empty-datadir')).toBeLessThan(ids.indexOf('cow-copy'));
    expect(ids.indexOf('cow-copy')).toBe(ids.indexOf('request-recovery') - 1);
    expect(ids.indexOf('request-recovery')).toBeLessThan(ids.indexOf('verify-isolation'));
    const text = renderPlan(plan, 0);
    expect(text).toContain("restore_command = 'pgbackrest --stanza=app1 --pg1-path=/var/lib/postgresql/15/app1_dev --no-archive-async archive-get %f \"%p\"'");
    expect(text).toContain("recovery_target_timeline = '1'");
    expect(text).toContain("archive_mode = 'off'");
    expect(text).toContain('copy-on-write (reflink): XFS with reflink=1 at /srv');
  });
  it('restores from the backups where blocks cannot be shared, and the plan says why', () => {
    const plan = planBranchCreate(createFacts({ reflink: { ok: false, reason: '/var/lib/postgresql/15/app1 is on ext4, which cannot share blocks' } }), createOpts(), ctx);
    expect(plan.steps.map((s) => s.id)).toContain('restore-backup');
    expect(renderPlan(plan, 0)).toContain('restored from the backups: /var/lib/postgresql/15/app1 is on ext4, which cannot share blocks');
  });
  it('--no-cow restores even where a copy could share blocks; a down parent is restored too', () => {
    expect(planBranchCreate(createFacts({ reflink: xfs }), createOpts({ cow: false }), ctx).steps.map((s) => s.id)).toContain('restore-backup');
    const down = createFacts({ reflink: xfs, parent: parent({ cluster: { ...cluster('app1', 5433), running: false } }) });
    expect(planBranchCreate(down, createOpts(), ctx).steps.map((s) => s.id)).toContain('restore-backup');
  });
  it('--cow is refused without a filesystem that shares blocks, and with the parent down', () => {
    expect(failedIds(branchCreateGuards(createFacts({ reflink: { ok: false, reason: 'ext4' } }), createOpts({ cow: true }), ctx))).toEqual(['filesystem-shares-blocks']);
    const down = createFacts({ reflink: xfs, parent: parent({ cluster: { ...cluster('app1', 5433), running: false } }) });
    expect(failedIds(branchCreateGuards(down, createOpts({ cow: true }), ctx))).toContain('parent-is-running');
    expect(failedIds(branchCreateGuards(createFacts({ reflink: xfs }), createOpts({ cow: true }), ctx))).toEqual([]);
  });
  it('--only-db restores one database with --db-include and drops the others once promoted', () => {
    const plan = planBranchCreate(createFacts({ reflink: xfs, setDatabases: { label: 'F1', databases: ['shop', 'crm'] } }), createOpts({ onlyDb: 'shop' }), ctx);
    const ids = plan.steps.map((s) => s.id);
    const text = renderPlan(plan, 0);
    expect(text).toContain('--db-include=shop');
    expect(ids.indexOf('drop-other-databases')).toBe(ids.indexOf('verify-parent-archive') + 1);
    expect(text).toContain('every other user database of the parent is dropped');
    const crmOnly = { label: 'F1', databases: ['crm'] };
    expect(failedIds(branchCreateGuards(createFacts({ setDatabases: crmOnly }), createOpts({ onlyDb: 'shop' }), ctx))).toEqual(['only-db-exists']);
    expect(failedIds(branchCreateGuards(createFacts({ setDatabases: crmOnly }), createOpts({ onlyDb: 'postgres' }), ctx))).toEqual(['only-db-exists']);
    expect(branchCreateGuards(createFacts({ setDatabases: crmOnly }), createOpts({ onlyDb: 'shop' }), ctx).find((g) => g.id === 'only-db-exists')!.check()).toMatchObject({ reason: '--only-db shop: the backup F1 of 15/app1 has no database shop' });
  });
});

describe('branch create', () => {
  it('restores from the parent stanza into the branch with archiving off, and checks isolation before the first start', () => {
    const plan = planBranchCreate(createFacts(), createOpts(), ctx);
    const text = renderPlan(plan, 0);
    expect(text).toContain('pgbackrest --stanza=app1 --set=F1 --pg1-path=/var/lib/postgresql/15/app1_dev --target-timeline=1 --archive-mode=off --repo=1 restore');
    expect(text).toContain("archive_command = 'pgbackrest --stanza=app1_dev archive-push %p'");
    const ids = plan.steps.map((s) => s.id);
    expect(ids.indexOf('verify-isolation')).toBeLessThan(ids.indexOf('start-cluster'));
    expect(ids.indexOf('create-stanza')).toBeLessThan(ids.indexOf('enable-archiving'));
    expect(ids.indexOf('enable-archiving')).toBeLessThan(ids.indexOf('check-archiving'));
    // Closed to users from right after its creation until the last step hands it over.
    expect(ids.indexOf('close-to-users')).toBe(ids.indexOf('create-cluster') + 1);
    expect(ids.at(-1)).toBe('hand-over');
    expect(plan.destructive).toBe(false);
  });
  it('nothing of the parent is stopped, reconfigured or restored into', () => {
    const plan = planBranchCreate(createFacts(), createOpts(), ctx);
    const argvs = plan.steps.flatMap((s) => [s.run, s.undo?.run]).flatMap((r) => (r && typeof r !== 'function' ? [[...r.argv]] : []));
    expect(argvs.filter((a) => a.includes('/var/lib/postgresql/15/app1') || (a.includes('app1') && ['pg_ctlcluster', 'pg_dropcluster', 'systemctl'].includes(a[0]!)))).toEqual([]);
    const restore = argvs.find((a) => a.includes('restore'))!;
    expect(restore).toContain('--pg1-path=/var/lib/postgresql/15/app1_dev');
  });
  it('refuses: unmanaged parent; parent without backup; tablespaces; --conf keys that break isolation', () => {
    expect(failedIds(branchCreateGuards(createFacts({ parent: { ...parent(), record: undefined } }), createOpts(), ctx))).toEqual(['parent-is-managed']);
    expect(failedIds(branchCreateGuards(createFacts({ parent: parent({ stanza: { ...parent().stanza!, backup: [] } }) }), createOpts(), ctx))).toEqual(['cluster-has-backup']);
    expect(failedIds(branchCreateGuards(createFacts({ parent: parent({ tablespaces: ['16384'] }) }), createOpts(), ctx))).toEqual(['parent-has-no-tablespaces']);
    const conf = { conf: { file: '/x.conf', text: "work_mem = '8MB'\nArchive_Command = 'true'\nport=1\n" } };
    const g = branchCreateGuards(createFacts({ extras: conf }), createOpts(), ctx).find((x) => x.id === 'conf-keeps-isolation')!;
    expect(g.check()).toMatchObject({ ok: false, reason: expect.stringContaining('archive_command, port') });
  });
  it('parses --conf lines', () => {
    expect(parseConfLines("# c\n\nwork_mem = '8MB'\nsearch_path='x'\n")).toEqual([
      { key: 'work_mem', line: "work_mem = '8MB'" },
      { key: 'search_path', line: "search_path='x'" },
    ]);
  });
});

describe('branch sync', () => {
  const syncFacts = (over: Partial<BranchSyncFacts> = {}): BranchSyncFacts => ({
    uid: 0, replicas: [], now: new Date('2026-11-22T06:00:00Z'), record: record('app1_dev', 'branch', 'app1'), cluster: cluster('app1_dev', 5434),
    lock: { holder: undefined, alive: false }, parent: parent(), postgres: { uid: 101, gid: 104 }, extras: {}, reflink: undefined, sessions: 1, ...over,
  });
  const o = { name: 'app1_dev', dryRun: false, yes: true, keepOnError: false, json: false };
  it('opens its plan with the downtime: about how long, and the sessions it cuts', () => {
    const sized = parent({ stanza: { ...parent().stanza!, backup: parent().stanza!.backup.map((b) => ({ ...b, info: { size: 300 * 1024 * 1024 } })) } });
    expect(planBranchSync(syncFacts({ parent: sized }), o, ctx).downtime).toBe("15/app1_dev stops for about 8 s (from the backup's 300 MB); 1 session is connected and will be cut");
  });
  it('refuses anything that is not a branch: no reversed sync', () => {
    const g = branchSyncGuards(syncFacts({ record: record('app1', 'app') }), { ...o, name: 'app1' });
    expect(g.filter((x) => !x.check().ok).map((x) => x.check())).toEqual([expect.objectContaining({ reason: expect.stringContaining('no bidirectional or reversed sync') })]);
  });
  it('preserves the branch, restores the parent to the end of its archive, resets the branch stanza', () => {
    const plan = planBranchSync(syncFacts(), o, ctx);
    expect(plan.destructive).toBe(true);
    expect(plan.steps.map((s) => s.id)).toEqual([
      'switch-wal', 'stop-cluster', 'close-to-users', 'preserve-datadir', 'create-datadir', 'restore-backup', 'verify-isolation', 'start-cluster', 'wait-promoted',
      'verify-recovery', 'verify-parent-archive', 'hand-over', 'reset-branch-stanza', 'enable-archiving', 'check-archiving', 'align-retention', 'backup-full', 'mark-backup', 'record-sync',
    ]);
    expect(renderPlan(plan, 0)).toContain('its stanza app1_dev and its backups are reset');
  });
  it('--cow (or a filesystem that shares blocks) copies the running parent into the preserved-and-emptied directory instead of restoring', () => {
    const plan = planBranchSync(syncFacts({ reflink: { ok: true, how: 'btrfs' } }), o, ctx);
    expect(plan.steps.map((s) => s.id)).toEqual([
      'stop-cluster', 'close-to-users', 'preserve-datadir', 'create-datadir', 'cow-copy', 'request-recovery', 'verify-isolation', 'start-cluster', 'wait-promoted',
      'verify-recovery', 'verify-parent-archive', 'hand-over', 'reset-branch-stanza', 'enable-archiving', 'check-archiving', 'align-retention', 'backup-full', 'mark-backup', 'record-sync',
    ]);
    expect(failedIds(branchSyncGuards(syncFacts({ reflink: { ok: false, reason: 'ext4' } }), { ...o, cow: true }))).toEqual(['filesystem-shares-blocks']);
  });
  it("the reset clears the branch's archive-push status files between stanza-delete and stanza-create (the new timeline repeats the last sync's segment names)", async () => {
    const reset = planBranchSync(syncFacts(), o, ctx).steps.find((s) => s.id === 'reset-branch-stanza')!;
    const f = fakeContext();
    f.runner.register(/ stop$/).register(/stanza-delete --force$/).register('rm -rf -- /var/spool/pgbackrest/archive/app1_dev').register(/ start$/).register(/ stanza-create$/);
    await (reset.run as (c: typeof f.ctx) => Promise<void>)(f.ctx);
    const lines = f.runner.calls.map((c) => c.argv.join(' '));
    expect(lines.findIndex((l) => l.startsWith('rm -rf'))).toBeGreaterThan(lines.findIndex((l) => l.includes('stanza-delete')));
    expect(lines.findIndex((l) => l.startsWith('rm -rf'))).toBeLessThan(lines.findIndex((l) => l.endsWith('stanza-create')));
  });
});

describe('drop order', () => {
  it('drops branches of branches first', async () => {
    const { descendants } = await import('../../../src/commands/drop/drop.js');
    const recs = [record('app1', 'app'), record('app1_dev', 'branch', 'app1'), record('app1_dev_x', 'branch', 'app1_dev'), record('app1_qa', 'branch', 'app1'), record('other', 'app')];
    expect(descendants(recs, 'app1').map((r) => r.name)).toEqual(['app1_dev_x', 'app1_dev', 'app1_qa']);
  });
});

describe('branch recover', () => {
  const lsclusters = (running: boolean) => JSON.stringify([{ version: 15, cluster: 'app1_dev', port: 5434, running: running ? 1 : 0, pgdata: '/var/lib/postgresql/15/app1_dev', configdir: '/etc/postgresql/15/app1_dev', logfile: '/l' }]);
  const journal = (command: string, data: Record<string, unknown>): Journal => ({
    format: 1, command, target: '15/app1_dev', name: 'app1_dev', rerun: 'r', pid: 99, groups: [], startedAt: 'x', steps: ['restore-backup'], at: 0, status: 'running', error: null, data,
  });

  const syncData = { version: '15', dataDir: '/var/lib/postgresql/15/app1_dev', preserved: { path: '/var/lib/postgresql/15/app1_dev.pre-sync-x', reason: 'sync', createdAt: 'x' }, online: true, previousTimeline: 1, target: null };
  const syncHost = (timeline: number) => {
    const h = fakeContext();
    h.runner.register('pg_lsclusters --json', { stdout: lsclusters(true) });
    h.runner.register(/pg_controldata/, { stdout: `Latest checkpoint's TimeLineID:       ${timeline}\n` });
    h.fs.dirs.add(syncData.preserved.path);
    return h;
  };

  it("sync: a restore that never promoted is removed and the branch's own directory goes back; not started (the sync runs again at once)", async () => {
    const { ctx } = syncHost(1);
    const r = await recoverBranchSync(ctx, journal('branch sync', syncData), syncData);
    expect(r).toMatchObject({ way: 'rolled-back' });
    expect(r.steps.map((s) => s.id)).toEqual(['stop-cluster', 'put-back-datadir', 'hand-over']);
    expect(r.steps[1]!.show).toEqual(['rm -rf /var/lib/postgresql/15/app1_dev', 'mv /var/lib/postgresql/15/app1_dev.pre-sync-x /var/lib/postgresql/15/app1_dev']);
  });

  it('sync: a restore that promoted (users may have written to it) is moved aside as preserved, never removed', async () => {
    const { ctx, fs } = syncHost(2);
    const r = await recoverBranchSync(ctx, journal('branch sync', syncData), syncData);
    const putBack = r.steps.find((s) => s.id === 'put-back-datadir')!;
    expect(putBack.show).toEqual(['mv /var/lib/postgresql/15/app1_dev /var/lib/postgresql/15/app1_dev.pre-rollback-20261122T100000Z', 'mv /var/lib/postgresql/15/app1_dev.pre-sync-x /var/lib/postgresql/15/app1_dev']);
    fs.dirs.add(syncData.dataDir);
    fs.files.set(`${ctx.paths.clustersDir}/app1_dev.json`, JSON.stringify(record('app1_dev', 'branch', 'app1')));
    await (putBack.run as (c: typeof ctx) => Promise<void>)(ctx);
    expect(fs.writes.filter((w) => w.startsWith('rm '))).toEqual([]);
    expect(fs.dirs.has('/var/lib/postgresql/15/app1_dev.pre-rollback-20261122T100000Z')).toBe(true);
    expect(JSON.parse(fs.files.get(`${ctx.paths.clustersDir}/app1_dev.json`)!).preserved).toEqual([{ path: '/var/lib/postgresql/15/app1_dev.pre-rollback-20261122T100000Z', reason: 'rollback', createdAt: '2026-11-22T10:00:00.000Z' }]);
  });

  it('create: the half-made branch is removed — cluster, files, its own stanza if made, stanza file and record', async () => {
    const { ctx, runner } = fakeContext();
    runner.register('pg_lsclusters --json', { stdout: lsclusters(false) });
    const data = { version: '15', dataDir: '/var/lib/postgresql/15/app1_dev', confDir: '/etc/postgresql/15/app1_dev', stanzaFile: '/etc/pgbackrest/conf.d/app1_dev.conf', repoPath: '/var/lib/pgbackrest', repos: [] };
    const r = await recoverBranchCreate(ctx, journal('branch create', data), data);
    expect(r.way).toBe('rolled-back');
    expect(r.steps.map((s) => s.id)).toEqual(['drop-cluster', 'remove-cluster-files', 'delete-stanza', 'remove-stanza-file']);
    expect(r.steps[0]!.run).toMatchObject({ argv: ['pg_dropcluster', '--stop', '15', 'app1_dev'] });
  });

  it('sync: from hand-over on it is finished — stanza reset, archiving, backup, record — never rolled back', async () => {
    const { ctx } = syncHost(2);
    const steps = ['stop-cluster', 'close-to-users', 'preserve-datadir', 'restore-backup', 'start-cluster', 'hand-over', 'reset-branch-stanza', 'backup-full'];
    const r = await recoverBranchSync(ctx, { ...journal('branch sync', syncData), steps, at: steps.indexOf('reset-branch-stanza') }, syncData);
    expect(r.way).toBe('finished');
    expect(r.steps.map((s) => s.id)).toEqual(['hand-over', 'reset-branch-stanza', 'enable-archiving', 'check-archiving', 'align-retention', 'backup-full', 'mark-backup', 'record-sync']);
  });
});

describe('branch create and sync killed at each step: one outcome per step', () => {
  const lsclusters = JSON.stringify([{ version: 15, cluster: 'app1_dev', port: 5434, running: 1, pgdata: '/var/lib/postgresql/15/app1_dev', configdir: '/etc/postgresql/15/app1_dev', logfile: '/l' }]);
  const host = (timeline: number) => {
    const h = fakeContext();
    h.runner.register('pg_lsclusters --json', { stdout: lsclusters });
    h.runner.register(/pg_controldata/, { stdout: `Latest checkpoint's TimeLineID:       ${timeline}\n` });
    h.fs.dirs.add('/var/lib/postgresql/15/app1_dev.pre-sync-20261122T060000Z');
    return h;
  };
  const journalOf = (command: string, plan: { steps: Array<{ id: string }>; journal?: unknown }, at: number): Journal => ({
    format: 1, command, target: '15/app1_dev', name: 'app1_dev', rerun: 'r', pid: 99, groups: [], startedAt: 'x', steps: plan.steps.map((s) => s.id), at, status: 'running', error: null,
    data: (plan.journal as { data: Record<string, unknown> }).data,
  });

  const create = planBranchCreate(createFacts(), createOpts(), ctx);
  it.each(create.steps.map((s, i) => [s.id, i] as const))('branch create killed at %s', async (step, at) => {
    const { ctx: c } = host(2);
    const j = journalOf('branch create', create, at);
    const r = await recoverBranchCreate(c, j, j.data as never);
    expect(r.way).toBe(step === 'hand-over' ? 'finished' : 'rolled-back');
  });

  const syncOpts = { name: 'app1_dev', dryRun: false, yes: true, keepOnError: false, json: false };
  const syncFacts = (): BranchSyncFacts => ({
    uid: 0, replicas: [], now: new Date('2026-11-22T06:00:00Z'), record: record('app1_dev', 'branch', 'app1'), cluster: cluster('app1_dev', 5434),
    lock: { holder: undefined, alive: false }, parent: parent(), postgres: { uid: 101, gid: 104 }, extras: {}, reflink: undefined, sessions: 1,
  });
  const sync = planBranchSync(syncFacts(), syncOpts, ctx);
  const handOverAt = sync.steps.findIndex((s) => s.id === 'hand-over');
  it.each(sync.steps.map((s, i) => [s.id, i] as const))('branch sync killed at %s', async (_step, at) => {
    // Promoted from wait-promoted on: the timeline in pg_control is above the parent's.
    const { ctx: c } = host(at > sync.steps.findIndex((s) => s.id === 'start-cluster') ? 2 : 1);
    const j = journalOf('branch sync', sync, at);
    const r = await recoverBranchSync(c, j, j.data as never);
    if (at >= handOverAt) {
      expect(r.way).toBe('finished');
      // Forward only: nothing of the branch's data is removed (the stanza reset removes only its old backups).
      expect(r.steps.filter((s) => s.effect === 'destroy').map((s) => s.id)).toEqual(['reset-branch-stanza']);
    } else {
      expect(r.way).toBe('rolled-back');
      expect(r.steps.at(-1)!.id).toBe('hand-over');
    }
  });
});
