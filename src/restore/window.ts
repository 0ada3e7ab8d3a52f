// The recovery window: the times a restore of an app can reach along its current timeline. One
// function for what list and show print and what pitr accepts, so the two never disagree.
import type { BackupInfo } from '../pgbackrest/info.js';
import { abandonedPeriods, lineage, usableBackups, type HistoryEntry, type TimelineRecord } from './timeline.js';

export interface RecoveryWindow {
  /** The first time accepted: one whole second after the first usable backup ended (pgBackRest compares whole seconds). */
  from: string;
  /** The last: now for a running cluster (a restore switches and archives its WAL first), else its newest archived WAL. */
  to: string;
  /** Periods inside it that only an abandoned timeline covers (an earlier pitr went back over them). */
  excluded: Array<{ from: string; to: string }>;
}

export interface WindowInput {
  backups: readonly BackupInfo[];
  /** undefined: not known, so no backup can be placed on the cluster's history: no window. */
  currentTimeline: number | undefined;
  history: HistoryEntry[];
  /** Where the restore's WAL ends: now for a running cluster (local repository), else the newest archived WAL's time. */
  end: Date | undefined;
  /** The timelines pgmam's restores created (the record's), for the abandoned periods. */
  timelines: readonly TimelineRecord[];
}

const iso = (ms: number) => new Date(ms).toISOString();

export function recoveryWindow(w: WindowInput): RecoveryWindow | null {
  if (w.currentTimeline === undefined) return null;
  const usable = usableBackups([...w.backups], w.currentTimeline, w.history);
  const first = usable[0];
  const last = usable.at(-1);
  if (!first || !last) return null;
  const fromMs = (first.timestamp.stop + 1) * 1000;
  // Read within a second of the first backup's end: the window is that one second, not reversed.
  const toMs = Math.max(last.timestamp.stop * 1000, w.end?.getTime() ?? 0, fromMs);
  const excluded = abandonedPeriods([...w.timelines], lineage(w.currentTimeline, w.history))
    .filter((p) => p.untilUs / 1000 > fromMs && p.fromUs / 1000 < toMs)
    .map((p) => ({ from: iso(p.fromUs / 1000), to: iso(p.untilUs / 1000) }));
  return { from: iso(fromMs), to: iso(toMs), excluded };
}

/** Where a target lies against a window: inside, or why not (the first rule it breaks). */
export function placeInWindow(w: RecoveryWindow | null, targetUs: number): 'inside' | 'no-window' | 'before' | 'after' | { excluded: { from: string; to: string } } {
  if (!w) return 'no-window';
  if (targetUs < Date.parse(w.from) * 1000) return 'before';
  if (targetUs > Date.parse(w.to) * 1000) return 'after';
  const hit = w.excluded.find((p) => targetUs > Date.parse(p.from) * 1000 && targetUs < Date.parse(p.to) * 1000);
  return hit ? { excluded: hit } : 'inside';
}
