// Parses pg_controldata output: system identifier, cluster state, timeline.
export interface ControlData {
  systemId: string | undefined;
  state: string | undefined;
  timeline: number | undefined;
  /** "Latest checkpoint location" (an LSN such as 0/3000060). */
  checkpointLsn?: string | undefined;
  /** "Bytes per WAL segment" (16 MB unless initdb chose otherwise). */
  walSegmentBytes?: number | undefined;
  /** The settings a recovery of this cluster's WAL needs at least (PostgreSQL refuses to replay with less). */
  recoveryMinimums?: Partial<Record<RecoveryMinimum, number>>;
}

/** pg_controldata's name of each setting a server replaying the WAL must not set lower. */
const RECOVERY_MINIMUMS = {
  max_connections: 'max_connections setting',
  max_worker_processes: 'max_worker_processes setting',
  max_wal_senders: 'max_wal_senders setting',
  max_prepared_transactions: 'max_prepared_xacts setting',
  max_locks_per_transaction: 'max_locks_per_xact setting',
} as const;
export type RecoveryMinimum = keyof typeof RECOVERY_MINIMUMS;

export function parseControlData(text: string): ControlData {
  // "Key:   value" lines, split at the first colon (keys hold apostrophes, never colons).
  const fields = new Map(
    text.split('\n').flatMap((l) => {
      const i = l.indexOf(':');
      return i > 0 ? [[l.slice(0, i).trim(), l.slice(i + 1).trim()] as const] : [];
    }),
  );
  const get = (key: string) => fields.get(key);
  const tli = get("Latest checkpoint's TimeLineID");
  const seg = get('Bytes per WAL segment');
  const recoveryMinimums: Partial<Record<RecoveryMinimum, number>> = {};
  for (const [setting, key] of Object.entries(RECOVERY_MINIMUMS) as Array<[RecoveryMinimum, string]>) {
    const v = get(key);
    if (v !== undefined && /^\d+$/.test(v)) recoveryMinimums[setting] = Number(v);
  }
  return { systemId: get('Database system identifier'), state: get('Database cluster state'), timeline: tli === undefined ? undefined : Number(tli), checkpointLsn: get('Latest checkpoint location'), walSegmentBytes: seg === undefined ? undefined : Number(seg), recoveryMinimums };
}

/** `First log segment after reset:` from `pg_resetwal -n`. */
export function parseResetPreview(text: string): string | undefined {
  return /First log segment after reset:\s+([0-9A-F]{24})/.exec(text)?.[1];
}

/** The WAL segment after `wal` (16 MB segments: 0x100 per log file). */
export function nextSegment(wal: string): string {
  const tli = wal.slice(0, 8);
  let log = parseInt(wal.slice(8, 16), 16);
  let seg = parseInt(wal.slice(16, 24), 16) + 1;
  if (seg > 0xff) {
    seg = 0;
    log += 1;
  }
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${tli}${hex(log)}${hex(seg)}`;
}

/**
 * The first segment a reset must use: pg_resetwal's own choice (from pg_wal alone), or — when the
 * archive already holds that name or later ones of any timeline — the one after the archive's newest,
 * on the reset's timeline. Otherwise archive-push meets names the repository has and archiving stops.
 */
export function resetStartSegment(preview: string | undefined, archiveMax: string | undefined): string | undefined {
  if (!preview || !archiveMax) return undefined;
  const after = nextSegment(archiveMax);
  return after.slice(8) > preview.slice(8) ? `${preview.slice(0, 8)}${after.slice(8)}` : undefined;
}
