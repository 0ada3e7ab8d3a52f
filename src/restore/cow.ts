// Copy-on-write copies of a running cluster (branch create --cow, branch sync --cow): its data
// directory copied by reflink (blocks shared, not written) inside a non-exclusive backup held in one
// database session, then recovered from its archive like a restored backup. The source keeps running
// and is never stopped or reconfigured; it only sees a checkpoint and a WAL switch.
import { dirname } from 'node:path';
import type { Context } from '../context.js';
import * as pg from '../pg/commands.js';
import { restoreCommandFor } from '../pg/replication.js';
import { fail, pass, type Guard, type Step } from '../plan/types.js';
import { CommandFailedError, type Runner } from '../runner/types.js';
import { waitArchived, type LiveCluster } from './steps.js';

/** Whether the source's and the copy's directories can share blocks, and why (not). */
export type ReflinkFacts = { ok: true; how: string } | { ok: false; reason: string };

/**
 * Read-only: both directories on one filesystem (the copy's nearest existing ancestor), and that
 * filesystem shares blocks — btrfs always, XFS when made with reflink=1 (xfs_info says so).
 */
export async function gatherReflink(ctx: Context, runner: Runner, sourceDir: string, copyDir: string): Promise<ReflinkFacts> {
  const [from, to] = await Promise.all([ctx.fs.filesystem(sourceDir), ctx.fs.filesystem(dirname(copyDir))]);
  if (from.device !== to.device) return { ok: false, reason: `${sourceDir} and ${dirname(copyDir)} are on different filesystems: a copy there cannot share blocks` };
  if (from.type === 'btrfs') return { ok: true, how: `btrfs shares blocks (${sourceDir} and ${copyDir} are on one filesystem)` };
  if (from.type !== 'xfs') return { ok: false, reason: `${sourceDir} is on ${from.type}, which cannot share blocks (copy-on-write needs XFS made with reflink=1, or btrfs)` };
  const mount = (await runner.run(pg.mountPointOf(sourceDir), { check: false })).stdout.trim();
  const info = mount ? await runner.run(pg.xfsInfo(mount), { check: false }) : undefined;
  if (!info || info.exitCode !== 0) return { ok: false, reason: `cannot tell whether the XFS filesystem of ${sourceDir} shares blocks: xfs_info ${mount || '?'} failed (is xfsprogs installed?)` };
  if (!/\breflink=1\b/.test(info.stdout)) return { ok: false, reason: `the XFS filesystem at ${mount} was made without reflink (xfs_info: reflink=0): its files cannot share blocks` };
  return { ok: true, how: `XFS with reflink=1 at ${mount} (${sourceDir} and ${copyDir} are on it)` };
}

/** How a copy of the parent is made: by reflink while it runs, or restored from its backups; the plan says which and why. */
export interface CopyChoice {
  cow: boolean;
  why: string;
}

/**
 * --cow asks for it (guards refuse when it cannot be), --no-cow for the restore path; by default a
 * copy-on-write copy wherever it can be made: no time target or database filter, the parent online,
 * a filesystem that shares blocks.
 */
export function chooseCopy(asked: boolean | undefined, reflink: ReflinkFacts | undefined, parentRunning: boolean, restoreOnly: string | undefined): CopyChoice {
  if (asked === true) return { cow: true, why: `--cow: ${reflink?.ok ? reflink.how : 'asked for'}` };
  if (asked === false) return { cow: false, why: '--no-cow: restored from the backups' };
  if (restoreOnly) return { cow: false, why: `restored from the backups: ${restoreOnly}` };
  if (!reflink?.ok) return { cow: false, why: `restored from the backups: ${reflink ? reflink.reason : 'the filesystem is not known'}` };
  if (!parentRunning) return { cow: false, why: 'restored from the backups: the parent is down (a copy-on-write copy is taken inside a backup of the running parent)' };
  return { cow: true, why: `copy-on-write (reflink): ${reflink.how}` };
}

/** What --cow needs, checked before anything changes. */
export function cowGuards(reflink: ReflinkFacts | undefined, parentLabel: string, parentRunning: boolean): Guard[] {
  return [
    { id: 'filesystem-shares-blocks', check: () => (reflink && !reflink.ok ? fail(`--cow refused: ${reflink.reason}`, 'leave out --cow: the branch is then restored from the backups') : pass) },
    { id: 'parent-is-running', check: () => (parentRunning ? pass : fail(`--cow refused: ${parentLabel} is down; a copy-on-write copy is taken inside a backup of the running parent`, `start it (pg_ctlcluster ${parentLabel.replace('/', ' ')} start), or leave out --cow`)) },
  ];
}

/** Left out of the copy as a base backup leaves them out: the server's runtime files, and what recovery or the copy's own start makes. */
const SKIPPED_FILES = new Set(['postmaster.pid', 'postmaster.opts', 'backup_label', 'backup_label.old', 'tablespace_map', 'backup_manifest', 'current_logfiles', 'postgresql.auto.conf.tmp']);
/** Copied as empty directories: their contents belong to the running source (WAL comes from the archive). */
export const EMPTIED_DIRS = ['pg_wal', 'pg_replslot', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_stat_tmp', 'pg_subtrans'];
export const copiedEntry = (e: string) => !SKIPPED_FILES.has(e) && !EMPTIED_DIRS.includes(e) && !e.endsWith('.signal') && !e.startsWith('pgsql_tmp');

/** cp's complaints about files the running source removed meanwhile (a dropped table, a temporary file): the WAL replay accounts for them. */
export const onlyVanished = (stderr: string) => stderr.trim().split('\n').every((l) => /No such file or directory/.test(l));

export interface CowSpec {
  source: LiveCluster;
  /** The copy's (emptied) data directory. */
  dataDir: string;
  owner: { uid: number; gid: number };
  label: string;
  archiveWaitTimeout: number;
}

/**
 * pg_backup_start (fast checkpoint) in a held session, reflink copy as postgres, the emptied
 * directories, pg_backup_stop → backup_label (and tablespace_map) in the copy, then wait until the
 * backup's last WAL segment is archived (recovery reads it from there). Killed half-way, the
 * session ends and PostgreSQL aborts the backup by itself.
 */
export function cowCopyStep(s: CowSpec): Step {
  const target = { version: s.source.id.version, port: s.source.port };
  return {
    id: 'cow-copy',
    title: `copy ${s.source.dataDir} into ${s.dataDir} by reflink (shared blocks), inside a backup of ${pg.clusterLabel(s.source.id)} that keeps running`,
    effect: 'write',
    run: async (ctx) => {
      const session = await ctx.runner.hold(pg.psqlHeld(target));
      try {
        await session.query(`select pg_backup_start(${pg.literal(s.label)}, true)`);
        const entries = (await ctx.fs.readdir(s.source.dataDir)).filter(copiedEntry);
        const r = await ctx.runner.run(pg.reflinkCopy(entries.map((e) => `${s.source.dataDir}/${e}`), s.dataDir), { check: false });
        if (r.exitCode !== 0 && !(r.exitCode === 1 && onlyVanished(r.stderr))) throw new CommandFailedError(r);
        for (const d of [...EMPTIED_DIRS, 'pg_wal/archive_status']) await ctx.fs.mkdirp(`${s.dataDir}/${d}`, { mode: 0o700, owner: s.owner });
        // Text columns in base64 (one line each): the label file has newlines of its own.
        const out = await session.query("select pg_walfile_name(lsn) || '|' || translate(encode(convert_to(labelfile, 'UTF8'), 'base64'), E'\\n', '') || '|' || translate(encode(convert_to(coalesce(spcmapfile, ''), 'UTF8'), 'base64'), E'\\n', '') from pg_backup_stop(false)");
        const [segment = '', label = '', spcmap = ''] = out.trim().split('|');
        const text = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');
        if (!/^[0-9A-F]{24}$/.test(segment) || !label) throw new Error(`pg_backup_stop returned no backup label (${out.trim().slice(0, 80)})`);
        await ctx.fs.writeFileAtomic(`${s.dataDir}/backup_label`, text(label), { mode: 0o600, owner: s.owner });
        if (spcmap) await ctx.fs.writeFileAtomic(`${s.dataDir}/tablespace_map`, text(spcmap), { mode: 0o600, owner: s.owner });
        // pg_backup_stop(true) polls once a second; this reads the archiver every 50 ms.
        await waitArchived(ctx, s.source, segment, s.archiveWaitTimeout);
      } finally {
        await session.close();
      }
    },
    show: [
      `$ psql -p ${s.source.port}  (one session, held for the whole copy)`,
      `  select pg_backup_start('${s.label}', true)`,
      `$ runuser -u postgres -- cp -a --reflink=always -t ${s.dataDir} ${s.source.dataDir}/<each entry but ${[...SKIPPED_FILES].join(', ')}, *.signal>`,
      `  mkdir ${EMPTIED_DIRS.join(', ')} (empty) in ${s.dataDir}`,
      '  select … from pg_backup_stop(false)  → backup_label (and tablespace_map) written into the copy',
      '  poll pg_stat_archiver until the backup\'s last WAL segment is archived; end the session',
    ],
  };
}

/**
 * The copy's recovery: the source's archive (its stanza, the copy's own data directory), to its end on
 * the source's timeline, archiving off. Its archive-get is synchronous: the recovery needs a few
 * segments (the backup was taken seconds ago), where the stanza's asynchronous mode spends about
 * 0.2 s on each call, found or not (32 ms without, measured here), and would share one queue with
 * any other recovery from the same stanza.
 */
export function cowRecoverySettings(stanza: string, dataDir: string, configIncludePath: string | undefined, timeline: number): string[] {
  const get = restoreCommandFor({ stanza, dataDir, configIncludePath }).replace(' archive-get ', ' --no-archive-async archive-get ');
  return [
    `restore_command = ${pg.literal(get)}`,
    `recovery_target_timeline = '${timeline}'`,
    "archive_mode = 'off'",
  ];
}
