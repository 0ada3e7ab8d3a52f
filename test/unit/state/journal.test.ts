// The journal, stale locks, settling an interrupted run, and check's rules — with the in-memory host.
import { describe, expect, it } from 'vitest';
import { judge, renderPrometheus, type ClusterHealth } from '../../../src/commands/check/check.js';
import { initClusterCommand, type InitOptions } from '../../../src/commands/initcluster/initcluster.js';
import { runCommand } from '../../../src/plan/command.js';
import { RefusedError, StepFailedError } from '../../../src/errors.js';
import type { Plan } from '../../../src/plan/types.js';
import { journalPath, ownerAlive, readJournal, writeJournal, type Journal } from '../../../src/state/journal.js';
import { acquireLock, lockDeps } from '../../../src/state/lock.js';
import { fakeContext, executePlan } from '../fakes.js';

const flags = { dryRun: false, yes: true, keepOnError: false };

function plan(steps: Array<{ id: string; fail?: boolean; undo?: boolean }>, seen: Array<Journal | undefined>, ctx: ReturnType<typeof fakeContext>['ctx']): Plan {
  return {
    command: 'pitr',
    target: '15/app1',
    locks: ['app1'],
    destructive: false,
    guards: [],
    journal: { rerun: 'pgmam pitr app1 --latest --yes', data: { dataDir: '/d' } },
    steps: steps.map((s) => ({
      id: s.id,
      title: s.id,
      effect: 'write' as const,
      run: async () => {
        seen.push(await readJournal(ctx.fs, ctx.paths.stateDir, 'app1'));
        if (s.fail) throw new Error('boom');
      },
      ...(s.undo ? { undo: { title: `undo ${s.id}`, run: async () => undefined } } : {}),
    })),
  };
}

describe('journal', () => {
  it('is written before each step, naming it, and removed when the plan ends', async () => {
    const { ctx, fs } = fakeContext();
    const seen: Array<Journal | undefined> = [];
    await executePlan(ctx, plan([{ id: 'stop-cluster' }, { id: 'restore-backup' }], seen, ctx), flags);
    expect(seen.map((j) => j?.steps[j.at])).toEqual(['stop-cluster', 'restore-backup']);
    expect(seen[0]).toMatchObject({ command: 'pitr', name: 'app1', pid: 4242, status: 'running', rerun: 'pgmam pitr app1 --latest --yes', data: { dataDir: '/d' } });
    expect(fs.files.has(journalPath(ctx.paths.stateDir, 'app1'))).toBe(false);
  });

  it('stays, marked failed, when a failed step was not undone; goes when everything was undone', async () => {
    const { ctx } = fakeContext();
    const seen: Array<Journal | undefined> = [];
    await expect(executePlan(ctx, plan([{ id: 'stop-cluster' }, { id: 'restore-backup', fail: true }], seen, ctx), flags)).rejects.toBeInstanceOf(StepFailedError);
    expect(await readJournal(ctx.fs, ctx.paths.stateDir, 'app1')).toMatchObject({ status: 'failed', at: 1, error: 'boom' });

    const b = fakeContext();
    await expect(executePlan(b.ctx, plan([{ id: 'create-cluster', undo: true }, { id: 'start-cluster', fail: true, undo: true }], [], b.ctx), flags)).rejects.toBeInstanceOf(StepFailedError);
    expect(await readJournal(b.ctx.fs, b.ctx.paths.stateDir, 'app1')).toBeUndefined();
  });

  it('a lock is stale only when its pid and every child process group are gone', async () => {
    const { ctx, fs } = fakeContext();
    const groupsAlive = new Set([777]);
    const host = { ...ctx.host, isProcessAlive: () => false, isGroupAlive: (g: number) => groupsAlive.has(g) };
    expect(ownerAlive(host, { pid: 99, groups: [777] })).toBe(true);
    await fs.writeFileAtomic(`${ctx.paths.locksDir}/app1.lock`, JSON.stringify({ pid: 99, command: 'pitr', startedAt: 'x', groups: [777] }));
    await expect(acquireLock(lockDeps({ ...ctx, host }), 'app1', 'pitr')).rejects.toThrow(/locked by pgmam pitr/);
    groupsAlive.clear();
    const release = await acquireLock(lockDeps({ ...ctx, host }), 'app1', 'pitr');
    expect(JSON.parse(fs.files.get(`${ctx.paths.locksDir}/app1.lock`)!).pid).toBe(4242);
    await release();
  });
});

describe('settling an interrupted run', () => {
  const journal = (over: Partial<Journal> = {}): Journal => ({
    format: 1, command: 'initcluster', target: '15/app1', name: 'app1', rerun: 'pgmam initcluster app1 --yes', pid: 99, groups: [], startedAt: 'x',
    steps: ['create-cluster', 'start-cluster'], at: 1, status: 'running', error: null,
    data: { version: '15', dataDir: '/var/lib/postgresql/15/app1', confDir: '/etc/postgresql/15/app1', stanzaFile: '/etc/pgbackrest/conf.d/app1.conf', repoPath: '/var/lib/pgbackrest' },
    ...over,
  });

  // initcluster with its gather replaced: these tests end where the settled command would plan anew.
  const init = { ...initClusterCommand, gather: async (): Promise<never> => Promise.reject(new Error('planned anew')) };
  const initOpts: InitOptions = { name: 'app1', json: false, ...flags };

  it('refuses while the interrupted run or its children still run, and another command than its own', async () => {
    const { ctx, runner } = fakeContext();
    await writeJournal(ctx.fs, ctx.paths.stateDir, journal({ pid: 4242 }));
    await expect(runCommand(ctx, init, initOpts)).rejects.toBeInstanceOf(RefusedError);
    await writeJournal(ctx.fs, ctx.paths.stateDir, journal({ command: 'pitr', rerun: 'pgmam pitr app1 --latest --yes' }));
    const other = (await runCommand(ctx, init, initOpts).catch((e: unknown) => e)) as RefusedError;
    expect(other.lines.join('\n')).toMatch(/interrupted pitr at start-cluster.*\n.*pgmam pitr app1 --latest --yes/);
    expect(runner.writes()).toEqual([]);
  });

  it('rolls back a half-made cluster: drop, files, stanza (only if made), record; then the journal goes', async () => {
    const { ctx, runner, fs } = fakeContext();
    await writeJournal(ctx.fs, ctx.paths.stateDir, journal());
    runner.register('pg_lsclusters --json', { stdout: JSON.stringify([{ version: 15, cluster: 'app1', port: 5433, running: 1, pgdata: '/var/lib/postgresql/15/app1', configdir: '/etc/postgresql/15/app1', logfile: '/l' }]) });
    runner.register('pg_dropcluster --stop 15 app1');
    await expect(runCommand(ctx, init, initOpts)).rejects.toThrow('planned anew');
    expect(runner.writes().map((c) => c.argv.join(' '))).toEqual(['pg_dropcluster --stop 15 app1']);
    expect(fs.writes).toContain('rm /etc/pgbackrest/conf.d/app1.conf');
    expect(await readJournal(ctx.fs, ctx.paths.stateDir, 'app1')).toBeUndefined();
    runner.verify();
  });
});

describe('check rules', () => {
  const healthy: Omit<ClusterHealth, 'healthy' | 'problems'> = {
    cluster: '15/app1', name: 'app1', managed: true, running: true, acceptsConnections: true,
    archive: { checkOk: true, failedCount: 0, lastFailedWal: null, oldestReadySeconds: 0, waitingMb: 0, localFailing: null },
    lastBackup: { type: 'full', label: 'L', stoppedAt: '2026-11-22T09:00:00Z', ageSeconds: 3600 },
    recoveryWindow: { from: 'a', to: 'b' }, preserved: [], freeBytes: { data: 10e9, repo: 10e9 }, interrupted: null, repos: [], takenOver: null, tls: null, replica: null, lastDrill: null, createdAt: null,
  };
  const s3 = { name: 'offsite', index: 2, suspended: null, failing: null, reachable: true, problem: null, lastBackup: { label: 'S', stoppedAt: 'x', ageSeconds: 3600 }, walBehindSeconds: 0 };
  const t = { backupMaxAgeSeconds: 86400, readyMaxAgeSeconds: 600, minFreeBytes: 256 * 1024 * 1024, preservedMaxBytes: 512 * 1048576 };
  const pre = (mb: number) => ({ path: `/d.pre-sync-${mb}`, reason: 'sync', createdAt: 'x', bytes: mb * 1048576 });

  it.each([
    ['healthy', {}, []],
    ['stopped', { running: false }, [/not running/]],
    ['archive check failing', { archive: { ...healthy.archive!, checkOk: false } }, [/pgbackrest check failed/]],
    ['a stopped stanza (its stop file): said so, with how to start it', { stanza: 'app1', archive: { ...healthy.archive!, checkOk: null, stanzaStopped: true } }, [/^its stanza app1 is stopped \(pgbackrest stop\).*hint: runuser -u postgres -- pgbackrest --stanza=app1 start\)$/]],
    ['pgbackrest check failing: pgBackRest\'s own line and a hint', { stanza: 'app1', archive: { ...healthy.archive!, checkOk: false, checkError: 'ERROR: [082]: WAL segment 00000001000000000000008C was not archived before the 60000ms timeout' } }, [/^pgbackrest check failed: ERROR: \[082\]: WAL segment 00000001000000000000008C was not archived before the 60000ms timeout \(hint: archiving does not reach the repository/]],
    ['the port changed by hand: the stanza file names another', { port: 5434, archive: { ...healthy.archive!, checkOk: false, stanzaPort: 5433 } }, [/its stanza file names port 5433, but the cluster runs on port 5434.*hint: pgmam set-port app1 5434/]],
    ['archive_command failing', { archive: { ...healthy.archive!, failedCount: 3, lastFailedWal: '000000010000000000000003' } }, [/has failed 3 time/]],
    ['WAL waiting too long', { archive: { ...healthy.archive!, oldestReadySeconds: 3600 } }, [/waited 3600 s/]],
    ['old backup', { lastBackup: { ...healthy.lastBackup!, ageSeconds: 3 * 86400 } }, [/72 h old/]],
    ['no backup', { lastBackup: null, recoveryWindow: null }, [/no backup/, /no recovery window/]],
    ['preserved directories within preserved-max-mb', { preserved: [pre(200), pre(300)] }, []],
    ['preserved directories over preserved-max-mb: their size and the prune that frees them', { preserved: [pre(200), pre(200), pre(136)] }, [/^its 3 preserved data directories take 536 MB \(preserved-max-mb 512\) \(hint: pgmam prune app1 --older-than 7d --dry-run/]],
    ['disk full', { freeBytes: { data: 1024, repo: 10e9 } }, [/data filesystem has 0 MB free/]],
    ['interrupted', { interrupted: { command: 'pitr', step: 'restore-backup', status: 'running' as const, since: 'x', rerun: 'r', error: null } }, [/interrupted pitr at restore-backup/]],
    ['an attached repository, healthy', { repos: [s3] }, []],
    ['an attached repository unreachable', { repos: [{ ...s3, reachable: false, problem: 'unable to connect' }] }, [/repository offsite cannot be read: unable to connect/]],
    ['no backup in an attached repository', { repos: [{ ...s3, lastBackup: null }] }, [/no backup in repository offsite/]],
    ['an old backup in an attached repository', { repos: [{ ...s3, lastBackup: { ...s3.lastBackup, ageSeconds: 2 * 86400 } }] }, [/last backup in repository offsite \(S\) is 48 h old/]],
    ['WAL not reaching an attached repository', { repos: [{ ...s3, walBehindSeconds: 1200 }] }, [/WAL is not reaching repository offsite/]],
    ['archiving into an attached repository fails', { archive: { ...healthy.archive!, waitingMb: 48 }, repos: [{ ...s3, failing: '[HostConnectError] unable to connect' }] }, [/archiving into repository offsite fails: \[HostConnectError\] unable to connect; 48 MB of WAL wait/]],
    ['an attached repository suspended', { repos: [{ ...s3, reachable: false, suspended: { at: 'T1', since: 'T0', reason: 'down', waitingMb: 1024 } }] }, [/repository offsite is suspended since T1: it failed \(down\) while 1024 MB .* misses WAL from T0/]],
    ['archiving into the local repository fails', { archive: { ...healthy.archive!, localFailing: '[FileOpenError] x' } }, [/archiving into the local repository fails/]],
    ['taken over by another host and fenced: that alone, not "not running"', { running: false, takenOver: { repo: 'offsite', timeline: 3, own: 2, host: 'hostb', fenced: true } }, [/taken over: timeline 3 in repository offsite is newer than this cluster's timeline 2; host hostb continues this app\. Fenced/]],
  ])('%s', (_what, over, problems) => {
    const found = judge({ ...healthy, ...over }, t);
    expect(found).toHaveLength(problems.length);
    problems.forEach((p, i) => expect(found[i]).toMatch(p));
  });

  describe('restore drills (drill-max-age 8 d)', () => {
    const now = Date.parse('2026-12-01T00:00:00Z');
    const td = { ...t, drill: { maxAgeSeconds: 8 * 86400, nowMs: now } };
    const drill = (at: string, ok: boolean, lastOkAt: string | null) => ({ at, ok, rtoSeconds: ok ? 4.2 : null, rpoSeconds: ok ? 0 : null, failedStep: ok ? null : 'restore-backup', error: ok ? null : 'checksum mismatch', lastOkAt });
    it.each([
      ['an app younger than drill-max-age, never drilled: healthy', { createdAt: '2026-11-28T00:00:00Z', lastDrill: null }, []],
      ['an app older than drill-max-age, never drilled', { createdAt: '2026-11-01T00:00:00Z', lastDrill: null }, [/no restore drill has passed since it was created 30 d ago \(drill-max-age 8 d\): pgmam drill app1/]],
      ['a passing drill within drill-max-age: healthy', { createdAt: '2026-11-01T00:00:00Z', lastDrill: drill('2026-11-28T00:00:00Z', true, '2026-11-28T00:00:00Z') }, []],
      ['the last passing drill older than drill-max-age', { createdAt: '2026-10-01T00:00:00Z', lastDrill: drill('2026-11-20T00:00:00Z', true, '2026-11-20T00:00:00Z') }, [/the last passing restore drill is 11 d old/]],
      ['the last drill failed (one passed before, within drill-max-age)', { createdAt: '2026-11-01T00:00:00Z', lastDrill: drill('2026-11-30T00:00:00Z', false, '2026-11-29T00:00:00Z') }, [/the last restore drill \(2026-11-30T00:00:00Z\) failed at restore-backup: checksum mismatch/]],
      ['not an app (a branch or replica: no createdAt given)', { createdAt: null, lastDrill: null }, []],
    ])('%s', (_what, over, problems) => {
      const found = judge({ ...healthy, ...over }, td);
      expect(found).toHaveLength(problems.length);
      problems.forEach((p, i) => expect(found[i]).toMatch(p));
    });

    it('exports pgmam_drill_* for drilled apps', () => {
      const text = renderPrometheus([{ ...healthy, healthy: true, problems: [], createdAt: 'x', lastDrill: drill('2026-11-30T00:00:00Z', true, '2026-11-30T00:00:00Z') }], now);
      expect(text).toContain('pgmam_drill_ok{cluster="15/app1"} 1');
      expect(text).toContain('pgmam_drill_rto_seconds{cluster="15/app1"} 4.2');
      expect(text).toContain('pgmam_drill_rpo_seconds{cluster="15/app1"} 0');
      expect(text).toContain(`pgmam_drill_last_success_timestamp_seconds{cluster="15/app1"} ${Date.parse('2026-11-30T00:00:00Z') / 1000}`);
    });
  });

  it('renders textfile metrics for managed clusters only', () => {
    const text = renderPrometheus(
      [
        { ...healthy, healthy: true, problems: [] },
        { ...healthy, cluster: '15/main', managed: false, healthy: null, problems: [] },
      ],
      Date.parse('2026-11-22T10:00:00Z'),
    );
    expect(text).toContain('pgmam_cluster_healthy{cluster="15/app1"} 1');
    expect(text).toContain('pgmam_free_bytes{cluster="15/app1",fs="repo"} 10000000000');
    expect(text).not.toContain('15/main');
    expect(text).toMatch(/^pgmam_check_timestamp_seconds 1795341600$/m);
  });
});

describe('takeover detection', () => {
  it('a timeline above the cluster’s own that pgmam here did not make is foreign; its own pitr timelines are not', async () => {
    const { foreignTimelines } = await import('../../../src/host/takeover.js');
    const entries = ['00000002.history', '00000003.history', '0000000100000000', '0000000300000000'];
    expect(foreignTimelines(entries, 2, [])).toEqual([3]);
    expect(foreignTimelines(entries, 2, [{ timeline: 3 }])).toEqual([]);
    expect(foreignTimelines(entries, 3, [])).toEqual([]);
    expect(foreignTimelines(entries, 1, [{ timeline: 2 }])).toEqual([3]);
  });
});
