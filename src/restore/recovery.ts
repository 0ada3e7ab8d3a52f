// Settling an interrupted restore (pitr, branch sync) from its journal: what the journal records, and
// the rollback that puts the preserved data directory back. A restore that promoted is finished by
// its own command instead (writes may already have reached it).
import { z } from 'zod';
import type { Context } from '../context.js';
import * as pg from '../pg/commands.js';
import { parseControlData } from '../pg/controldata.js';
import type { Step } from '../plan/types.js';
import { ReadOnlyRunner } from '../runner/wrappers.js';
import { replicaViewSchema } from '../steps/replication.js';
import { preservedSchema, updateManaged, type Preserved } from '../state/store.js';
import { stamp, startClusterStep, stopClusterStep, type LiveCluster } from './steps.js';

/** What a restore's plan records: the preserved directory to put back, or the timeline it left. */
export const restoreJournalSchema = z.object({
  version: z.string(),
  dataDir: z.string(),
  preserved: preservedSchema,
  /** The cluster ran before: started again after a rollback (pitr). */
  online: z.boolean(),
  /** The timeline before the restore: a higher one in pg_control means the restore promoted. */
  previousTimeline: z.number(),
  /** pitr's target (ISO) for the timeline record. */
  target: z.string().nullable(),
  /** The cluster's system identifier when the run began (a restore of its own stanza keeps it). */
  systemId: z.string().optional(),
  /** pitr --undo: the preserved directory it puts back in place (`preserved` is where the current one goes). */
  source: preservedSchema.optional(),
  /** The repository the restore read, when not the local one: the local stanza is created again before the next backup. */
  fromRepo: z.number().optional(),
  /** The cluster's replicas: stopped before the restore, laid down again after its full backup. */
  replicas: z.array(replicaViewSchema).optional(),
});
export type RestoreJournal = z.infer<typeof restoreJournalSchema>;

/** The timeline in a data directory's pg_control (0 when unreadable). */
export async function timelineOf(ctx: Context, version: string, dataDir: string): Promise<number> {
  const r = await new ReadOnlyRunner(ctx.runner).run(pg.pgControlData(version, dataDir), { check: false });
  return r.exitCode === 0 ? (parseControlData(r.stdout).timeline ?? 0) : 0;
}

/**
 * Put the preserved data directory back in place of an interrupted restore. One that never promoted
 * accepted no writes and is only what the run made: it is removed. One that promoted may hold what
 * users wrote since: it is moved aside as a preserved directory (listed, prunable), never removed.
 * `restart`: start the cluster again as it was.
 */
export async function rollbackRestoreSteps(ctx: Context, name: string, d: RestoreJournal, live: LiveCluster, running: boolean, restart: boolean, promoted = false): Promise<Step[]> {
  const moved = await ctx.fs.exists(d.preserved.path);
  const steps: Step[] = [];
  const aside: Preserved = { path: `${d.dataDir}.pre-rollback-${stamp(ctx.clock.now())}`, reason: 'rollback', createdAt: ctx.clock.now().toISOString() };
  if (running) steps.push(stopClusterStep(live, ctx.host.systemd));
  if (moved)
    steps.push({
      id: 'put-back-datadir',
      title: promoted
        ? `move the promoted restore in ${d.dataDir} aside to ${aside.path} (preserved) and move ${d.preserved.path} back`
        : `remove the unfinished restore in ${d.dataDir} and move ${d.preserved.path} back`,
      effect: promoted ? 'write' : 'destroy',
      run: async (c) => {
        if (promoted) {
          await c.fs.rename(d.dataDir, aside.path);
          await updateManaged(c.fs, c.paths.clustersDir, name, (r) => ({ ...r, preserved: [...r.preserved, aside] }));
        } else await c.fs.rm(d.dataDir, { recursive: true });
        await c.fs.rename(d.preserved.path, d.dataDir);
        await updateManaged(c.fs, c.paths.clustersDir, name, (r) => ({ ...r, preserved: r.preserved.filter((p) => p.path !== d.preserved.path) }));
      },
      show: [promoted ? `mv ${d.dataDir} ${aside.path}` : `rm -rf ${d.dataDir}`, `mv ${d.preserved.path} ${d.dataDir}`],
    });
  if (restart) steps.push({ ...startClusterStep(live, ctx.host.systemd, ctx.config['recovery-timeout']), title: `start ${pg.clusterLabel(live.id)} again on its own data directory` });
  return steps;
}
