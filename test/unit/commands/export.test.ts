import { describe, expect, it } from 'vitest';
import { writeJournal } from '../../../src/state/journal.js';
import { RefusedError } from '../../../src/errors.js';
import { expiredExports, exportStamp, exportTargetCommand, recoverExport, tierOf, type ExportFacts, type ExportTargetOptions } from '../../../src/commands/export/export.js';
import type { HostCluster } from '../../../src/pg/clusters.js';
import { assemblePlan, type PlanEnv, runCommand } from '../../../src/plan/command.js';
import type { Journal } from '../../../src/state/journal.js';
import type { ManagedCluster } from '../../../src/state/store.js';
import { fakeContext } from '../fakes.js';
import { planEnv, aCluster, aRecord } from '../fixtures.js';
import { lastStartFailed } from '../../../src/commands/resetwal/resetwal.js';

describe('export tiers and retention', () => {
  it('the 1st is monthly, a Saturday weekly, any other day daily (UTC)', () => {
    expect(tierOf(new Date('2026-11-01T10:00:00Z'))).toBe('monthly');
    expect(tierOf(new Date('2026-11-21T10:00:00Z'))).toBe('weekly');
    expect(tierOf(new Date('2026-11-22T10:00:00Z'))).toBe('daily');
    expect(exportStamp(new Date('2026-11-22T10:11:12.345Z'))).toBe('20261122T101112Z');
  });
  it('removes exactly the exports past their tier\'s keep time, never the newest, never foreign names', () => {
    const now = new Date('2026-11-22T00:00:00Z');
    const keep = { daily: 7 * 86400, weekly: 30 * 86400, monthly: 365 * 86400 };
    const names = ['20261114T000000Z-daily', '20261116T000000Z-daily', '20261020T000000Z-weekly', '20261101T000000Z-weekly', '20251101T000000Z-monthly', '20260101T000000Z-monthly', '20261114T000000Z-daily-2', 'notes', '20261122T000000Z-daily'];
    expect(expiredExports(names, now, keep, '20261122T000000Z-daily').sort()).toEqual(['20251101T000000Z-monthly', '20261020T000000Z-weekly', '20261114T000000Z-daily', '20261114T000000Z-daily-2']);
  });
});

describe('resetwal: did the last start fail?', () => {
  const started = '2026-11-22 06:57:19.062 UTC [18831] LOG:  starting PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64';
  it('a PANIC after the last start', () => {
    expect(lastStartFailed([started, '... LOG:  invalid primary checkpoint record', '... PANIC:  could not locate a valid checkpoint record', '... LOG:  database system is shut down'].join('\n'))).toMatchObject({ failed: true });
  });
  it('an earlier failure followed by a good start is not a failed start', () => {
    expect(lastStartFailed([started, '... FATAL:  boom', started, '... LOG:  database system is ready to accept connections'].join('\n'))).toEqual({ failed: false });
  });
  it('no start in the log', () => expect(lastStartFailed('')).toEqual({ failed: false }));
});

describe('export of one target (the batch runs one plan per cluster)', () => {
  const env: PlanEnv = planEnv();
  const record: ManagedCluster = aRecord('app1');
  const cluster: HostCluster = aCluster('app1');
  const facts = (over: Partial<ExportFacts> = {}): ExportFacts => ({
    uid: 0, now: new Date('2026-11-22T10:00:00Z'), record, cluster, owner: { uid: 101, gid: 104 }, databases: [{ name: 'postgres', size: 8e6 }, { name: 'shop', size: 20e6 }],
    dir: '/x/app1/20261122T100000Z-daily', existing: [], freeBytes: 10e9, ...over,
  });
  const o = (format: 'dump' | 'basebackup'): ExportTargetOptions => ({ name: 'app1', to: '/x', format, json: false, dryRun: false, yes: true, keepOnError: false });

  it('a dump per database plus the globals, then the manifest and the expired ones; the directory is undone on failure', () => {
    const plan = assemblePlan(exportTargetCommand, facts(), o('dump'), env);
    expect(plan.steps.map((s) => s.id)).toEqual(['create-export-dir', 'dump-globals', 'dump-database', 'dump-database', 'write-manifest', 'remove-expired-exports']);
    expect(plan.steps[0]!.undo?.title).toBe('remove the unfinished /x/app1/20261122T100000Z-daily');
    expect(plan).toMatchObject({ locks: ['app1'], journal: { data: { dir: '/x/app1/20261122T100000Z-daily' } } });
    expect(assemblePlan(exportTargetCommand, facts(), o('basebackup'), env).steps.map((s) => s.id)).toEqual(['create-export-dir', 'base-backup', 'write-manifest', 'remove-expired-exports']);
  });

  it('refuses a stopped cluster and a target without room', () => {
    const failed = (f: ExportFacts) => assemblePlan(exportTargetCommand, f, o('dump'), env).guards.filter((g) => !g.check().ok).map((g) => g.id);
    expect(failed(facts({ cluster: { ...cluster, running: false }, databases: [] }))).toEqual(['cluster-is-running']);
    expect(failed(facts({ freeBytes: 30e6 }))).toEqual(['enough-disk']);
  });

  it('recover: an interrupted export leaves only its own unfinished directory, which goes', async () => {
    const r = await recoverExport(fakeContext().ctx, {} as Journal, { dir: '/x/app1/20261122T100000Z-daily' });
    expect(r).toMatchObject({ way: 'rolled-back', steps: [{ id: 'remove-unfinished-export', show: ['rm -rf /x/app1/20261122T100000Z-daily'] }] });
  });
});

describe('every command refuses a cluster with an interrupted operation it does not own', () => {
  it('export', async () => {
    const h = fakeContext();
    await writeJournal(h.fs, h.ctx.paths.stateDir, { format: 1, command: 'pitr', target: '15/app1', name: 'app1', rerun: "pgmam pitr app1 --to '…' --yes", pid: 99, groups: [], startedAt: 'x', steps: ['restore-backup'], at: 0, status: 'running', error: null, data: {} });
    const err = (await runCommand(h.ctx, exportTargetCommand, { name: 'app1', to: '/x', format: 'dump', json: false, dryRun: false, yes: true, keepOnError: false }).catch((e: unknown) => e)) as RefusedError;
    expect(err).toBeInstanceOf(RefusedError);
    expect(err.failures.map((f) => f.id)).toEqual(['no-interrupted-operation']);
    expect(err.failures[0]!.hint).toContain('pgmam pitr app1');
    expect(h.runner.calls).toEqual([]);
  });
});
