// Steps on a cluster's own stanza that several commands end with: check archiving, take a full backup.
import { effectiveArgv, renderArgv } from '../runner/types.js';
import { type Retention } from '../config/schema.js';
import * as pgbr from '../pgbackrest/commands.js';
import type { Step } from '../plan/types.js';
import type { Context } from '../context.js';
import * as pg from '../pg/commands.js';
import { parseInfo } from '../pgbackrest/info.js';
import { readRecord, updateManaged } from '../state/store.js';
import { backupShare } from './measures.js';
import { HOLD_NOTE, INCIDENT_NOTE, retentionNow } from './retention.js';

/** The transaction position read right before a backup began, for the mark that follows it. */
export interface PendingMark {
  nextXid?: string;
}

/**
 * After a full backup pgmam took: remember it, so an idle cluster's next scheduled incr is skipped.
 * With `pending`, the position is the one read before the backup began: a commit during or right after
 * the backup then counts as written since (read afterwards, it would never be backed up by incr/diff).
 */
export const markBackupStep = (scope: pgbr.PgbrScope, name: string, at: { version: string; port: number }, pending?: PendingMark): Step => ({
  id: 'mark-backup',
  title: `remember ${name}'s newest backup and transaction position for backup's change detection`,
  effect: 'write',
  run: async (ctx) => void (await markBackup(ctx, name, scope, at, undefined, pending?.nextXid)),
  show: [`  pgbackrest info + the transaction position read before the backup, into the pgmam record of ${name}`],
});

/** A full backup and its mark, the position read before the backup starts. */
/** `incident`: the full of a pitr or its undo, which expires nothing (steps/retention.ts). */
export function backupAndMark(scope: pgbr.PgbrScope, name: string, why: string, retention: Retention, at: { version: string; port: number }, incident = false): { backup: Step; mark: Step } {
  const pending: PendingMark = {};
  const cmd = pgbr.backup(scope, 'full', retention);
  const backup: Step = {
    ...backupFullStep(scope, name, why, retention),
    run: async (ctx) => {
      pending.nextXid = await readNextXid(ctx.runner, at.version, at.port);
      await ctx.runner.run(pgbr.backup(scope, 'full', await retentionNow(ctx, name, scope, retention, 1, 'full', incident)));
    },
    show: [`$ ${renderArgv(effectiveArgv(cmd, 0))}`, incident ? INCIDENT_NOTE : HOLD_NOTE, '  (the transaction position is read just before, for change detection)'],
  };
  return { backup, mark: markBackupStep(scope, name, at, pending) };
}

export const checkArchivingStep = (scope: pgbr.PgbrScope, name: string): Step => ({
  id: 'check-archiving',
  title: `check that WAL archiving to stanza ${name} works`,
  effect: 'write',
  run: pgbr.check(scope),
});

export const backupFullStep = (scope: pgbr.PgbrScope, name: string, why: string, retention: Retention): Step => ({
  id: 'backup-full',
  title: `take ${why} of ${name}`,
  effect: 'write',
  run: async (ctx) => void (await ctx.runner.run(pgbr.backup(scope, 'full', await retentionNow(ctx, name, scope, retention, 1, 'full')))),
  show: [`$ ${renderArgv(effectiveArgv(pgbr.backup(scope, 'full', retention), 0))}`, HOLD_NOTE],
  progress: backupShare(`full backup of ${name}`, scope.stanza ?? name),
});

/**
 * Record the newest backup's label and the next transaction ID right after pgmam's own backup, for
 * the change detection of later backups. Returns the stanza's backup labels.
 */
export async function markBackup(ctx: Context, name: string, scope: pgbr.PgbrScope, at: { version: string; port: number }, knownLabel?: string, readBefore?: string): Promise<string[]> {
  const labels = knownLabel ? [knownLabel] : (parseInfo((await ctx.runner.run(pgbr.info(scope))).stdout)[0]?.backup ?? []).map((b) => b.label);
  const label = labels.at(-1);
  const nextXid = readBefore ?? (await readNextXid(ctx.runner, at.version, at.port));
  if (label && nextXid) await updateManaged(ctx.fs, ctx.paths.clustersDir, name, (r) => ({ ...r, backupMark: { label, nextXid } }));
  return labels;
}

export async function readNextXid(runner: Context['runner'], version: string, port: number): Promise<string | undefined> {
  const r = await runner.run(pg.psqlValue({ version, port }, 'select pg_snapshot_xmax(pg_current_snapshot())'), { check: false });
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}


/**
 * stanza-delete in every repository the stanza has (stopped first): pgBackRest 2.45 takes one `--repo` at
 * a time when a stanza has several. The attached ones first, the local one last (it is what `list` shows).
 */
export async function deleteStanzaEverywhere(ctx: Pick<Context, 'runner' | 'fs' | 'paths'>, scope: pgbr.PgbrScope, name: string): Promise<void> {
  // A suspended repository is not in the stanza file: its copy of the stanza stays (repo list shows it).
  const attached = ((await readRecord(ctx.fs, ctx.paths.clustersDir, name))?.repos ?? []).filter((a) => !a.suspended);
  // Each stanza-delete removes the stanza's stop file, and the next one requires it: stop before each.
  for (const index of [...attached.map((r) => r.index), 1]) {
    await ctx.runner.run(pgbr.stop(scope), { check: false });
    await ctx.runner.run(pgbr.stanzaDelete(scope, true, index));
  }
}

/** Whether a repository on this host still holds the stanza (its backup or archive directory). */
export const stanzaInRepo = async (fs: Pick<Context['fs'], 'exists'>, repoPath: string, stanza: string): Promise<boolean> =>
  (await fs.exists(`${repoPath}/backup/${stanza}`)) || (await fs.exists(`${repoPath}/archive/${stanza}`));

/**
 * A kept stanza deleted (drop --purge-backups, purge), if the local repository still holds it: the local
 * copy goes last, so without it every copy is gone. Safe to run again. `localOnly`: without a stanza file
 * only the local repository can be reached (the scope names it by path).
 */
export async function deleteStanzaIfKept(ctx: Pick<Context, 'runner' | 'fs' | 'paths'>, scope: pgbr.PgbrScope, name: string, repoPath: string, localOnly = false): Promise<void> {
  if (!(await stanzaInRepo(ctx.fs, repoPath, scope.stanza ?? name))) return;
  if (!localOnly) return deleteStanzaEverywhere(ctx, scope, name);
  await ctx.runner.run(pgbr.stop(scope), { check: false });
  await ctx.runner.run(pgbr.stanzaDelete(scope, true, 1));
}
