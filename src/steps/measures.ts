// What a long step's progress line reads: a data directory filling up, pgBackRest's own backup lock,
// a dump file growing. Each is a read of the host that changes nothing.
import type { Progress } from '../plan/types.js';
import { archiveMax, type BackupInfo, type StanzaInfo } from '../pgbackrest/info.js';
import * as pg from '../pg/commands.js';
import { lsnBytes } from '../pg/replication.js';

/** pgBackRest's default lock-path: a running backup keeps its share done (in 1/10000) in `<stanza>-backup.lock` there. */
export const PGBACKREST_LOCK_DIR = '/tmp/pgbackrest';
const WAL_SEGMENT_BYTES = 16 * 1024 * 1024;

/** A directory being filled (a restore, a base backup) against what it will hold. */
export const dirGrowth = (what: string, dir: string, total: number | undefined): Progress => ({
  what,
  total,
  done: (ctx) => ctx.fs.treeBytes(dir),
});

/** A file being written (a dump) against the size of what it dumps. */
export const fileGrowth = (what: string, file: string, total: number | undefined): Progress => ({
  what,
  total,
  done: async (ctx) => (await ctx.fs.stat(file))?.size,
});

/**
 * A pgBackRest backup: the share done it writes into its lock file (2.45 rewrites it every 0.1 %; for
 * a diff or incr, a share of the changed files). The lock file sits in a directory postgres writes:
 * only a number is taken from it.
 */
export const backupShare = (what: string, stanza: string): Progress => ({
  what,
  total: 10000,
  unit: 'share',
  done: async (ctx) => {
    const text = await ctx.fs.readText(`${PGBACKREST_LOCK_DIR}/${stanza}-backup.lock`);
    const share = text ? (JSON.parse(text) as { pctCplt?: unknown }).pctCplt : undefined;
    return typeof share === 'number' ? share : undefined;
  },
});

/** A base backup being streamed: PostgreSQL's own count of bytes sent against its estimate (pg_stat_progress_basebackup). */
export const baseBackupStreamed = (what: string, source: { version: string; port: number }): Progress => ({
  what,
  total: undefined,
  done: async (ctx) => {
    const r = await ctx.runner.run(pg.psqlValue(source, "select coalesce(sum(backup_streamed), 0)::text || '|' || coalesce(sum(backup_total), 0)::text from pg_stat_progress_basebackup"), { check: false });
    const [done, total] = r.stdout.trim().split('|').map(Number);
    return r.exitCode === 0 && done ? { done, total: total ?? 0 } : undefined;
  },
});

/** What a restore of `set` will replay: from the backup's start to the end of the archive's newest segment (bytes of WAL). */
export function replaySpan(set: BackupInfo | undefined, stanza: StanzaInfo | undefined): { from: number; to: number | undefined } | undefined {
  const start = set?.lsn?.start;
  if (!start) return undefined;
  const max = stanza && archiveMax(stanza)?.wal;
  // A segment name is timeline, then the LSN's high 32 bits, then the segment within them.
  const to = max && /^[0-9A-F]{24}$/.test(max) ? parseInt(max.slice(8, 16), 16) * 2 ** 32 + (parseInt(max.slice(16), 16) + 1) * WAL_SEGMENT_BYTES : undefined;
  return { from: lsnBytes(start), to };
}
