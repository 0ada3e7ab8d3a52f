// drop and branch drop: guards and plans over gathered facts.
import { describe, expect, it } from 'vitest';
import { branchDropCommand, dropCommand, descendants, recoverDrop, type DropFacts, type DropJournal, type DropOptions } from '../../../src/commands/drop/drop.js';
import { branchRows } from '../../../src/commands/branch/list.js';
import { assemblePlan } from '../../../src/plan/command.js';
import { managedClusters } from '../../../src/host/facts.js';
import type { Journal } from '../../../src/state/journal.js';
import { fakeContext } from '../fakes.js';
import { aCluster, aRecord, planEnv } from '../fixtures.js';

const env = planEnv();
const app = aRecord('app1', { preserved: [{ path: '/var/lib/postgresql/15/app1.pre-pitr-x', reason: 'pitr', createdAt: '2026-11-22T06:00:00.000Z' }] });
const dev = aRecord('app1_dev', { role: 'branch', parent: 'app1' });
const devQa = aRecord('app1_dev_qa', { role: 'branch', parent: 'app1_dev' });
const records = [app, dev, devQa];
const free = (name: string) => ({ name, holder: undefined, alive: false });

const o = (over: Partial<DropOptions> = {}): DropOptions => ({ name: 'app1', purgeBackups: false, withBranches: false, onlyBranches: false, withReplicas: false, onlyReplicas: false, json: false, dryRun: false, yes: true, keepOnError: false, ...over });
const facts = (x: DropOptions): DropFacts => {
  const record = records.find((r) => r.name === x.name);
  const branches = record ? descendants(records, record.name) : [];
  const targets = [...(x.withBranches ? branches : []), ...(record ? [record] : [])];
  return { uid: 0, record, branches, replicas: [], running: [], ports: {}, managed: records, targets, dataDirs: Object.fromEntries(targets.map((t) => [t.name, `/var/lib/postgresql/15/${t.name}`])), locks: targets.map((t) => free(t.name)), interrupted: [], repoHosts: [], dropped: false };
};
const failed = (m: typeof dropCommand, x: DropOptions, f = facts(x)) => assemblePlan(m, f, x, env).guards.filter((g) => !g.check().ok).map((g) => g.id);

describe('drop', () => {
  it('an app with branches is refused without --with-branches, and nothing is planned', () => {
    expect(failed(dropCommand, o())).toEqual(['cluster-has-no-branches']);
    expect(assemblePlan(dropCommand, facts(o()), o(), env).steps).toEqual([]);
  });

  it('--with-branches drops the deepest branch first, then the app; backups kept, preserved directories kept', () => {
    const x = o({ withBranches: true });
    const plan = assemblePlan(dropCommand, facts(x), x, env);
    expect(plan.steps.filter((s) => s.id === 'drop-cluster').map((s) => s.show![0])).toEqual([
      '$ pg_dropcluster --stop 15 app1_dev_qa',
      '$ pg_dropcluster --stop 15 app1_dev',
      '$ pg_dropcluster --stop 15 app1',
    ]);
    expect(plan.steps.some((s) => s.id === 'delete-stanza')).toBe(false);
    expect(plan.steps.some((s) => s.title.includes('.pre-pitr-'))).toBe(false);
    expect(plan).toMatchObject({ destructive: true, typeToConfirm: 'app1', locks: ['app1', 'app1_dev_qa', 'app1_dev'] });
  });

  it('--purge-backups deletes the stanza only once the cluster is gone: a failed drop never leaves a cluster archiving into a deleted stanza', () => {
    const x = o({ name: 'app1_dev_qa', purgeBackups: true });
    expect(assemblePlan(dropCommand, facts(x), x, env).steps.map((s) => s.id)).toEqual(['drop-cluster', 'clear-archive-spool', 'remove-config', 'delete-stanza', 'remove-stanza-file', 'forget-cluster']);
  });

  it('an app with preserved data directories keeps its record, marked dropped, so list shows them and prune removes them', async () => {
    const { ctx, fs, runner } = fakeContext();
    runner.register('pg_lsclusters --json', { stdout: '[]' });
    fs.files.set(`${ctx.paths.clustersDir}/app1.json`, JSON.stringify(app));
    const x = o({ name: 'app1' });
    const f = { ...facts(x), branches: [], targets: [app] };
    const forget = assemblePlan(dropCommand, f, x, env).steps.find((s) => s.id === 'forget-cluster')!;
    await (forget.run as (c: typeof ctx) => Promise<void>)(ctx);
    const rec = JSON.parse(fs.files.get(`${ctx.paths.clustersDir}/app1.json`)!);
    expect(rec.dropped).toEqual({ at: '2026-11-22T10:00:00.000Z', dataDir: '/var/lib/postgresql/15/app1' });
    expect(rec.preserved).toEqual(app.preserved);
    expect((await managedClusters(ctx)).records).toEqual([]);
    expect((await managedClusters(ctx)).dropped.map((r) => r.name)).toEqual(['app1']);
  });

  it('backups kept: the record stays, marked dropped, so list --all shows the kept stanza and purge deletes it; with --purge-backups it goes', async () => {
    for (const [purge, kept] of [[false, true], [true, false]] as const) {
      const { ctx, fs, runner } = fakeContext();
      runner.register('pg_lsclusters --json', { stdout: '[]' });
      fs.files.set(`${ctx.paths.clustersDir}/app1_dev_qa.json`, JSON.stringify(devQa));
      const x = o({ name: 'app1_dev_qa', purgeBackups: purge });
      const forget = assemblePlan(dropCommand, facts(x), x, env).steps.find((s) => s.id === 'forget-cluster')!;
      await (forget.run as (c: typeof ctx) => Promise<void>)(ctx);
      expect(fs.files.has(`${ctx.paths.clustersDir}/app1_dev_qa.json`)).toBe(kept);
      if (kept) expect((await managedClusters(ctx)).dropped.map((r) => r.name)).toEqual(['app1_dev_qa']);
    }
  });

  it('a dropped name: "not managed", with the command that deletes what it left', () => {
    const x = o({ name: 'gone', purgeBackups: true });
    const g = assemblePlan(dropCommand, { ...facts(x), dropped: true }, x, env).guards.map((g) => g.check()).find((r) => !r.ok);
    expect(g).toMatchObject({ ok: false, reason: 'gone is not managed by pgmam', hint: expect.stringContaining('pgmam purge gone') });
  });

  it.each(assemblePlan(dropCommand, facts(o({ withBranches: true, purgeBackups: true })), o({ withBranches: true, purgeBackups: true }), env).steps.map((s, i) => [s.id, i] as const))('killed at %s (step %i): finished, never rolled back', async (_step, at) => {
    const x = o({ withBranches: true, purgeBackups: true });
    const plan = assemblePlan(dropCommand, facts(x), x, env);
    const data = (plan.journal as { data: DropJournal }).data;
    const { ctx } = fakeContext();
    const j: Journal = { format: 1, command: 'drop', target: '15/app1', name: 'app1', rerun: 'r', pid: 9, groups: [], startedAt: 'x', steps: plan.steps.map((s) => s.id), at, status: 'running', error: null, data };
    expect((await recoverDrop(ctx, j, data)).way).toBe('finished');
  });

  it('an interrupted drop is finished by its re-run: every step again, a cluster already gone is not dropped twice', async () => {
    const { ctx, runner } = fakeContext();
    runner.register('pg_lsclusters --json', { stdout: '[]' });
    const x = o({ name: 'app1_dev_qa', purgeBackups: true });
    const plan = assemblePlan(dropCommand, facts(x), x, env);
    const data = (plan.journal as { data: DropJournal }).data;
    const j: Journal = { format: 1, command: 'drop', target: '15/app1_dev_qa', name: 'app1_dev_qa', rerun: 'r', pid: 9, groups: [], startedAt: 'x', steps: plan.steps.map((s) => s.id), at: 2, status: 'running', error: null, data };
    const r = await recoverDrop(ctx, j, data);
    expect(r.way).toBe('finished');
    expect(r.steps.map((s) => s.id)).toEqual(plan.steps.map((s) => s.id));
    await (r.steps[0]!.run as (c: typeof ctx) => Promise<void>)(ctx);
    expect(runner.writes()).toEqual([]);
  });

  it('dropping a cluster whose creation failed before hand-over removes the half-made cluster, and that is the drop', async () => {
    const { ctx, runner } = fakeContext();
    runner.register('pg_lsclusters --json', { stdout: '[]' });
    const data = { version: '15', dataDir: '/var/lib/postgresql/15/app1_dev', confDir: '/etc/postgresql/15/app1_dev', stanzaFile: '/etc/pgbackrest/conf.d/app1_dev.conf', repoPath: '/var/lib/pgbackrest', repos: [] };
    const j: Journal = { format: 1, command: 'branch create', target: '15/app1_dev', name: 'app1_dev', rerun: 'r', pid: 9, groups: [], startedAt: 'x', steps: ['create-cluster', 'run-post-sql', 'hand-over'], at: 1, status: 'failed', error: 'x', data };
    const r = await recoverDrop(ctx, j, data);
    expect(r).toMatchObject({ way: 'rolled-back', finished: expect.stringContaining('half-made cluster') });
    expect(dropCommand.spec.settlesAlso?.(o())).toContain('branch create');
    // From hand-over on: handed over, then the drop goes on.
    const after = await recoverDrop(ctx, { ...j, at: 2 }, data);
    expect(after.way).toBe('finished');
    expect(after.finished).toBeUndefined();
  });

  it('a branch with an interrupted operation is refused: its own command settles it first', () => {
    const x = o({ withBranches: true });
    const f = { ...facts(x), interrupted: [{ name: 'app1_dev', what: 'interrupted branch sync at restore-backup' }] };
    expect(failed(dropCommand, x, f)).toEqual(['no-interrupted-operation']);
  });

  it('a cluster locked by a live pgmam command is refused', () => {
    const x = o({ name: 'app1_dev_qa' });
    const f = { ...facts(x), locks: [{ name: 'app1_dev_qa', holder: { pid: 7, command: 'pitr', startedAt: 'x' }, alive: true }] } as DropFacts;
    expect(failed(dropCommand, x, f)).toEqual(['cluster-is-not-locked']);
  });

  it('branch drop removes only branches; an unknown name is refused', () => {
    const x = o({ onlyBranches: true });
    expect(failed(branchDropCommand, x)).toEqual(['target-is-a-branch', 'cluster-has-no-branches']);
    expect(failed(branchDropCommand, o({ name: 'nosuch', onlyBranches: true }))).toEqual(['target-is-a-branch']);
    expect(failed(branchDropCommand, o({ name: 'app1_dev_qa', onlyBranches: true }))).toEqual([]);
  });
});

describe('branch list', () => {
  it('a branch with its parent, port and status; one whose cluster is gone is missing', () => {
    const rows = branchRows(records, [aCluster('app1'), aCluster('app1_dev', { port: 5434, running: false })]);
    expect(rows.map((r) => [r.name, r.parent, r.port, r.status])).toEqual([
      ['app1_dev', 'app1', 5434, 'down'],
      ['app1_dev_qa', 'app1_dev', null, 'missing'],
    ]);
  });
});
