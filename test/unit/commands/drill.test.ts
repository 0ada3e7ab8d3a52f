// drill: its plan (scratch cluster, shared restore sequence, checks, record, drop), its guards, its
// recovery after a kill, and the RTO/RPO arithmetic.
import { describe, expect, it } from 'vitest';
import { drillGuards, drillTargetCommand, recoverDrill, renderDrills, runDrill, type DrillFacts, type DrillTargetOptions } from '../../../src/commands/drill/drill.js';
import { assemblePlan, runCommand } from '../../../src/plan/command.js';
import { renderPlan } from '../../../src/plan/render.js';
import { drillResult, newMeasures, parseWaldumpCommits, renderDrillConf, scratchName, segmentEndLsn } from '../../../src/restore/drill.js';
import { parseVerifyProblems } from '../../../src/pgbackrest/info.js';
import { emptySource } from '../../../src/restore/source.js';
import type { ParentFacts } from '../../../src/restore/parent.js';
import type { Journal } from '../../../src/state/journal.js';
import { RefusedError } from '../../../src/errors.js';
import { fakeContext } from '../fakes.js';
import { aCluster, aRecord, aStanza, planEnv } from '../fixtures.js';

const at = (iso: string) => Date.parse(iso) / 1000;
const app = (over: Partial<ParentFacts> = {}): ParentFacts => ({
  ...emptySource(),
  record: aRecord('app1'),
  cluster: aCluster('app1', { port: 5433 }),
  server: { inRecovery: false, timeline: 1 },
  control: { systemId: '1', state: 'in production', timeline: 1, walSegmentBytes: 16 * 1024 * 1024, recoveryMinimums: { max_connections: 20, max_worker_processes: 8 } },
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
const facts = (over: Partial<DrillFacts> = {}): DrillFacts => ({
  uid: 0,
  now: new Date('2026-11-22T06:00:00Z'),
  app: app(),
  scratch: { name: 'app1_drill', dataDir: '/var/lib/postgresql/15/app1_drill', takenBy: [], port: 5440, portConfiguredBy: [], portHeldBy: undefined, disk: { path: '/var/lib/postgresql/15', freeBytes: 10 * 1024 ** 3 }, lock: { holder: undefined, alive: false } },
  amcheck: true,
  probe: undefined,
  postgres: { uid: 101, gid: 104 },
  measures: newMeasures(),
  ...over,
});
const o: DrillTargetOptions = { app: 'app1', json: false, dryRun: false, yes: true, keepOnError: false };
const env = planEnv();
const plan = (f = facts(), opts = o) => assemblePlan(drillTargetCommand, f, opts, env);
const failedIds = (f: DrillFacts) => drillGuards(f, o, env).filter((g) => !g.check().ok).map((g) => g.id);

describe('drill: the plan', () => {
  it('restores the newest backup into a closed scratch cluster, checks it, records the result and drops it; no hand-over', () => {
    const p = plan();
    expect(p.steps.map((s) => s.id)).toEqual([
      'note-app-position',
      'create-scratch-cluster',
      'close-to-users',
      'configure-scratch',
      'empty-datadir',
      'restore-backup',
      'verify-isolation',
      'start-cluster',
      'wait-promoted',
      'verify-recovery',
      'verify-parent-archive',
      'amcheck',
      'record-drill',
      'drop-scratch-cluster',
    ]);
    expect(p).toMatchObject({ target: '15/app1_drill', locks: ['app1_drill', 'app1'], destructive: false });
    const text = renderPlan(p, 0);
    expect(text).toContain('pgbackrest --stanza=app1 --set=F1 --pg1-path=/var/lib/postgresql/15/app1_drill --target-timeline=1 --archive-mode=off --repo=1 restore');
    expect(text).toContain('pg_createcluster --start-conf manual 15 app1_drill --port 5440');
    expect(text).toContain('/usr/lib/postgresql/15/bin/pg_amcheck -h /var/run/postgresql -p 5440 -U postgres --all --heapallindexed --install-missing');
    expect(text).toContain('pgbackrest --stanza=app1 --repo=1 --set=F1 --log-level-console=info --log-level-file=off verify');
  });

  it('reads the app\'s unarchived commits on its current timeline (after a pitr, not 1)', () => {
    expect(renderPlan(plan(), 0)).toContain('pg_waldump --path=/var/lib/postgresql/15/app1/pg_wal --timeline=1 --start=<after 000000010000000000000009>');
    const note = drillTargetCommand.plan(facts({ app: app({ currentTimeline: 3 }) }), o, env).steps[0]!;
    expect(note.show?.join('\n')).toContain('--timeline=3');
  });

  it('never stops, switches or restores into the app: its only commands read it', () => {
    const p = plan();
    const argvs = p.steps.flatMap((s) => [s.run, s.undo?.run]).flatMap((r) => (r && typeof r !== 'function' ? [[...r.argv]] : []));
    expect(argvs.filter((a) => a.some((x) => x.includes('/var/lib/postgresql/15/app1') && !x.includes('app1_drill')) || (a.includes('app1') && ['pg_ctlcluster', 'pg_dropcluster', 'systemctl'].includes(a[0]!)))).toEqual([]);
    expect(p.steps.map((s) => s.id)).not.toContain('switch-wal');
    expect(p.steps.find((s) => s.id === 'note-app-position')!.effect).toBe('read');
  });

  it('the scratch configuration: archiving off, no TCP, at least the app\'s replay minimums', () => {
    expect(renderDrillConf('15/app1', { max_connections: 20, max_worker_processes: 8 })).toBe(
      "# Written by pgmam drill: a scratch copy of 15/app1, restored to prove its backups; removed with it.\narchive_mode = off\narchive_command = ''\nlisten_addresses = ''\nmax_connections = 20\nmax_worker_processes = 8\n",
    );
  });

  it('runs the app\'s probe when drill-probe-dir has one, before recording', () => {
    const ids = plan(facts({ probe: { path: '/etc/pgmam/drill-probe/app1.sql', text: 'select 1' } })).steps.map((s) => s.id);
    expect(ids.indexOf('probe')).toBe(ids.indexOf('amcheck') + 1);
    expect(ids.indexOf('record-drill')).toBe(ids.indexOf('probe') + 1);
  });

  it('--repo: restores from that repository', () => {
    const p = plan(facts({ app: app({ repo: { name: 'offsite', index: 2, why: '--repo offsite' } }) }), { ...o, repo: 'offsite' });
    expect(renderPlan(p, 0)).toContain('--archive-mode=off --repo=2 restore');
    expect(p.journal).toMatchObject({ rerun: 'pgmam drill app1 --repo offsite' });
  });
});

describe('drill: guards', () => {
  it('all pass on a managed app with a backup', () => expect(failedIds(facts())).toEqual([]));
  it.each([
    ['an unmanaged name', facts({ app: app({ record: undefined }) }), ['parent-is-managed']],
    ['a replica', facts({ app: app({ record: aRecord('app1', { role: 'replica', parent: 'app0' }) }) }), ['cluster-is-not-a-replica']],
    ['no backup', facts({ app: app({ stanza: { ...app().stanza!, backup: [] } }) }), ['cluster-has-backup']],
    ['tablespaces (the restore would write into the app\'s)', facts({ app: app({ tablespaces: ['16384'] }) }), ['parent-has-no-tablespaces']],
    ['the scratch name taken', facts({ scratch: { ...facts().scratch, takenBy: ['cluster 15/app1_drill exists'] } }), ['scratch-name-is-free']],
    ['no free port', facts({ scratch: { ...facts().scratch, port: undefined } }), ['port-is-free']],
    ['pg_amcheck missing', facts({ amcheck: false }), ['pg-amcheck-is-installed']],
    ['not root', facts({ uid: 1000 }), ['runs-as-root']],
  ])('refuses %s', (_what, f, ids) => expect(failedIds(f)).toEqual(ids));

  it('a refused drill writes nothing (recording runner)', async () => {
    const { ctx, runner } = fakeContext();
    runner.register('pg_lsclusters --json', { stdout: '[]' });
    await expect(runCommand(ctx, drillTargetCommand, o)).rejects.toBeInstanceOf(RefusedError);
    expect(runner.writes()).toEqual([]);
  });

  it('drill needs app names or --all (usage)', async () => {
    const { ctx } = fakeContext({ uid: 1000 });
    await expect(runDrill(ctx, { names: [], all: true, json: false, dryRun: false, yes: true, keepOnError: false })).rejects.toMatchObject({ exitCode: 4 });
  });
});

describe('drill: after a kill', () => {
  const journal = (step: string): Journal => {
    const steps = plan().steps.map((s) => s.id);
    return { format: 1, command: 'drill', target: '15/app1_drill', name: 'app1_drill', rerun: 'pgmam drill app1', pid: 1, groups: [], startedAt: 'x', steps, at: steps.indexOf(step), status: 'running', error: null, data: {} };
  };
  const d = { app: 'app1', version: '15', dataDir: '/var/lib/postgresql/15/app1_drill' };
  it('before its result was recorded: the scratch cluster is dropped and the drill runs again', async () => {
    const { ctx } = fakeContext();
    const r = await recoverDrill(ctx, journal('restore-backup'), d);
    expect(r.way).toBe('rolled-back');
    expect(r.steps.map((s) => s.id)).toEqual(['drop-scratch-cluster']);
    expect((await recoverDrill(ctx, journal('record-drill'), d)).way).toBe('rolled-back');
  });
  it('after: only the scratch cluster is dropped, and that was the drill', async () => {
    const { ctx } = fakeContext();
    const r = await recoverDrill(ctx, journal('drop-scratch-cluster'), d);
    expect(r).toMatchObject({ way: 'finished', finished: expect.stringContaining('had recorded its result') });
  });
});

describe('drill: names, RTO and RPO', () => {
  it('the scratch name fits the name pattern, distinct for long names', () => {
    expect(scratchName('app1')).toBe('app1_drill');
    const long = 'a'.repeat(46);
    expect(scratchName(long)).toMatch(/^[a-z][a-z0-9_]{0,47}$/);
    expect(scratchName(long)).not.toBe(scratchName(`${'a'.repeat(45)}b`));
  });

  const m = { ...newMeasures(), startLsn: '0/5000100', startAtMs: Date.parse('2026-11-22T06:00:10Z'), restoreBeganMs: 1000, promotedMs: 5250 };
  const o2 = { at: '2026-11-22T06:00:00Z', backup: 'F1', repo: 'local' };
  it('RTO: from the restore\'s beginning to the promotion', () => {
    expect(drillResult(m, '0/5000100', { timeline: 2, lastReplayUs: undefined }, o2).rtoSeconds).toBe(4.25);
  });
  it('RPO 0 when the restore reached the app\'s position', () => {
    expect(drillResult({ ...m, atRisk: [] }, '0/5000100', { timeline: 2, lastReplayUs: undefined }, o2)).toMatchObject({ rpoBytes: 0, rpoSeconds: 0, lostTransactions: 0 });
  });
  it('behind, without lost commits (a checkpoint record): RPO 0 s', () => {
    expect(drillResult({ ...m, atRisk: [{ lsn: '0/4FFFF00', atMs: 0 }] }, '0/5000000', { timeline: 2, lastReplayUs: undefined }, o2)).toMatchObject({ rpoBytes: 256, rpoSeconds: 0, lostTransactions: 0 });
  });
  it('behind by commits: from the first commit not restored to the drill\'s start', () => {
    const risk = [{ lsn: '0/5000010', atMs: Date.parse('2026-11-22T06:00:04Z') }, { lsn: '0/5000080', atMs: Date.parse('2026-11-22T06:00:07Z') }];
    expect(drillResult({ ...m, atRisk: risk }, '0/5000000', { timeline: 2, lastReplayUs: undefined }, o2)).toMatchObject({ rpoBytes: 256, rpoSeconds: 6, lostTransactions: 2 });
  });
  it('behind, the app\'s WAL unreadable: at most the time since the last restored transaction', () => {
    const last = Date.parse('2026-11-22T05:59:50Z') * 1000;
    expect(drillResult(m, '0/5000000', { timeline: 2, lastReplayUs: last }, o2)).toMatchObject({ rpoSeconds: 20, lostTransactions: null });
  });

  it('parses pg_waldump commits (UTC) and pgbackrest verify problems; the LSN after a segment', () => {
    const dump = 'rmgr: Transaction len (rec/tot):     34/    34, tx:        737, lsn: 0/34015610, prev 0/340155D0, desc: COMMIT 2026-12-02 13:49:21.505891 UTC; inval msgs: catcache 80\nrmgr: Transaction len (rec/tot): 34/ 34, tx: 738, lsn: 0/34015700, prev 0/34015610, desc: ABORT 2026-12-02 13:49:22.000000 UTC\n';
    expect(parseWaldumpCommits(dump)).toEqual([{ lsn: '0/34015610', atMs: Date.parse('2026-12-02T13:49:21.505Z') }]);
    const verify = "2026-12-02 13:53:58.441 P02   INFO: invalid checksum '20261202-134120F/pg_data/base/5/1255.lz4'\n2026-12-02 13:53:58.674 P00   INFO: stanza: s_app2\n";
    expect(parseVerifyProblems(verify)).toEqual(["invalid checksum '20261202-134120F/pg_data/base/5/1255.lz4'"]);
    expect(segmentEndLsn('000000010000000000000033', 16 * 1024 * 1024)).toBe('0/34000000');
    expect(segmentEndLsn('0000000100000001000000FF', 16 * 1024 * 1024)).toBe('2/0');
  });

  it('reports each app on one line, then a summary', () => {
    const passed = { cluster: '15/app1', app: 'app1', result: 'passed' as const, reason: null, drill: { ...drillResult({ ...m, atRisk: [] }, '0/5000100', { timeline: 2, lastReplayUs: undefined }, o2) } };
    const failed = { cluster: '15/app2', app: 'app2', result: 'failed' as const, drill: null, reason: 'at restore-backup: the backup is damaged' };
    expect(renderDrills([passed, failed])).toBe(
      '15/app1: drill passed: RTO 4.25 s, RPO 0 s (nothing behind; last restored transaction none since the backup), backup F1 from repository local\n15/app2: drill FAILED at restore-backup: the backup is damaged\ndrill: 1 passed, 1 failed, 0 refused\n',
    );
  });
});
