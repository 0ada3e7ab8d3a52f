// The steps of the restore sequence (sequence.ts) and of its recoveries: make the newest commits
// restorable, stop and verify, preserve the data directory (never overwrite it), restore from a
// stanza into an emptied path, start, wait for promotion, verify.
import type { Context } from '../context.js';
import * as pg from '../pg/commands.js';
import type { Progress, Step } from '../plan/types.js';
import { lsnBytes } from '../pg/replication.js';
import type { Cmd } from '../runner/types.js';
import { updateManaged, type Preserved } from '../state/store.js';
import { parsePgTimestamp } from './target.js';
import { historyFileName, timelineOfWal } from './timeline.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polling loops give up at once on SIGINT/SIGTERM instead of waiting out their timeout. */
function stopIfInterrupted(ctx: Context): void {
  const signal = ctx.host.interrupted();
  if (signal) throw new Error(`interrupted by ${signal}`);
}

export interface LiveCluster {
  id: pg.ClusterId;
  port: number;
  dataDir: string;
  logFile: string | undefined;
}

/**
 * Commit a transaction (so a time target before now is followed by a commit record and counts as
 * reached — PostgreSQL refuses to end recovery before its target), switch WAL, and wait until that
 * segment is archived. Changes no data.
 */
export function switchWalStep(c: LiveCluster, timeoutSec: number): Step {
  const sql = ['select txid_current()', 'select pg_walfile_name(pg_switch_wal() - 1)'];
  return {
    id: 'switch-wal',
    title: `switch WAL on ${pg.clusterLabel(c.id)} and wait until it is archived`,
    effect: 'write',
    run: async (ctx) => {
      const out = (await ctx.runner.run(pg.psqlStatements({ version: c.id.version, port: c.port }, sql, 'write'))).stdout.trim().split('\n');
      await waitArchived(ctx, c, out.at(-1)!.trim(), timeoutSec);
    },
    show: [`$ psql -p ${c.port} -c "${sql[0]}" -c "${sql[1]}"`, '  then poll pg_stat_archiver.last_archived_wal until it reaches that segment'],
  };
}

/** Poll pg_stat_archiver (every 50 ms) until `segment` or a later one is archived; bounded. */
export async function waitArchived(ctx: Context, c: Pick<LiveCluster, 'id' | 'port'>, segment: string, timeoutSec: number): Promise<void> {
  const deadline = Date.now() + timeoutSec * 1000;
  for (;;) {
    const r = await ctx.runner.run(pg.psqlValue({ version: c.id.version, port: c.port }, "select coalesce(last_archived_wal, '') || '|' || failed_count || '|' || coalesce(last_failed_wal, '') from pg_stat_archiver"));
    const [last = '', failed = '0', failedWal = ''] = r.stdout.trim().split('|');
    // A backup's history file (<segment>.<offset>.backup) is archived after the segment it names.
    const archived = /^([0-9A-F]{24})(\.[0-9A-F]{8}\.backup)?$/.exec(last)?.[1];
    if (archived && (timelineOfWal(archived) > timelineOfWal(segment) || (timelineOfWal(archived) === timelineOfWal(segment) && archived >= segment))) return;
    stopIfInterrupted(ctx);
    if (Date.now() > deadline) throw new Error(`WAL segment ${segment} was not archived within ${timeoutSec} s (last archived: ${last || 'none'}, failures: ${failed}${failedWal ? `, last failed ${failedWal}` : ''})`);
    await sleep(50);
  }
}

/** `ifRunning`: a cluster already stopped is left so (a re-run finishing a stop or a restart). */
export function stopClusterStep(c: LiveCluster, systemd: boolean, o: { ifRunning?: boolean } = {}): Step {
  const stop = pg.controlCluster(c.id, 'stop', systemd);
  return {
    id: 'stop-cluster',
    title: `stop ${pg.clusterLabel(c.id)} and verify the postmaster is gone`,
    effect: 'write',
    run: async (ctx) => {
      if (o.ifRunning && !(await ctx.fs.exists(`${c.dataDir}/postmaster.pid`))) return;
      await ctx.runner.run(stop);
      for (let i = 0; i < 100 && (await ctx.fs.exists(`${c.dataDir}/postmaster.pid`)); i++) await sleep(100);
      if (await ctx.fs.exists(`${c.dataDir}/postmaster.pid`)) throw new Error(`${c.dataDir}/postmaster.pid is still there after stopping`);
    },
    show: [`$ ${stop.argv.join(' ')}`, `  then verify ${c.dataDir}/postmaster.pid is gone`],
  };
}

/** Move the data directory aside (a rename on the same filesystem) and record it as preserved. */
export function preserveDataDirStep(name: string, dataDir: string, preserved: Preserved, clustersDir: string): Step {
  return {
    id: 'preserve-datadir',
    title: `move ${dataDir} aside to ${preserved.path} (preserved, never deleted by pgmam)`,
    effect: 'write',
    run: async (ctx) => {
      await ctx.fs.rename(dataDir, preserved.path);
      await updateManaged(ctx.fs, clustersDir, name, (r) => ({ ...r, preserved: [...r.preserved, preserved] }));
    },
    show: [`mv ${dataDir} ${preserved.path}`, `  and record it in ${clustersDir}/${name}.json`],
  };
}

/** Put a preserved data directory back in place (the current one was moved aside before). */
export function putBackDataDirStep(name: string, source: Preserved, dataDir: string, clustersDir: string): Step {
  return {
    id: 'put-back-datadir',
    title: `move ${source.path} back to ${dataDir}`,
    effect: 'write',
    run: async (c) => {
      await c.fs.rename(source.path, dataDir);
      await updateManaged(c.fs, clustersDir, name, (r) => ({ ...r, preserved: r.preserved.filter((p) => p.path !== source.path) }));
    },
    show: [`mv ${source.path} ${dataDir}`],
  };
}

export function createDataDirStep(dataDir: string, owner: { uid: number; gid: number }): Step {
  return {
    id: 'create-datadir',
    title: `create an empty ${dataDir} owned by postgres`,
    effect: 'write',
    run: (ctx) => ctx.fs.mkdirp(dataDir, { mode: 0o700, owner }),
    show: [`install -d -o postgres -g postgres -m 0700 ${dataDir}`],
  };
}

/** `progress`: the data directory filling up against the backup's size, on a terminal. */
export function restoreStep(cmd: Cmd, what: string, progress?: Progress): Step {
  return { id: 'restore-backup', title: what, effect: 'write', run: cmd, ...(progress ? { progress } : {}) };
}

/** `unlessRunning`: a cluster already running is left so (a re-run finishing a start, a restart or a set-port). */
export function startClusterStep(c: LiveCluster, systemd: boolean, timeoutSec: number, o: { unlessRunning?: boolean } = {}): Step {
  // pg_ctl gives up after 60 s by default; a long recovery is not a failed start.
  const start = { ...pg.controlCluster(c.id, 'start', systemd), env: { PGCTLTIMEOUT: String(timeoutSec) } };
  if (!o.unlessRunning) return { id: 'start-cluster', title: `start ${pg.clusterLabel(c.id)}`, effect: 'write', run: start };
  const status: Cmd = { argv: ['pg_ctlcluster', c.id.version, c.id.name, 'status'], effect: 'read' };
  return {
    id: 'start-cluster',
    title: `start ${pg.clusterLabel(c.id)} (unless it runs)`,
    effect: 'write',
    run: async (ctx) => {
      // pg_ctlcluster status: 0 running, 3 stopped.
      if ((await ctx.runner.run(status, { check: false })).exitCode === 0) return;
      await ctx.runner.run(start);
    },
    show: [`$ ${status.argv.join(' ')}  (0: running already)`, `$ ${start.argv.join(' ')}`],
  };
}

/**
 * Wait, bounded, until recovery has ended and the cluster is promoted. `replay` (WAL bytes from the
 * backup's start to the archive's end) gives a terminal the replayed share, read by the same poll.
 */
export function waitPromotedStep(c: LiveCluster, timeoutSec: number, replay?: { from: number; to: number | undefined }): Step {
  let replayed: number | undefined;
  return {
    id: 'wait-promoted',
    title: `wait until ${pg.clusterLabel(c.id)} has finished recovery and is promoted (at most ${timeoutSec} s)`,
    effect: 'read',
    run: async (ctx) => {
      const deadline = Date.now() + timeoutSec * 1000;
      for (;;) {
        const r = await ctx.runner.run(pg.psqlValue({ version: c.id.version, port: c.port }, "select pg_is_in_recovery()::text || '|' || coalesce(pg_last_wal_replay_lsn()::text, '')"), { check: false });
        const [inRecovery, lsn] = r.stdout.trim().split('|');
        if (replay && lsn) replayed = Math.max(0, lsnBytes(lsn) - replay.from);
        if (r.exitCode === 0 && inRecovery === 'false') return;
        if (r.exitCode !== 0 && !(await ctx.fs.exists(`${c.dataDir}/postmaster.pid`)))
          throw new Error(`PostgreSQL stopped during recovery${await logTail(ctx, c.logFile)}`);
        stopIfInterrupted(ctx);
        if (Date.now() > deadline) throw new Error(`recovery did not end within ${timeoutSec} s${await logTail(ctx, c.logFile)}`);
        await sleep(100);
      }
    },
    show: ['  poll select pg_is_in_recovery() until it is false'],
    ...(replay ? { progress: { what: `recovery of ${pg.clusterLabel(c.id)} (WAL replayed)`, total: replay.to === undefined ? undefined : Math.max(0, replay.to - replay.from), done: async () => replayed } } : {}),
  };
}

export async function logTail(ctx: Context, logFile: string | undefined, lines = 8): Promise<string> {
  if (!logFile) return '';
  const text = await ctx.fs.readText(logFile).catch(() => undefined);
  if (!text) return '';
  return `; the server log (${logFile}) ends with:\n${text.trimEnd().split('\n').slice(-lines).join('\n')}`;
}

export interface RecoveredState {
  timeline: number;
  lastReplayUs: number | undefined;
}

/** Not in recovery, on a newer timeline than before, and (for a time target) nothing replayed after it. */
export function verifyRecoveredStep(c: LiveCluster, expect: { previousTimeline: number; targetUs?: number; targetText?: string }, out: RecoveredState): Step {
  return {
    id: 'verify-recovery',
    title: `verify ${pg.clusterLabel(c.id)}: promoted, on a new timeline${expect.targetText ? `, nothing replayed after ${expect.targetText}` : ''}`,
    effect: 'read',
    run: async (ctx) => {
      const r = await ctx.runner.run(
        pg.psqlValue({ version: c.id.version, port: c.port }, "select pg_is_in_recovery()::text || '|' || pg_walfile_name(pg_current_wal_lsn()) || '|' || coalesce(pg_last_xact_replay_timestamp()::text, '')"),
      );
      const [inRecovery, wal = '', replay = ''] = r.stdout.trim().split('|');
      if (inRecovery !== 'false') throw new Error('the cluster is still in recovery');
      const tli = timelineOfWal(wal);
      if (!(tli > expect.previousTimeline)) throw new Error(`the timeline did not advance (still ${tli}, was ${expect.previousTimeline})`);
      const replayUs = replay ? parsePgTimestamp(replay) : undefined;
      if (expect.targetUs !== undefined && replayUs !== undefined && replayUs > expect.targetUs)
        throw new Error(`the last replayed commit (${replay}) is after the target ${expect.targetText}`);
      out.timeline = tli;
      out.lastReplayUs = replayUs;
    },
    show: ['  select pg_is_in_recovery(), pg_walfile_name(pg_current_wal_lsn()), pg_last_xact_replay_timestamp()'],
  };
}

/** A timestamp that sorts and reads well in a directory name: 20261122T052700Z. */
export const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');

/** Replace a data directory made by pg_createcluster (initdb) with an empty one, for a restore. */
export function emptyDataDirStep(dataDir: string, owner: { uid: number; gid: number }): Step {
  return {
    id: 'empty-datadir',
    title: `empty ${dataDir} (made by initdb) for the restore`,
    effect: 'write',
    run: async (ctx) => {
      await ctx.fs.rm(dataDir, { recursive: true });
      await ctx.fs.mkdirp(dataDir, { mode: 0o700, owner });
    },
    show: [`rm -rf ${dataDir} && install -d -o postgres -g postgres -m 0700 ${dataDir}`],
  };
}

/**
 * Before a restored copy first starts: its effective settings (postgres -C) must keep archiving off
 * and name only its own stanza and port — never the stanza it was restored from.
 */
export function verifyIsolationStep(c: LiveCluster, expect: { archiveCommand?: string }): Step {
  return {
    id: 'verify-isolation',
    title: `verify ${pg.clusterLabel(c.id)} will start with archiving off${expect.archiveCommand !== undefined ? ', its own archive_command' : ''} and port ${c.port}`,
    effect: 'read',
    run: async (ctx) => {
      const [mode, command, port] = await Promise.all(
        ['archive_mode', 'archive_command', 'port'].map(async (n) => (await ctx.runner.run(pg.showSetting(c.id, c.dataDir, n))).stdout.trim()),
      );
      const wrong: string[] = [];
      if (mode !== 'off') wrong.push(`archive_mode is ${mode}, not off`);
      if (expect.archiveCommand !== undefined && command !== expect.archiveCommand) wrong.push(`archive_command is "${command}", not "${expect.archiveCommand}"`);
      if (port !== String(c.port)) wrong.push(`port is ${port}, not ${c.port}`);
      if (wrong.length) throw new Error(`the restored copy is not isolated: ${wrong.join('; ')}`);
    },
    show: ['$ runuser -u postgres -- postgres -C archive_mode|archive_command|port  (off, its own stanza, its own port)'],
  };
}

/**
 * Turn on the archiving the restore turned off (--archive-mode=off wrote archive_mode into
 * postgresql.auto.conf), and comment out the restore's recovery settings: stop, rewrite, start.
 */
export function enableArchivingStep(c: LiveCluster, systemd: boolean, owner: { uid: number; gid: number }): Step {
  const auto = `${c.dataDir}/postgresql.auto.conf`;
  return {
    id: 'enable-archiving',
    title: `turn archiving on for ${pg.clusterLabel(c.id)} (its own stanza) and restart it`,
    effect: 'write',
    run: async (ctx) => {
      await ctx.runner.run(pg.controlCluster(c.id, 'stop', systemd));
      const text = (await ctx.fs.readText(auto)) ?? '';
      const kept = text
        .split('\n')
        .filter((l) => !/^\s*archive_mode\s*=/.test(l))
        .map((l) => (/^\s*(recovery_target\w*|restore_command)\s*=/.test(l) ? `# Removed by pgmam after the restore: ${l}` : l))
        .join('\n');
      await ctx.fs.writeFileAtomic(auto, kept, { mode: 0o600, owner });
      await ctx.runner.run(pg.controlCluster(c.id, 'start', systemd));
    },
    show: [`$ ${pg.controlCluster(c.id, 'stop', systemd).argv.join(' ')}`, `remove archive_mode, comment out restore_command and recovery_target* in ${auto}`, `$ ${pg.controlCluster(c.id, 'start', systemd).argv.join(' ')}`],
  };
}

/** The source stanza's archive gained no history file and no segment of the copy's timeline. */
export function verifySourceArchiveStep(archiveDir: string, before: string[], copy: RecoveredState): Step {
  return {
    id: 'verify-parent-archive',
    title: `verify the source's archive received nothing of the copy's timeline (${archiveDir})`,
    effect: 'read',
    run: async (ctx) => {
      const hex = copy.timeline.toString(16).toUpperCase().padStart(8, '0');
      const added = (await ctx.fs.readdir(archiveDir)).filter((e) => !before.includes(e) && e.startsWith(hex));
      if (added.length) throw new Error(`the source's archive ${archiveDir} gained ${added.join(', ')} of the copy's timeline ${copy.timeline}`);
    },
    show: [`  no new <copy's timeline>.history or segment directory of the copy's timeline in ${archiveDir}`],
  };
}


/** Record the timeline a restore created, so later restores can tell abandoned periods. */
export function recordTimelineStep(name: string, clustersDir: string, recovered: RecoveredState, parent: number, target: string | null): Step {
  return {
    id: 'record-timeline',
    title: `record the new timeline of ${name}`,
    effect: 'write',
    run: (c) =>
      updateManaged(c.fs, clustersDir, name, (r) => ({
        ...r,
        timelines: [...r.timelines, { timeline: recovered.timeline, parent, target, promotedAt: c.clock.now().toISOString() }],
      })),
    show: [`update ${clustersDir}/${name}.json`],
  };
}

/**
 * Ask for a recovery at the next start: comment out the recovery settings an earlier restore left in
 * postgresql.auto.conf (they must not apply), append `settings`, create recovery.signal.
 */
export function requestRecoveryStep(dataDir: string, settings: string[], why: string, owner: { uid: number; gid: number }, now: string): Step {
  const block = ['', `# Added by pgmam on ${now}: ${why}`, ...settings, ''].join('\n');
  const auto = `${dataDir}/postgresql.auto.conf`;
  return {
    id: 'request-recovery',
    title: `request a recovery: ${why}`,
    effect: 'write',
    run: async (c) => {
      const kept = ((await c.fs.readText(auto)) ?? '')
        .split('\n')
        .map((l) => (/^\s*(recovery_target\w*|restore_command|archive_mode)\s*=/.test(l) ? `# Removed by pgmam before a recovery: ${l}` : l))
        .join('\n');
      await c.fs.writeFileAtomic(auto, `${kept}${block}`, { mode: 0o600, owner });
      await c.fs.writeFileAtomic(`${dataDir}/recovery.signal`, '', { mode: 0o600, owner });
    },
    show: [`comment out recovery_target*, restore_command and archive_mode in ${auto}, then append:`, ...settings.map((l) => `  | ${l}`), `touch ${dataDir}/recovery.signal`],
  };
}

/**
 * A restore promoted with archiving off leaves its new timeline's history file unarchived (no .ready):
 * pushed into the cluster's own stanza once archiving is on, so a later restore there can follow the
 * timeline (and, after a takeover, so the other hosts sharing the stanza see it).
 */
export function archiveNewHistoryStep(push: (file: string) => Cmd, dataDir: string, recovered: RecoveredState): Step {
  return {
    id: 'archive-new-history',
    title: "archive the new timeline's history file into the cluster's own stanza",
    effect: 'write',
    run: async (ctx) => {
      const file = `${dataDir}/pg_wal/${historyFileName(recovered.timeline)}`;
      if (!(await ctx.fs.exists(file))) throw new Error(`${file} is missing: the restored cluster did not write its timeline's history`);
      await ctx.runner.run(push(file));
    },
    show: [`$ runuser -u postgres -- pgbackrest --stanza=<own> --no-archive-async archive-push ${dataDir}/pg_wal/<new timeline>.history`],
  };
}
