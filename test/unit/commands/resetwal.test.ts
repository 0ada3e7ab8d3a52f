// resetwal's guards, plan and recovery over gathered facts.
import { nextSegment } from '../../../src/pg/controldata.js';
import { describe, expect, it } from 'vitest';
import { recoverResetwal, resetwalCommand, resetwalGuards, type ResetwalFacts, type ResetwalOptions } from '../../../src/commands/resetwal/resetwal.js';
import { assemblePlan, type PlanEnv } from '../../../src/plan/command.js';
import type { Journal } from '../../../src/state/journal.js';
import { fakeContext } from '../fakes.js';
import { aCluster, aRecord, planEnv } from '../fixtures.js';

const env: PlanEnv = planEnv();
const cluster = aCluster('app1', { running: false });
const record = aRecord();
const facts = (over: Partial<ResetwalFacts> = {}): ResetwalFacts => ({
  uid: 0, now: new Date('2026-11-22T10:00:00Z'), record, cluster, lock: { holder: undefined, alive: false },
  lastStart: { failed: true, line: 'PANIC:  could not locate a valid checkpoint record' }, force: true, preview: 'Latest checkpoint location: 0/1000028', archiveMax: undefined, sizeBytes: 40e6, freeBytes: 10e9, replicas: [], postgres: undefined, ...over,
});
const o: ResetwalOptions = { name: 'app1', json: false, dryRun: false, yes: true, keepOnError: false };
const failed = (f: ResetwalFacts) => resetwalGuards(f, o, env).filter((g) => !g.check().ok).map((g) => g.id);

describe('resetwal', () => {
  it('copies first, then resets (forced after an unclean stop), starts, takes a new full backup; type-to-confirm', () => {
    const plan = assemblePlan(resetwalCommand, facts(), o, env);
    expect(plan.steps.map((s) => s.id)).toEqual(['copy-datadir', 'reset-wal', 'start-cluster', 'wait-promoted', 'align-retention', 'backup-full', 'mark-backup', 'check-archiving']);
    expect(plan.steps[1]!.run).toMatchObject({ argv: ['/usr/lib/postgresql/15/bin/pg_resetwal', '-f', '/var/lib/postgresql/15/app1'] });
    expect(plan).toMatchObject({ destructive: true, typeToConfirm: 'app1', journal: { data: { copy: { path: '/var/lib/postgresql/15/app1.pre-resetwal-20261122T100000Z' } } } });
  });

  it('refuses a running cluster, one whose last start did not fail, and too little room for the copy', () => {
    expect(failed(facts())).toEqual([]);
    expect(failed(facts({ cluster: { ...cluster, running: true } }))).toEqual(['cluster-is-stopped']);
    expect(failed(facts({ lastStart: { failed: false } }))).toEqual(['last-start-failed']);
    expect(failed(facts({ freeBytes: 41e6 }))).toEqual(['enough-disk']);
  });

  const journal = (at: number): Journal => ({
    format: 1, command: 'resetwal', target: '15/app1', name: 'app1', rerun: 'pgmam resetwal app1 --yes', pid: 99, groups: [], startedAt: 'x',
    steps: ['copy-datadir', 'reset-wal', 'start-cluster', 'wait-promoted', 'align-retention', 'backup-full', 'mark-backup', 'check-archiving'], at, status: 'running', error: null, data: {},
  });
  const data = { version: '15', dataDir: '/var/lib/postgresql/15/app1', copy: { path: '/var/lib/postgresql/15/app1.pre-resetwal-x', reason: 'resetwal', createdAt: 'x' } };
  const host = () => {
    const h = fakeContext();
    h.runner.register('pg_lsclusters --json', { stdout: JSON.stringify([{ version: 15, cluster: 'app1', port: 5433, running: 0, pgdata: cluster.dataDir, configdir: cluster.configDir, logfile: cluster.logFile }]) });
    return h;
  };

  it('recover: killed during the copy, the unfinished copy goes (the data directory was not touched)', async () => {
    const r = await recoverResetwal(host().ctx, journal(0), data);
    expect(r.way).toBe('rolled-back');
    expect(r.steps.map((s) => s.id)).toEqual(['remove-unfinished-copy']);
  });

  it('recover: killed at pg_resetwal, it is run again (forced) and the run finished; later, only finished', async () => {
    const atReset = await recoverResetwal(host().ctx, journal(1), data);
    expect(atReset).toMatchObject({ way: 'finished' });
    expect(atReset.steps.map((s) => s.id)).toEqual(['record-copy', 'reset-wal', 'start-cluster', 'wait-promoted', 'align-retention', 'backup-full', 'mark-backup', 'check-archiving']);
    const later = await recoverResetwal(host().ctx, journal(4), data);
    expect(later.steps.map((s) => s.id)).toEqual(['record-copy', 'start-cluster', 'wait-promoted', 'align-retention', 'backup-full', 'mark-backup', 'check-archiving']);
  });

  it.each(assemblePlan(resetwalCommand, facts(), o, env).steps.map((s, at) => [s.id, at] as const))('killed at %s (step %i): one outcome — the unfinished copy removed before pg_resetwal, finished from it on', async (_step, at) => {
    const steps = assemblePlan(resetwalCommand, facts(), o, env).steps.map((s) => s.id);
    const r = await recoverResetwal(host().ctx, { ...journal(at), steps }, data);
    expect(r.way).toBe(at <= steps.indexOf('copy-datadir') ? 'rolled-back' : 'finished');
    // The data directory is never removed: only the run's own unfinished copy.
    expect(r.steps.filter((s) => s.effect === 'destroy' && s.id !== 'reset-wal').map((s) => s.id)).toEqual(at <= steps.indexOf('copy-datadir') ? ['remove-unfinished-copy'] : []);
  });

  it('the archive ahead of pg_wal: the reset starts after the archive\'s newest segment (-l), so archiving can go on', () => {
    const preview = 'Latest checkpoint location: 0/1000028\nFirst log segment after reset:        000000010000000000000003\n';
    const ahead = assemblePlan(resetwalCommand, facts({ preview, archiveMax: '000000010000000000000004' }), o, env);
    expect(ahead.steps.find((s) => s.id === 'reset-wal')!.run).toMatchObject({ argv: expect.arrayContaining(['-l', '000000010000000000000005']) });
    expect(ahead.journal).toMatchObject({ data: { nextWal: '000000010000000000000005' } });
    const behind = assemblePlan(resetwalCommand, facts({ preview, archiveMax: '000000010000000000000002' }), o, env);
    expect(behind.steps.find((s) => s.id === 'reset-wal')!.run).toMatchObject({ argv: expect.not.arrayContaining(['-l']) });
  });

  it.each([
    ['000000010000000000000004', '000000010000000000000005'],
    ['0000000100000000000000FF', '000000010000000100000000'],
  ])('the segment after %s is %s', (wal, next) => expect(nextSegment(wal)).toBe(next));
});
