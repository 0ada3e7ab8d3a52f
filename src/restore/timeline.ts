// Timelines: which backups and which target times lie on a cluster's current timeline history, so a
// restore never follows an abandoned timeline (after an earlier pitr or its undo).
import type { BackupInfo } from '../pgbackrest/info.js';

export interface HistoryEntry {
  /** This timeline ... */
  timeline: number;
  /** ... was left at this LSN for the next one in the lineage. */
  switchLsn: bigint;
  reason: string;
}

/** `1\t0/7000160\tbefore 2026-...` lines of a `0000000N.history` file. */
export function parseHistory(text: string): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)\s*(.*)$/.exec(line);
    if (m) out.push({ timeline: Number(m[1]), switchLsn: parseLsn(m[2]!), reason: m[3]!.trim() });
  }
  return out;
}

export function parseLsn(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

export const timelineOfWal = (walName: string) => parseInt(walName.slice(0, 8), 16);
export const historyFileName = (tli: number) => `${tli.toString(16).toUpperCase().padStart(8, '0')}.history`;

/** Timelines of the current lineage, oldest first, ending with the current one. */
export function lineage(current: number, history: HistoryEntry[]): number[] {
  return [...history.map((h) => h.timeline), current];
}

/**
 * A backup can serve a restore along the current timeline when it was taken on that timeline, or on
 * an ancestor before the lineage left it (its stop LSN not past the switch point).
 */
export function backupIsOnLineage(b: BackupInfo, current: number, history: HistoryEntry[]): boolean {
  const start = b.archive?.start;
  if (!start) return false;
  const tli = timelineOfWal(start);
  if (tli === current) return true;
  const entry = history.find((h) => h.timeline === tli);
  const stop = b.lsn?.stop;
  return Boolean(entry && stop && parseLsn(stop) <= entry.switchLsn);
}

export function usableBackups(backups: BackupInfo[], current: number, history: HistoryEntry[]): BackupInfo[] {
  return backups.filter((b) => !b.error && backupIsOnLineage(b, current, history));
}

/**
 * The newest usable backup that ends strictly before the target's whole second: pgBackRest compares
 * stop times in whole seconds and refuses a set whose stop is not before the target (#817, [075]).
 */
export function chooseSet(usable: BackupInfo[], targetUs: number): BackupInfo | undefined {
  const targetSec = Math.floor(targetUs / 1_000_000);
  return [...usable].reverse().find((b) => b.timestamp.stop < targetSec);
}

/** A period only an abandoned timeline covers: from the target an earlier restore went back to, until its promotion. */
export interface AbandonedPeriod {
  timeline: number;
  fromUs: number;
  untilUs: number;
}

export interface TimelineRecord {
  timeline: number;
  parent: number;
  /** The target time of the restore that created it; null for --latest. */
  target: string | null;
  promotedAt: string;
}

export function abandonedPeriods(records: TimelineRecord[], lineageTlis: number[]): AbandonedPeriod[] {
  const out: AbandonedPeriod[] = [];
  for (const r of records) {
    if (!lineageTlis.includes(r.timeline) || r.target === null) continue;
    const fromUs = Date.parse(r.target) * 1000;
    const untilUs = Date.parse(r.promotedAt) * 1000;
    if (Number.isFinite(fromUs) && Number.isFinite(untilUs) && untilUs > fromUs) out.push({ timeline: r.parent, fromUs, untilUs });
  }
  return out;
}
