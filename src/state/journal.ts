// The journal of one running operation: written (and fsynced) before each step, so that after a
// SIGKILL or a power loss `pgmam list` can say what was interrupted where, and a re-run can finish
// or roll back what the interrupted run left. One file per target cluster under <state-dir>/journal/.
import { z } from 'zod';
import type { HostFs } from '../host-fs.js';

export const journalSchema = z.object({
  format: z.literal(1),
  /** The command as the user knows it: 'initcluster', 'pitr', 'branch create', … */
  command: z.string(),
  /** '15/app1' */
  target: z.string(),
  name: z.string(),
  /** The command line that finishes or rolls back this operation when run again. */
  rerun: z.string(),
  pid: z.number(),
  /** Process groups of the children pgmam started (each child leads its own group). */
  groups: z.array(z.number()).default([]),
  startedAt: z.string(),
  steps: z.array(z.string()),
  /** Index of the step that was running (or about to run). */
  at: z.number(),
  /** 'running': the process was (or is) inside the steps; 'failed': a step failed and was not undone. */
  status: z.enum(['running', 'failed']),
  error: z.string().nullable().default(null),
  /** What a re-run needs to finish or roll back (paths, timelines), as the plan knew them. */
  data: z.record(z.string(), z.unknown()).default({}),
});
export type Journal = z.infer<typeof journalSchema>;

export const journalDir = (stateDir: string) => `${stateDir}/journal`;
export const journalPath = (stateDir: string, name: string) => `${journalDir(stateDir)}/${name}.json`;

export async function writeJournal(fs: HostFs, stateDir: string, j: Journal): Promise<void> {
  await fs.mkdirp(journalDir(stateDir), { mode: 0o755 });
  await fs.writeFileAtomic(journalPath(stateDir, j.name), `${JSON.stringify(j, null, 2)}\n`, { mode: 0o644 });
}

export async function readJournal(fs: HostFs, stateDir: string, name: string): Promise<Journal | undefined> {
  const text = await fs.readText(journalPath(stateDir, name));
  if (text === undefined) return undefined;
  try {
    return journalSchema.parse(JSON.parse(text));
  } catch {
    // A journal we cannot read still says something was interrupted.
    return { format: 1, command: 'unknown', target: name, name, rerun: '', pid: 0, groups: [], startedAt: '', steps: [], at: 0, status: 'running', error: 'unreadable journal', data: {} };
  }
}

export async function readJournals(fs: HostFs, stateDir: string): Promise<Journal[]> {
  const names = (await fs.readdir(journalDir(stateDir))).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length));
  const all = await Promise.all(names.map((n) => readJournal(fs, stateDir, n)));
  return all.filter((j): j is Journal => j !== undefined);
}

/** Written by the PGMAM_TEST_PAUSE_BEFORE seam when the run has stopped before its step. */
export const pausedPath = (stateDir: string, name: string) => `${journalDir(stateDir)}/${name}.paused`;

export async function removeJournal(fs: HostFs, stateDir: string, name: string): Promise<void> {
  await fs.rm(journalPath(stateDir, name));
  await fs.rm(pausedPath(stateDir, name));
}

export interface Liveness {
  isProcessAlive(pid: number): boolean;
  isGroupAlive(pgid: number): boolean;
}

/** A process and its children are gone only when the pid and every child's process group are. */
export const ownerAlive = (h: Liveness, o: { pid: number; groups?: readonly number[] }): boolean =>
  (o.pid > 0 && h.isProcessAlive(o.pid)) || (o.groups ?? []).some((g) => h.isGroupAlive(g));

export const stepName = (j: Journal) => j.steps[j.at] ?? '(before the first step)';

/** One line for list and check: "interrupted pitr at restore-backup (run: pgmam pitr app1 --to '…')". */
export const describeJournal = (j: Journal) =>
  `${j.status === 'failed' ? 'failed' : 'interrupted'} ${j.command} at ${stepName(j)}${j.rerun ? ` (run: ${j.rerun})` : ''}`;
