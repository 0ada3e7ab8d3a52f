// backup's per-cluster decision (type tiers, change detection) and the schedule's files.
import { noOutage } from '../../../src/steps/repo-outage.js';
import { alignStanzaFileStep } from '../../../src/steps/stanza-file.js';
import { fakeContext } from '../fakes.js';
import { mirrorRepos } from '../../../src/commands/backup/export-repos.js';
import { describe, expect, it } from 'vitest';
import { planEnv, aCluster, aRecord, aStanza } from '../fixtures.js';
import { backupTargetCommand, decide, type BackupFacts, type BackupTargetOptions, type RepoTier, type Target } from '../../../src/commands/backup/backup.js';
import { assemblePlan, type PlanEnv } from '../../../src/plan/command.js';
import { cronToCalendar, renderCron, renderDrillUnits, renderUnits } from '../../../src/commands/schedule/schedule.js';
import { parseConfig } from '../../../src/config/load.js';
import type { BackupInfo } from '../../../src/pgbackrest/info.js';
import type { ManagedCluster } from '../../../src/state/store.js';

const now = new Date('2026-11-22T12:00:00Z');
const ago = (h: number) => now.getTime() / 1000 - h * 3600;
const b = (label: string, type: 'full' | 'diff' | 'incr', hoursAgo: number): BackupInfo => ({ label, type, timestamp: { start: ago(hoursAgo) - 5, stop: ago(hoursAgo) } });
const record: ManagedCluster = aRecord('app1');
const target = (backups: BackupInfo[], over: Partial<Target> = {}): Target => ({
  record,
  cluster: aCluster('app1'),
  stanza: aStanza('app1', { archive: [], backup: backups, db: [] }),
  nextXid: '800',
  ...over,
});
const cfg = { fullInterval: 7 * 86400, diffInterval: 86400 };
const localTier: RepoTier = { name: 'local', index: 1, retention: { full: 2, fullType: 'count' }, ...cfg, mark: null };
const auto = { type: 'auto' as const, force: false };

describe('backup --type auto', () => {
  it.each([
    ['no backup at all', [], 'full'],
    ['a full older than full-interval', [b('F', 'full', 24 * 8)], 'full'],
    ['a recent full, no diff for a day', [b('F', 'full', 30)], 'diff'],
    ['a recent full and diff', [b('F', 'full', 30), b('D', 'diff', 2)], 'incr'],
    ['a recent full only hours old', [b('F', 'full', 2)], 'incr'],
  ] as const)('%s → %s', (_what, backups, type) => {
    expect(decide(target([...backups]), auto, cfg, now)).toMatchObject({ action: 'backup', type });
  });
});

describe('change detection', () => {
  const backups = [b('F', 'full', 2), b('F_I', 'incr', 1)];
  const marked = (nextXid: string, label = 'F_I') => target(backups, { record: { ...record, backupMark: { label, nextXid } } });
  it('skips an incr or diff when the next transaction ID is what it was right after pgmam\'s own backup', () => {
    expect(decide(marked('800'), auto, cfg, now)).toEqual({ action: 'skip', why: 'no changes since F_I' });
    expect(decide(marked('800'), { type: 'diff', force: false }, cfg, now)).toMatchObject({ action: 'skip' });
  });
  it('backs up when transactions wrote since, when another tool backed up since, or with --force', () => {
    expect(decide(marked('801'), auto, cfg, now)).toMatchObject({ action: 'backup', type: 'incr' });
    expect(decide(marked('800', 'OTHER'), auto, cfg, now)).toMatchObject({ action: 'backup' });
    expect(decide(marked('800'), { type: 'incr', force: true }, cfg, now)).toMatchObject({ action: 'backup' });
  });
  it('never skips a full that is due', () => {
    const old = [b('F', 'full', 24 * 8)];
    expect(decide(target(old, { record: { ...record, backupMark: { label: 'F', nextXid: '800' } } }), auto, cfg, now)).toMatchObject({ action: 'backup', type: 'full' });
  });
  it('a down or missing cluster cannot be backed up', () => {
    const t = target(backups);
    expect(decide({ ...t, cluster: { ...t.cluster!, running: false } }, auto, cfg, now)).toMatchObject({ action: 'fail' });
    expect(decide({ ...t, cluster: undefined }, auto, cfg, now)).toMatchObject({ action: 'fail' });
  });
  it('an interrupted operation is settled first, not backed up over', () => {
    const t = target(backups, { interrupted: 'interrupted pitr at restore-backup (run: pgmam pitr app1 --latest --yes)' });
    expect(decide(t, { type: 'full', force: true }, cfg, now)).toEqual({ action: 'fail', why: '15/app1: interrupted pitr at restore-backup (run: pgmam pitr app1 --latest --yes)' });
  });
});

describe('configuration of intervals and schedule', () => {
  it('reads durations', () => {
    const c = parseConfig({ path: '/x', explicit: true }, 'full-interval = 2w\ndiff-interval = 12h\nlock-wait = 5\n');
    expect([c['full-interval'], c['diff-interval'], c['lock-wait']]).toEqual([1209600, 43200, 5]);
    expect(() => parseConfig({ path: '/x', explicit: true }, 'full-interval = soon\nschedule = hourly\n')).toThrow(
      expect.objectContaining({ exitCode: 3, lines: expect.arrayContaining([expect.stringContaining('full-interval'), expect.stringContaining('schedule')]) }),
    );
  });
});

describe('schedule', () => {
  it('a cron file for root that runs backup --all, logging beside pgmam', () => {
    const text = renderCron('0 * * * *', '/usr/local/bin/pgmam', undefined, '/var/log/pgmam');
    expect(text).toContain('0 * * * * root /usr/local/bin/pgmam backup --all >> /var/log/pgmam/cron.log 2>&1');
  });
  it('systemd timers for hourly and daily specs; others refused, not guessed', () => {
    expect(cronToCalendar('0 * * * *')).toBe('*-*-* *:00:00');
    expect(cronToCalendar('15 3 * * *')).toBe('*-*-* 03:15:00');
    expect(cronToCalendar('*/5 * * * 1')).toBeUndefined();
    expect(renderUnits('*-*-* *:00:00', '/p', '/c').timer).toContain('OnCalendar=*-*-* *:00:00');
  });
  it('weekly specs (the drills) become a day of the week; an hourly one on one day is refused', () => {
    expect(cronToCalendar('30 4 * * 0')).toBe('Sun *-*-* 04:30:00');
    expect(cronToCalendar('5 23 * * 6')).toBe('Sat *-*-* 23:05:00');
    expect(cronToCalendar('0 * * * 1')).toBeUndefined();
    expect(cronToCalendar('0 4 1 * *')).toBeUndefined();
  });
  it('drill-schedule adds a quiet drill --all line to the cron file; empty, none', () => {
    expect(renderCron('0 * * * *', '/p', '/c', '/var/log/pgmam', '30 4 * * 0')).toContain('30 4 * * 0 root /p drill --all -q --config /c >> /var/log/pgmam/cron.log 2>&1\n');
    expect(renderCron('0 * * * *', '/p', undefined, '/var/log/pgmam', '')).not.toContain('drill');
    expect(renderDrillUnits('Sun *-*-* 04:30:00', '/p', undefined)).toEqual({ service: expect.stringContaining('ExecStart=/p drill --all -q\n'), timer: expect.stringContaining('OnCalendar=Sun *-*-* 04:30:00') });
  });
});

describe('backup of one target (the batch runs one plan per cluster)', () => {
  const env: PlanEnv = planEnv();
  const o: BackupTargetOptions = { name: 'app1', type: 'incr', force: false, json: false, dryRun: false, yes: true, keepOnError: false };
  const facts = (t: Target): BackupFacts => ({ uid: 0, now, target: t, decision: decide(t, o, cfg, now), tiers: [{ tier: localTier, decision: decide(t, o, cfg, now) }], done: {}, outage: noOutage(), hostTaken: [] });

  it('a due backup: the stanza file’s retention kept as configured, then the backup with the configured retention; quiet, no journal (pgBackRest resumes by itself)', () => {
    const plan = assemblePlan(backupTargetCommand, facts(target([b('F', 'full', 2)])), o, env);
    expect(plan.steps.map((s) => s.id)).toEqual(['align-retention', 'backup-incr']);
    expect(plan).toMatchObject({ quiet: true, journal: false, locks: ['app1'] });
    expect(plan.steps[1]!.show![0]).toContain('--repo1-retention-full=2 --repo1-retention-full-type=count');
  });

  it('one retention: a stanza file written with another retention is brought in line; one that agrees is not written', async () => {
    const { ctx, fs } = fakeContext();
    const file = '/etc/pgbackrest/conf.d/app1.conf';
    fs.files.set(file, '# x\n[app1]\npg1-path=/d\nrepo1-path=/r\nrepo1-retention-full=2\ncompress-type=lz4\n');
    const step = alignStanzaFileStep(file, 'app1', { full: 4, fullType: 'time' });
    await (step.run as (c: typeof ctx) => Promise<void>)(ctx);
    expect(fs.files.get(file)).toBe('# x\n[app1]\npg1-path=/d\nrepo1-path=/r\nrepo1-retention-full=4\nrepo1-retention-full-type=time\ncompress-type=lz4\nannotation=pgmam-host=hosta\nannotation=pgmam-app=app1\nannotation=pgmam-role=app\narchive-async=y\nspool-path=/var/spool/pgbackrest\n\n[app1:archive-push]\nio-timeout=2\n');
    const writes = fs.writes.length;
    await (step.run as (c: typeof ctx) => Promise<void>)(ctx);
    expect(fs.writes.length).toBe(writes);
  });

  it('nothing written since the mark: no steps; a stopped cluster: refused for this target only', () => {
    const marked = target([b('F', 'full', 2)], { record: { ...record, backupMark: { label: 'F', nextXid: '800' } } });
    expect(assemblePlan(backupTargetCommand, facts(marked), o, env).steps).toEqual([]);
    const down = target([b('F', 'full', 2)], { cluster: { ...target([]).cluster!, running: false } });
    const plan = assemblePlan(backupTargetCommand, facts(down), o, env);
    expect(plan.guards.filter((g) => !g.check().ok).map((g) => [g.id, g.check()])).toEqual([['cluster-can-be-backed-up', { ok: false, reason: '15/app1 is down' }]]);
  });
  it('an app another host took over is refused: a backup here would join its stanza (and expire its backups)', () => {
    const plan = assemblePlan(backupTargetCommand, { ...facts(target([b('F', 'full', 2)])), takenOver: { name: 'app1', repo: 'offsite', timeline: 3, own: 2, host: null } }, o, env);
    expect(plan.guards.filter((g) => !g.check().ok).map((g) => g.id)).toEqual(['app-is-not-taken-over']);
    expect(plan.steps).toEqual([]);
  });
});

describe('backup --export-to: the mirror under a journal', () => {
  it('journaled while it copies, removed when done; a dead run’s journal is replaced by the next run', async () => {
    const { ctx, fs } = fakeContext();
    fs.files.set('/r/backup/app1/backup.info', 'x');
    fs.files.set('/var/lib/pgmam/journal/_mirror.json', JSON.stringify({ format: 1, command: 'backup --export-to', target: '/m', name: '_mirror', rerun: 'r', pid: 77, groups: [], startedAt: 'x', steps: ['mirror-repository'], at: 0, status: 'running', error: null, data: {} }));
    const summary = await mirrorRepos(ctx, [aRecord('app1', { repoPath: '/r', stanzaFile: '/nonexistent' })], '/m', 'pgmam backup --all --export-to /m');
    expect(summary.copied).toBe(1);
    expect(fs.files.get('/m/backup/app1/backup.info')).toBe('x');
    expect(fs.files.has('/var/lib/pgmam/journal/_mirror.json')).toBe(false);
    expect(fs.writes).toContain('write /var/lib/pgmam/journal/_mirror.json');
  });
  it('refused while another live pgmam mirrors', async () => {
    const { ctx, fs } = fakeContext();
    // Another process, alive.
    ctx.host = { ...ctx.host, pid: 1, isProcessAlive: (pid) => pid === 4242 };
    fs.files.set('/var/lib/pgmam/journal/_mirror.json', JSON.stringify({ format: 1, command: 'backup --export-to', target: '/m', name: '_mirror', rerun: 'r', pid: 4242, groups: [], startedAt: 'x', steps: ['mirror-repository'], at: 0, status: 'running', error: null, data: {} }));
    await expect(mirrorRepos(ctx, [], '/m', 'r')).rejects.toThrow(/another pgmam \(pid 4242\)/);
  });
});

describe('change detection, race', () => {
  const env: PlanEnv = planEnv();
  const bo: BackupTargetOptions = { name: 'app1', type: 'full', force: false, json: false, dryRun: false, yes: true, keepOnError: false };
  const facts = (t: Target): BackupFacts => ({ uid: 0, now, target: t, decision: decide(t, bo, cfg, now), tiers: [{ tier: localTier, decision: decide(t, bo, cfg, now) }], done: {}, outage: noOutage(), hostTaken: [] });
  it('the mark is the transaction position read before the backup began: a commit during it counts as written since', async () => {
    const { ctx, fs, runner } = fakeContext();
    fs.files.set(`${ctx.paths.clustersDir}/app1.json`, JSON.stringify(aRecord('app1')));
    fs.files.set('/etc/pgbackrest/conf.d/app1.conf', '[app1]\nrepo1-path=/r\nrepo1-retention-full=2\nrepo1-retention-full-type=count\n');
    runner.register(/pg_snapshot_xmax/, { stdout: '800\n' }, 1).register(/--type=full backup$/, { stdout: 'INFO: new backup label = 20261122-100000F\n' });
    const plan = assemblePlan(backupTargetCommand, facts(target([b('F', 'full', 200)])), bo, env);
    for (const s of plan.steps) await (s.run as (c: typeof ctx) => Promise<void>)(ctx);
    expect(JSON.parse(fs.files.get(`${ctx.paths.clustersDir}/app1.json`)!).backupMark).toEqual({ label: '20261122-100000F', nextXid: '800' });
    const order = runner.calls.map((c) => c.argv.join(' '));
    expect(order.findIndex((c) => c.includes('pg_snapshot_xmax'))).toBeLessThan(order.findIndex((c) => c.includes('backup')));
  });
});
