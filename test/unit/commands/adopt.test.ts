// adopt's guards and plan over gathered facts: restart only when archive_mode must change.
import { type Journal } from '../../../src/state/journal.js';
import { fakeContext } from '../fakes.js';
import { describe, expect, it } from 'vitest';
import { aNewCluster, planEnv, aCluster } from '../fixtures.js';
import { adoptCommand, adoptGuards, type AdoptFacts, type AdoptOptions, recoverAdopt, resolveAdoptVersion, type AdoptJournal } from '../../../src/commands/adopt/adopt.js';
import { assemblePlan, type PlanEnv } from '../../../src/plan/command.js';
import type { HostCluster } from '../../../src/pg/clusters.js';

const env: PlanEnv = planEnv();
const cluster: HostCluster = aCluster('legacy', { port: 5440, logFile: undefined, inRecovery: false });
const facts = (over: Partial<AdoptFacts> = {}): AdoptFacts => ({
  uid: 0, now: new Date('2026-11-22T10:00:00Z'), cluster, managed: false, pgbackrestVersion: '2.45',
  settings: { archiveMode: 'off', archiveCommand: '(disabled)', walLevel: 'replica' }, pinnedInAutoConf: [], includesConfD: true, dataBytes: 30e6, interrupted: undefined,
  postgres: { uid: 101, gid: 104 }, ...aNewCluster('legacy', { port: 5440 }),
  ...over,
});
const o = (over: Partial<AdoptOptions> = {}): AdoptOptions => ({ version: '15', name: 'legacy', replaceArchiveCommand: false, json: false, dryRun: false, yes: false, keepOnError: false, ...over });
const ids = (f: AdoptFacts) => assemblePlan(adoptCommand, f, o(), env).steps.map((s) => s.id);
const failed = (f: AdoptFacts, x = o()) => adoptGuards(f, x, env).filter((g) => !g.check().ok).map((g) => g.id);

describe('adopt', () => {
  it('archive_mode off on a running cluster: one restart, so the plan is destructive (confirmation or --yes)', () => {
    const plan = assemblePlan(adoptCommand, facts(), o(), env);
    expect(plan.destructive).toBe(true);
    expect(plan.steps.map((s) => s.id)).toContain('restart-cluster');
    expect(plan.steps.find((s) => s.id === 'configure-archiving')!.undo).toBeDefined();
  });

  it('archive_mode already on: a reload, not destructive; a stopped cluster is started', () => {
    const on = facts({ settings: { archiveMode: 'on', archiveCommand: '(disabled)', walLevel: 'replica' } });
    expect(assemblePlan(adoptCommand, on, o(), env).destructive).toBe(false);
    expect(ids(on)).toContain('reload-cluster');
    expect(ids(facts({ cluster: { ...cluster, running: false } }))).toContain('start-cluster');
  });

  it('refuses an archive_command that sends WAL elsewhere (unless replaced), pinned settings, wal_level minimal — all at once', () => {
    const f = facts({ settings: { archiveMode: 'on', archiveCommand: 'cp %p /mnt/%f', walLevel: 'minimal' }, pinnedInAutoConf: ["archive_mode = 'on'"] });
    expect(failed(f)).toEqual(['archive-command-is-free', 'archive-settings-not-pinned', 'wal-level-allows-archiving']);
    expect(failed(f, o({ replaceArchiveCommand: true }))).toEqual(['archive-settings-not-pinned', 'wal-level-allows-archiving']);
  });

  it('an unknown or already managed cluster: nothing else checked', () => {
    expect(failed(facts({ cluster: undefined }))).toEqual(['cluster-exists']);
    expect(failed(facts({ managed: true }))).toEqual(['cluster-is-not-managed']);
  });
});

describe('an interrupted adopt', () => {
  const every = assemblePlan(adoptCommand, facts(), o({ yes: true }), env).steps.map((s, i) => [s.id, i] as const);
  it.each(every)('killed before %s: finished from that step on, never rolled back (the cluster is the user’s)', async (_step, at) => {
    const plan = assemblePlan(adoptCommand, facts(), o({ yes: true }), env);
    const data = (plan.journal as { data: AdoptJournal }).data;
    const steps = plan.steps.map((s) => s.id);
    const { ctx } = fakeContext();
    const j: Journal = { format: 1, command: 'adopt', target: '15/legacy', name: 'legacy', rerun: 'r', pid: 9, groups: [], startedAt: 'x', steps, at, status: 'running', error: null, data };
    const r = await recoverAdopt(ctx, j, data);
    expect(r.way).toBe('finished');
    expect(r.steps.map((s) => s.id)).toEqual(steps.slice(at));
    expect(r.steps.filter((s) => s.effect === 'destroy')).toEqual([]);
  });
});

describe('adopt: a bare name', () => {
  const ls = (versions: number[]) => JSON.stringify(versions.map((v) => ({ version: v, cluster: 'legacy', port: 5440 + v, running: 1, pgdata: `/var/lib/postgresql/${v}/legacy`, configdir: `/etc/postgresql/${v}/legacy`, logfile: '/l' })));
  it('is the one cluster of that name on the host', async () => {
    const { ctx, runner } = fakeContext();
    runner.register('pg_lsclusters --json', { stdout: ls([15]) });
    expect(await resolveAdoptVersion(ctx, { version: undefined, name: 'legacy' })).toEqual({ version: '15', name: 'legacy' });
  });
  it('two versions of it, or none: a usage error that names them', async () => {
    const { ctx, runner } = fakeContext();
    runner.register('pg_lsclusters --json', { stdout: ls([15, 16]) });
    await expect(resolveAdoptVersion(ctx, { version: undefined, name: 'legacy' })).rejects.toMatchObject({ exitCode: 2, message: 'legacy names 15/legacy and 16/legacy: say which, e.g. pgmam adopt 15/legacy' });
    const none = fakeContext();
    none.runner.register('pg_lsclusters --json', { stdout: '[]' });
    await expect(resolveAdoptVersion(none.ctx, { version: undefined, name: 'legacy' })).rejects.toMatchObject({ exitCode: 2 });
  });
});
