// Incident-safe retention: the configured retention (one source: pgmam's configuration), raised so
// that the full a pitr or undo takes expires nothing, and any backup keeps, for each preserved data
// directory, the recovery window the app had when it was made (its timeline's base backups). Every
// backup pgmam takes goes through here; pruning the directories releases the hold.
import type { Retention } from '../config/schema.js';
import type { Context } from '../context.js';
import * as pgbr from '../pgbackrest/commands.js';
import { backupsIn, parseInfo, type BackupInfo } from '../pgbackrest/info.js';
import { readRecord, type Preserved } from '../state/store.js';

export interface HeldRetention {
  retention: Retention;
  /** The fulls kept beyond the configured retention's reach (oldest first). */
  held: string[];
}

/** The oldest full of the window a repository had at `atMs` under `base`: the newest `full` fulls then (count), or those reaching `full` days back (time). */
function windowStartAt(fulls: readonly BackupInfo[], atMs: number, base: Retention): BackupInfo | undefined {
  const before = fulls.filter((b) => b.timestamp.stop * 1000 < atMs);
  if (base.fullType === 'count') return before.at(-base.full) ?? before[0];
  const cutoff = atMs - base.full * 86_400_000;
  const older = before.filter((b) => b.timestamp.stop * 1000 < cutoff);
  return older.at(-1) ?? before[0];
}

/**
 * The retention a backup's expire runs with. `adding`: 1 when the backup is a full (expire counts it).
 * `incident`: the full a pitr or its undo takes for the new timeline, which expires nothing (it is not
 * a scheduled backup; the window the app had stays). Otherwise each preserved directory keeps the
 * window the app had when it was made, until prune removes it.
 */
export function heldRetention(base: Retention, backups: readonly BackupInfo[], preserved: readonly Preserved[], now: Date, adding: 0 | 1, incident = false): HeldRetention {
  const fulls = backups.filter((b) => b.type === 'full' && !b.error).sort((a, b) => a.timestamp.stop - b.timestamp.stop);
  const starts = incident ? fulls.slice(0, 1) : preserved.flatMap((p) => windowStartAt(fulls, Date.parse(p.createdAt), base) ?? []);
  if (!starts.length) return { retention: base, held: [] };
  const oldest = starts.reduce((a, b) => (b.timestamp.stop < a.timestamp.stop ? b : a));
  const from = fulls.indexOf(oldest);
  const wanted = base.fullType === 'count' ? fulls.length - from + adding : Math.floor((now.getTime() - oldest.timestamp.stop * 1000) / 86_400_000) + 1;
  const full = Math.max(base.full, wanted);
  if (full === base.full) return { retention: base, held: [] };
  // Held: what the configured retention alone would have let go.
  const free = base.fullType === 'count' ? fulls.length + adding - base.full : fulls.filter((b) => now.getTime() - b.timestamp.stop * 1000 >= base.full * 86_400_000).length - 1;
  return { retention: { ...base, full }, held: fulls.slice(from, Math.max(from, free)).map((b) => b.label) };
}

/**
 * At the moment a backup runs: the app's preserved directories from its record and the repository's
 * backups from `pgbackrest info` (read only when something may be held).
 */
export async function retentionNow(c: Context, name: string, scope: pgbr.PgbrScope, base: Retention, repo: number, type: 'full' | 'diff' | 'incr', incident = false): Promise<Retention> {
  const rec = await readRecord(c.fs, c.paths.clustersDir, name).catch(() => undefined);
  if (!incident && !rec?.preserved.length) return base;
  const info = await c.runner.run(pgbr.info(scope, repo), { check: false });
  const stanza = info.exitCode === 0 ? parseInfo(info.stdout).find((s) => s.name === scope.stanza) : undefined;
  return heldRetention(base, backupsIn(stanza, repo), rec?.preserved ?? [], c.clock.now(), type === 'full' ? 1 : 0, incident).retention;
}

/** What a shown backup command adds, where the hold is worked out only when the backup runs. */
export const HOLD_NOTE = "  (retention raised, when the backup runs, to keep the recovery window each preserved data directory of the app was made in)";
export const INCIDENT_NOTE = '  (retention raised, when the backup runs, so this full expires nothing: the window the app had stays)';
