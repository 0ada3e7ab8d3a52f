// pitr's guards and plans over gathered facts (no cluster needed).
import { type RestoreJournal } from '../../../src/restore/recovery.js';
import { describe, expect, it } from 'vitest';
import { pitrCommand, pitrGuards, recoverPitr, type PitrFacts, type PitrOptions } from '../../../src/commands/pitr/pitr.js';
import { RefusedError } from '../../../src/errors.js';
import { assemblePlan, runCommand, type PlanEnv } from '../../../src/plan/command.js';
import { renderPlan } from '../../../src/plan/render.js';
import { parseTarget } from '../../../src/restore/target.js';
import { parseHistory } from '../../../src/restore/timeline.js';
import type { Journal } from '../../../src/state/journal.js';
import { fakeContext } from '../fakes.js';
import { aCluster, aRecord, planEnv } from '../fixtures.js';

const cluster = aCluster();
const record = aRecord();
const at = (iso: string) => Date.parse(iso) / 1000;

function facts(over: Partial<PitrFacts> = {}): PitrFacts {
  return {
    uid: 0,
    now: new Date('2026-11-22T06:00:00Z'),
    record,
    cluster,
    sessions: 3,
    lock: { holder: undefined, alive: false },
    signalFiles: [],
    server: { inRecovery: false, timeline: 1 },
    control: { systemId: '7710859106177468397', state: 'in production', timeline: 1 },
    stanza: {
      name: 'app1',
      status: { code: 0, message: 'ok' },
      archive: [{ id: '15-1', min: '000000010000000000000001', max: '000000010000000000000009' }],
      backup: [
        { label: '20261122-050000F', type: 'full', archive: { start: '000000010000000000000002', stop: '000000010000000000000003' }, lsn: { start: '0/2000028', stop: '0/3000050' }, timestamp: { start: at('2026-11-22T04:59:58Z'), stop: at('2026-11-22T05:00:00Z') }, info: { size: 1000 } },
        { label: '20261122-053000F', type: 'full', archive: { start: '000000010000000000000006', stop: '000000010000000000000006' }, lsn: { start: '0/6000028', stop: '0/6000100' }, timestamp: { start: at('2026-11-22T05:29:58Z'), stop: at('2026-11-22T05:30:00Z') }, info: { size: 1000 } },
      ],
      db: [{ id: 1, 'system-id': '7710859106177468397', version: '15' }],
    },
    stanzaProblem: undefined,
    stanzaFile: { dataDir: cluster.dataDir, port: 5433 },
    currentTimeline: 1,
    history: [],
    historySource: 'none',
    archivedAt: new Date('2026-11-22T05:59:00Z'),
    repo: { name: 'local', index: 1, why: 'the local repository covers it' },
    repoProblem: undefined,
    freeBytes: 10 * 1024 ** 3,
    undoSource: undefined,
    tablespaces: [],
    postgres: { uid: 101, gid: 104 },
    replicas: [],
    ...over,
  };
}

const to = (t: string): PitrOptions => ({ ref: { version: undefined, name: 'app1' }, mode: { kind: 'time', target: parseTarget(t) }, dryRun: false, yes: true, keepOnError: false, json: false });
const env: PlanEnv = planEnv();
const planPitr = (f: PitrFacts, o: PitrOptions) => assemblePlan(pitrCommand, f, o, env);
const failed = (f: PitrFacts, o: PitrOptions) => pitrGuards(f, o, 256).map((g) => [g.id, g.check()] as const).filter(([, r]) => !r.ok);

describe('pitr: downtime said plainly', () => {
  it('the plan opens with how long and how many sessions it cuts; from the last drill when the app has one', () => {
    const o = { ref: { name: 'app1' }, mode: { kind: 'latest' as const }, dryRun: false, yes: true, keepOnError: false, json: false } as unknown as PitrOptions;
    const p = assemblePlan(pitrCommand, facts(), o, planEnv());
    expect(renderPlan(p, 0).split('\n')[0]).toBe("downtime: 15/app1 stops for about 6 s (from the backup's 0 MB); 3 sessions are connected and will be cut");
    const run = { at: 'x', ok: true, rtoSeconds: 41.2, rpoSeconds: 0, rpoBytes: 0, lostTransactions: 0, lastReplayedAt: null, backup: 'F', repo: 'local', failedStep: null, error: null };
    const drilled = { ...record, drill: { last: run, lastOk: run } };
    expect(assemblePlan(pitrCommand, facts({ record: drilled }), o, planEnv()).downtime).toBe('15/app1 stops for about 42 s (its last restore drill took 41.2 s); 3 sessions are connected and will be cut');
  });
});

describe('pitr guards', () => {
  it('all pass for a target inside the window', () => expect(failed(facts(), to('2026-11-22 05:45:00+00'))).toEqual([]));

  it.each([
    ['in the future', '2026-11-22 07:00:00+00', 'target-is-not-in-the-future'],
    ["before the first backup's end", '2026-11-22 04:00:00+00', 'target-is-in-recovery-window'],
    ["in the same second as the first backup's end", '2026-11-22 05:00:00.9+00', 'target-is-in-recovery-window'],
  ])('a target %s is refused', (_what, t, id) => {
    expect(failed(facts(), to(t)).map(([g]) => g)).toEqual([id]);
  });

  it('chooses the newest set that ends before the target and passes it explicitly', () => {
    const plan = planPitr(facts(), to('2026-11-22 05:30:01+00'));
    const text = renderPlan(plan, 0);
    expect(text).toContain('--set=20261122-053000F --type=time --target-action=promote');
    expect(text).toContain('--target-timeline=1');
    const early = renderPlan(planPitr(facts(), to('2026-11-22 05:30:00.5+00')), 0);
    expect(early).toContain('--set=20261122-050000F');
  });

  it('from an attached repository: --repo=N on the restore, the step says which and why, the local stanza made again before the full backup', () => {
    const plan = planPitr(facts({ repo: { name: 'offsite', index: 2, why: 'only repository offsite covers it' } }), to('2026-11-22 05:30:01+00'));
    const restore = plan.steps.find((x) => x.id === 'restore-backup')!;
    expect(restore.title).toContain('from repository offsite (repo2): only repository offsite covers it');
    expect(renderPlan(plan, 0)).toContain('--target-timeline=1 --repo=2 restore');
    const ids = plan.steps.map((x) => x.id);
    expect(ids.indexOf('create-local-stanza')).toBeGreaterThan(ids.indexOf('hand-over'));
    expect(ids.indexOf('create-local-stanza')).toBeLessThan(ids.indexOf('backup-full'));
    expect(plan.journal && plan.journal.data).toMatchObject({ fromRepo: 2 });
    // From the local one: none of that.
    expect(planPitr(facts(), to('2026-11-22 05:30:01+00')).steps.map((x) => x.id)).not.toContain('create-local-stanza');
  });

  it('a stopped cluster: no WAL switch, and no target after the newest archived WAL', () => {
    const stopped = facts({ cluster: { ...cluster, running: false }, server: undefined });
    expect(failed(stopped, to('2026-11-22 05:59:30+00')).map(([g]) => g)).toEqual(['target-is-in-recovery-window']);
    const plan = planPitr(stopped, to('2026-11-22 05:45:00+00'));
    expect(plan.steps.map((s) => s.id)).toEqual(['close-to-users', 'preserve-datadir', 'create-datadir', 'restore-backup', 'start-cluster', 'wait-promoted', 'verify-recovery', 'record-timeline', 'hand-over', 'align-retention', 'backup-full', 'mark-backup', 'check-archiving']);
  });

  it('refuses standby.signal, recovery, another cluster\'s stanza and a live lock — all at once', () => {
    const f = facts({
      signalFiles: ['standby.signal'],
      control: { systemId: '1', state: 'in production', timeline: 1 },
      stanzaFile: { dataDir: '/var/lib/postgresql/15/other', port: 5499 },
      lock: { holder: { pid: 7, command: 'pitr', startedAt: 'x' }, alive: true },
    });
    const ids = failed(f, to('2026-11-22 05:45:00+00')).map(([g]) => g);
    expect(ids).toEqual(['cluster-is-not-locked', 'cluster-is-not-in-recovery', 'stanza-is-this-clusters']);
    const reason = failed(f, to('2026-11-22 05:45:00+00')).find(([g]) => g === 'stanza-is-this-clusters')![1];
    expect(reason).toMatchObject({ reason: expect.stringContaining('system identifier') });
  });

  it('an unmanaged or unknown cluster: one line, nothing else checked', () => {
    expect(failed(facts({ record: undefined }), to('2026-11-22 05:45:00+00')).map(([g]) => g)).toEqual(['cluster-is-managed']);
  });

  it('a target only an abandoned timeline covers is refused; backups of the abandoned timeline are not used', () => {
    const f = facts({
      currentTimeline: 2,
      server: { inRecovery: false, timeline: 2 },
      history: parseHistory('1\t0/4000000\tbefore 2026-11-22 05:20:00+00\n'),
      historySource: 'archive',
      record: { ...record, timelines: [{ timeline: 2, parent: 1, target: '2026-11-22T05:20:00.000Z', promotedAt: '2026-11-22T05:40:00.000Z' }] },
    });
    expect(failed(f, to('2026-11-22 05:35:00+00')).map(([g]) => g)).toEqual(['target-is-on-current-timeline']);
    // 05:50 is after the promotion: served from the first backup (timeline 1, before the fork), not the one after the fork.
    const plan = renderPlan(planPitr(f, to('2026-11-22 05:50:00+00')), 0);
    expect(plan).toContain('--set=20261122-050000F');
    expect(plan).toContain('--target-timeline=2');
  });

  it('a missing history file of the current timeline is put back into the archive before anything stops', () => {
    const base = facts();
    const onTimeline2 = { label: '20261122-055000F', type: 'full' as const, archive: { start: '000000020000000000000008', stop: '000000020000000000000008' }, lsn: { start: '0/8000028', stop: '0/8000100' }, timestamp: { start: at('2026-11-22T05:49:58Z'), stop: at('2026-11-22T05:50:00Z') }, info: { size: 1000 } };
    const stanza = { ...base.stanza!, archive: [{ id: '15-1', min: '000000010000000000000001', max: '000000020000000000000009' }], backup: [...base.stanza!.backup, onTimeline2] };
    const f = facts({ currentTimeline: 2, server: { inRecovery: false, timeline: 2 }, control: { ...base.control!, timeline: 2 }, historySource: 'pg_wal', stanza });
    const plan = planPitr(f, { ...to('2026-11-22 05:55:00+00') });
    expect(plan.steps[0]!.id).toBe('archive-timeline-history');
    expect(failed({ ...f, historySource: 'missing' }, to('2026-11-22 05:55:00+00')).map(([g]) => g)).toContain('timeline-history-is-available');
  });

  it('a refused pitr runs nothing', async () => {
    const { ctx, runner, fs } = fakeContext();
    const f = facts({ signalFiles: ['standby.signal'] });
    await expect(runCommand(ctx, { ...pitrCommand, gather: async () => f }, to('2026-11-22 05:45:00+00'))).rejects.toBeInstanceOf(RefusedError);
    expect(runner.calls).toEqual([]);
    expect(fs.writes).toEqual([]);
  });
});

describe('pitr edge cases', () => {
  it('a cluster with tablespaces outside its data directory is refused', () => {
    expect(failed(facts({ tablespaces: ['16384'] }), to('2026-11-22 05:45:00+00')).map(([g]) => g)).toEqual(['cluster-has-no-tablespaces']);
  });

  it('--latest of a stopped cluster copies the WAL it had not archived into the restored pg_wal before the first start', () => {
    const latest: PitrOptions = { ...to('2026-11-22 05:45:00+00'), mode: { kind: 'latest' } };
    const stopped = planPitr(facts({ cluster: { ...cluster, running: false }, server: undefined }), latest).steps.map((s) => s.id);
    expect(stopped.indexOf('copy-unarchived-wal')).toBe(stopped.indexOf('restore-backup') + 1);
    expect(stopped.indexOf('copy-unarchived-wal')).toBeLessThan(stopped.indexOf('start-cluster'));
    // Running: its WAL is switched and archived first; nothing to copy.
    expect(planPitr(facts(), latest).steps.map((s) => s.id)).not.toContain('copy-unarchived-wal');
  });
});

describe('pitr recover', () => {
  const preserved = { path: '/var/lib/postgresql/15/app1.pre-pitr-20261122T060000Z', reason: 'pitr', createdAt: '2026-11-22T06:00:00.000Z' };
  const data = { version: '15', dataDir: '/var/lib/postgresql/15/app1', preserved, online: true, previousTimeline: 1, target: '2026-11-22T05:45:00.000Z' };
  const journal = (over: Partial<Journal> = {}): Journal => ({
    format: 1, command: 'pitr', target: '15/app1', name: 'app1', rerun: "pgmam pitr app1 --to '…' --yes", pid: 99, groups: [], startedAt: 'x',
    steps: ['switch-wal', 'stop-cluster', 'preserve-datadir', 'create-datadir', 'restore-backup', 'start-cluster'], at: 4, status: 'running', error: null, data, ...over,
  });
  const host = (running: boolean, timeline: number) => {
    const h = fakeContext();
    h.runner.register('pg_lsclusters --json', { stdout: JSON.stringify([{ version: 15, cluster: 'app1', port: 5433, running: running ? 1 : 0, pgdata: data.dataDir, configdir: '/etc/postgresql/15/app1', logfile: '/l' }]) });
    h.runner.register(/pg_controldata/, { stdout: `Database cluster state:               shut down\nLatest checkpoint's TimeLineID:       ${timeline}\n` });
    return h;
  };

  const steps = ['switch-wal', 'stop-cluster', 'close-to-users', 'preserve-datadir', 'create-datadir', 'restore-backup', 'start-cluster', 'wait-promoted', 'verify-recovery', 'record-timeline', 'hand-over', 'align-retention', 'backup-full', 'mark-backup', 'check-archiving'];
  const at = (step: string) => ({ steps, at: steps.indexOf(step) });

  it('before hand-over, a restore that has not promoted is rolled back: the unfinished restore goes, the preserved directory comes back, the cluster starts as it was, open again', async () => {
    const { ctx, fs } = host(false, 1);
    fs.dirs.add(preserved.path);
    const r = await recoverPitr(ctx, journal(at('start-cluster')), data);
    expect(r.way).toBe('rolled-back');
    expect(r.steps.map((s) => s.id)).toEqual(['put-back-datadir', 'start-cluster', 'hand-over']);
  });

  it('killed before the move: nothing to put back; a running restore is stopped first', async () => {
    const { ctx } = host(true, 1);
    const r = await recoverPitr(ctx, journal(at('preserve-datadir')), data);
    expect(r.steps.map((s) => s.id)).toEqual(['stop-cluster', 'start-cluster', 'hand-over']);
  });

  it('before hand-over, a restore that promoted is moved aside as preserved, never removed', async () => {
    const { ctx, fs } = host(true, 2);
    fs.dirs.add(preserved.path);
    const r = await recoverPitr(ctx, journal(at('record-timeline')), data);
    expect(r.way).toBe('rolled-back');
    expect(r.steps.filter((s) => s.effect === 'destroy')).toEqual([]);
    expect(r.steps.find((s) => s.id === 'put-back-datadir')!.show![0]).toMatch(/^mv \/var\/lib\/postgresql\/15\/app1 \/var\/lib\/postgresql\/15\/app1\.pre-rollback-/);
  });

  it.each(['hand-over', 'backup-full', 'mark-backup', 'check-archiving'])('from hand-over on it is finished, never rolled back (killed before %s)', async (step) => {
    const { ctx } = host(true, 2);
    const r = await recoverPitr(ctx, journal(at(step)), data);
    expect(r.way).toBe('finished');
    expect(r.steps.map((s) => s.id)).toEqual(['hand-over', 'align-retention', 'backup-full', 'mark-backup', 'check-archiving']);
    expect(r.finished).toMatch(/interrupted pitr is finished/);
  });

  it('an interrupted --undo before hand-over: the directory it put back returns to its preserved place, the one it moved aside comes back; nothing removed', async () => {
    const { ctx, fs } = host(true, 2);
    const source = { path: '/var/lib/postgresql/15/app1.pre-pitr-20261122T050000Z', reason: 'pitr', createdAt: 'x' };
    const aside = { path: '/var/lib/postgresql/15/app1.pre-undo-20261122T060000Z', reason: 'pitr-undo', createdAt: 'x' };
    fs.dirs.add(aside.path);
    fs.dirs.add(data.dataDir);
    fs.files.set(`${ctx.paths.clustersDir}/app1.json`, JSON.stringify(aRecord('app1', { preserved: [aside] })));
    const undoData = { ...data, preserved: aside, source };
    const r = await recoverPitr(ctx, journal({ command: 'pitr --undo', data: undoData, ...at('wait-promoted') }), undoData);
    expect(r.way).toBe('rolled-back');
    expect(r.steps.map((s) => s.id)).toEqual(['stop-cluster', 'put-back-datadir', 'start-cluster', 'hand-over']);
    await (r.steps[1]!.run as (c: typeof ctx) => Promise<void>)(ctx);
    expect(fs.writes.filter((w) => w.startsWith('rm '))).toEqual([]);
    expect(fs.dirs.has(source.path) && fs.dirs.has(data.dataDir) && !fs.dirs.has(aside.path)).toBe(true);
    expect(JSON.parse(fs.files.get(`${ctx.paths.clustersDir}/app1.json`)!).preserved).toEqual([source]);
  });

  it('pitr --undo settles an interrupted pitr before hand-over by rolling it back, and that is the whole undo', async () => {
    const { ctx, fs } = host(true, 1);
    fs.dirs.add(preserved.path);
    const undo: PitrOptions = { ...to('2026-11-22 05:45:00+00'), mode: { kind: 'undo' } };
    const r = await recoverPitr(ctx, journal(at('wait-promoted')), data, undo);
    expect(r.way).toBe('rolled-back');
    expect(r.finished).toMatch(/rolled back/);
    expect(pitrCommand.spec.settlesAlso?.(undo)).toEqual(['pitr']);
  });
});

describe('pitr and --undo killed at each step: one outcome per step', () => {
  const host = (timeline: number) => {
    const h = fakeContext();
    h.runner.register('pg_lsclusters --json', { stdout: JSON.stringify([{ version: 15, cluster: 'app1', port: 5433, running: 1, pgdata: '/var/lib/postgresql/15/app1', configdir: '/etc/postgresql/15/app1', logfile: '/l' }]) });
    h.runner.register(/pg_controldata/, { stdout: `Latest checkpoint's TimeLineID:       ${timeline}\n` });
    return h;
  };
  const cases = [
    ['pitr', planPitr(facts(), to('2026-11-22 05:45:00+00'))],
    ['pitr --undo', planPitr(facts({ undoSource: { preserved: { path: '/var/lib/postgresql/15/app1.pre-pitr-x', reason: 'pitr', createdAt: 'x' }, timeline: 1 } as PitrFacts['undoSource'] }), { ...to('2026-11-22 05:45:00+00'), mode: { kind: 'undo' } })],
  ] as const;
  for (const [command, plan] of cases) {
    const ids = plan.steps.map((s) => s.id);
    const handOverAt = ids.indexOf('hand-over');
    it.each(ids.map((s, i) => [s, i] as const))(`${command} killed at %s`, async (_step, at) => {
      const { ctx } = host(at > ids.indexOf('start-cluster') ? 2 : 1);
      const data = (plan.journal as { data: RestoreJournal }).data;
      const j: Journal = { format: 1, command, target: '15/app1', name: 'app1', rerun: 'r', pid: 99, groups: [], startedAt: 'x', steps: ids, at, status: 'running', error: null, data };
      const r = await recoverPitr(ctx, j, data);
      if (at >= handOverAt) {
        expect(r.way).toBe('finished');
        expect(r.steps.filter((s) => s.effect === 'destroy')).toEqual([]);
      } else {
        expect(r.way).toBe('rolled-back');
        expect(r.steps.at(-1)!.id).toBe('hand-over');
        // A restore that promoted is never removed: moved aside as preserved.
        if (at > ids.indexOf('start-cluster')) expect(r.steps.filter((s) => s.effect === 'destroy')).toEqual([]);
      }
    });
  }
});
