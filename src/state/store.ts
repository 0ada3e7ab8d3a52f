// pgmam's own state: one JSON file per managed cluster under <state-dir>/clusters/.
// Only what the host cannot tell us lives here (managed, role, parent, times, preserved directories);
// ports, status and backups are always read from the host.
import { z } from 'zod';
import type { HostFs } from '../host-fs.js';

export const preservedSchema = z.object({ path: z.string(), reason: z.string(), createdAt: z.string() });

/** WAL an attached repository missed while suspended: from when its archive stopped being whole to the end of the full that bridged it (null: not yet). */
export const repoGapSchema = z.object({ from: z.string(), to: z.string().nullable(), fromWal: z.string().nullable() });
export type RepoGap = z.infer<typeof repoGapSchema>;

export const attachmentSchema = z.object({
  name: z.string(),
  index: z.number().int().min(2),
  /**
   * Set while backup has taken the repository out of the stanza file: it failed while WAL waiting only
   * for it passed repo-suspend-mb. `since`: when its archive stopped being whole (the last WAL archived
   * everywhere); `fromWal`: the first segment it lacks.
   */
  suspended: z.object({ at: z.string(), since: z.string(), fromWal: z.string().nullable(), waitingMb: z.number(), reason: z.string() }).nullable().default(null),
  /** Restores from this repository cannot replay across these. */
  gaps: z.array(repoGapSchema).default([]),
});
export type Attachment = z.infer<typeof attachmentSchema>;

/** One restore drill's outcome: RTO (restore, recovery and start) and RPO (how far the restored state lagged the app at the drill's start). */
export const drillResultSchema = z.object({
  at: z.string(),
  ok: z.boolean(),
  rtoSeconds: z.number().nullable(),
  rpoSeconds: z.number().nullable(),
  rpoBytes: z.number().nullable(),
  /** Commits the restore lacked of those the app had at the drill's start (null: not known). */
  lostTransactions: z.number().nullable().default(null),
  /** The last transaction the restore replayed (its commit time), null when it replayed none. */
  lastReplayedAt: z.string().nullable(),
  backup: z.string().nullable(),
  /** The repository restored from (null: a failed drill's default). */
  repo: z.string().nullable(),
  /** A failed drill: the step, and the first line of why. */
  failedStep: z.string().nullable(),
  error: z.string().nullable(),
});
export type DrillResult = z.infer<typeof drillResultSchema>;

export const managedSchema = z.object({
  format: z.literal(1),
  cluster: z.string(),
  name: z.string(),
  version: z.string(),
  role: z.enum(['app', 'branch', 'replica']),
  parent: z.string().nullable(),
  stanza: z.string(),
  stanzaFile: z.string(),
  repoPath: z.string(),
  createdAt: z.string(),
  syncedAt: z.string().nullable().default(null),
  preserved: z.array(preservedSchema).default([]),
  /**
   * Written right after pgmam's own backup: the backup's label and the next transaction ID then.
   * Unchanged next-xid and label = nothing was written since (maintenance WAL does not count).
   */
  backupMark: z.object({ label: z.string(), nextXid: z.string() }).nullable().default(null),
  /** The same mark per attached repository (by name): each repository's backups are skipped on their own. */
  repoMarks: z.record(z.string(), z.object({ label: z.string(), nextXid: z.string() })).default({}),
  /** Timelines pgmam's restores created, so later restores can refuse targets only an abandoned timeline covers. */
  timelines: z
    .array(z.object({ timeline: z.number(), parent: z.number(), target: z.string().nullable(), promotedAt: z.string() }))
    .default([]),
  /**
   * Set by drop when the cluster had preserved data directories: the record stays, only to list them
   * and let prune remove them (its data directory named the preserved ones), then goes.
   */
  dropped: z.object({ at: z.string(), dataDir: z.string() }).nullable().default(null),
  /** The repositories besides the local one (always repo1) its stanza file names, each at its pgBackRest index. */
  repos: z.array(attachmentSchema).default([]),
  /** Brought here by `pgmam recover` from a shared repository: a copy under a new name, or a takeover of the app's own stanza. */
  origin: z.object({ stanza: z.string(), repo: z.string(), host: z.string().nullable(), mode: z.enum(['copy', 'takeover']), timeline: z.number(), at: z.string() }).nullable().default(null),
  /**
   * Set by check when another host took the app over (a newer timeline in its shared stanza): the cluster
   * was stopped and its start at boot disabled; every changing command refuses it.
   */
  fenced: z.object({ at: z.string(), repo: z.string(), timeline: z.number(), host: z.string().nullable(), reason: z.string() }).nullable().default(null),
  /** A replica's link to its primary (`parent`): its slot and replication role there, and its password file (pgmam's, 0600 postgres). */
  replication: z.object({ slot: z.string(), role: z.string(), passFile: z.string() }).nullable().default(null),
  /** Set on an app's old primary by `replica promote`: the cluster that took the app over; `<app>` resolves through it. */
  successor: z.string().nullable().default(null),
  /** Restore drills (pgmam drill): the last one, and the last that succeeded (check's drill-max-age counts from it). */
  drill: z.object({ last: drillResultSchema, lastOk: drillResultSchema.nullable() }).nullable().default(null),
});
export type ManagedCluster = z.infer<typeof managedSchema>;
export type Preserved = z.infer<typeof preservedSchema>;

export const recordPath = (clustersDir: string, name: string) => `${clustersDir}/${name}.json`;

export async function readManaged(fs: HostFs, clustersDir: string): Promise<{ records: ManagedCluster[]; unreadable: string[] }> {
  const records: ManagedCluster[] = [];
  const unreadable: string[] = [];
  let names: string[];
  try {
    names = (await fs.readdir(clustersDir)).filter((f) => f.endsWith('.json'));
  } catch {
    return { records, unreadable: [clustersDir] };
  }
  // Read together (a host with many apps has as many records), parsed in name order.
  const texts = await Promise.all(names.map((f) => fs.readText(`${clustersDir}/${f}`).catch(() => null)));
  names.forEach((f, i) => {
    const text = texts[i];
    if (text === undefined) return;
    try {
      if (text === null) throw new Error('unreadable');
      records.push(managedSchema.parse(JSON.parse(text)));
    } catch {
      unreadable.push(`${clustersDir}/${f}`);
    }
  });
  return { records, unreadable };
}

export async function readRecord(fs: HostFs, clustersDir: string, name: string): Promise<ManagedCluster | undefined> {
  const text = await fs.readText(recordPath(clustersDir, name));
  return text === undefined ? undefined : managedSchema.parse(JSON.parse(text));
}

/** Read-modify-write of one record (callers hold the cluster's lock). */
export async function updateManaged(fs: HostFs, clustersDir: string, name: string, change: (r: ManagedCluster) => ManagedCluster): Promise<void> {
  const rec = await readRecord(fs, clustersDir, name);
  if (!rec) throw new Error(`pgmam record of ${name} is missing`);
  await writeManaged(fs, clustersDir, change(rec));
}

export async function writeManaged(fs: HostFs, clustersDir: string, rec: ManagedCluster): Promise<void> {
  // World-readable, so `pgmam list` works for any user.
  await fs.mkdirp(clustersDir, { mode: 0o755 });
  await fs.writeFileAtomic(recordPath(clustersDir, rec.name), `${JSON.stringify(rec, null, 2)}\n`, { mode: 0o644 });
}

/** A new attachment: whole, never suspended. */
export const attachment = (name: string, index: number): Attachment => ({ name, index, suspended: null, gaps: [] });

/**
 * The cluster that is an app's primary now: the record of that name, or after a failover the one its
 * `successor` chain ends at (replica promote). An app is named by its stanza; commands taking <app> resolve it here.
 */
export function currentPrimary(records: readonly ManagedCluster[], name: string): ManagedCluster | undefined {
  let r = records.find((x) => x.name === name);
  const seen = new Set<string>();
  while (r?.successor && !seen.has(r.name)) {
    seen.add(r.name);
    const next: string = r.successor;
    r = records.find((x) => x.name === next);
  }
  return r;
}

/** The directory pitr --undo puts back: the newest one a pitr preserved. */
export const undoSource = (preserved: readonly Preserved[]): Preserved | undefined => [...preserved].reverse().find((p) => p.reason === 'pitr');

/** `<data directory>.pre-<what>-<stamp>`, a sibling of the data directory: no '/' after the prefix, so no `/..` or deeper path. */
export const isPreservedName = (dataDir: string, path: string) => path.startsWith(`${dataDir}.pre-`) && /^[A-Za-z0-9._:-]+$/.test(path.slice(`${dataDir}.pre-`.length));
