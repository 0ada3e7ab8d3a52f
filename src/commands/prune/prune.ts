// `pgmam prune <app> [--older-than 7d]`: remove preserved data directories (left by pitr, undo, sync,
// resetwal) older than the given age. pgmam never removes them on its own; this is the one way, guarded:
// typed name or --yes, --dry-run lists what would go, and nothing an interrupted operation still needs.
import { humanTime } from '../../plan/render.js';
import { UsageError } from '../../errors.js';
import { DURATION_PATTERN, durationSeconds } from '../../config/schema.js';
import { z } from 'zod';
import { nameSchema, nameArg } from '../../names.js';
import type { Context } from '../../context.js';
import { clusterIsNotLocked } from '../../guards/cluster.js';
import { runsAsRoot } from '../../guards/host.js';
import { lockFacts, managedClusters, readClusters } from '../../host/facts.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type Recovery } from '../../plan/command.js';
import { fail, pass, type Guard, type Step } from '../../plan/types.js';
import { describeJournal, readJournal, type Journal } from '../../state/journal.js';
import type { LockHolder } from '../../state/lock.js';
import { updateManaged, type ManagedCluster, type Preserved, readRecord, recordPath, preservedSchema, undoSource } from '../../state/store.js';

export const pruneOptionsSchema = runFlagsSchema.extend({ name: nameSchema, olderThanSeconds: z.number().int().nonnegative(), /** --older-than as the user wrote it (7d), for the messages. */ olderThanText: z.string().optional() });
export type PruneOptions = z.infer<typeof pruneOptionsSchema>;

export interface PruneFacts {
  uid: number;
  now: Date;
  record: ManagedCluster | undefined;
  /** The cluster's data directory as pg_lsclusters reports it: preserved directories sit beside it. */
  dataDir: string | undefined;
  lock: { holder: LockHolder | undefined; alive: boolean };
  journal: Journal | undefined;
}

export async function gatherPrune(ctx: Context, o: PruneOptions): Promise<PruneFacts> {
  const [managed, clusters, lock, journal] = await Promise.all([managedClusters(ctx), readClusters(ctx.runner), lockFacts(ctx, o.name), readJournal(ctx.fs, ctx.paths.stateDir, o.name)]);
  // A dropped app's record stays only for its preserved directories: prune is how they go.
  const record = [...managed.records, ...managed.dropped].find((r) => r.name === o.name);
  const dataDir = record && (clusters.find((c) => c.name === record.name && c.version === record.version)?.dataDir ?? record.dropped?.dataDir);
  return { uid: ctx.host.uid, now: ctx.clock.now(), record, dataDir, lock, journal };
}

/** The preserved directories older than --older-than. */
const oldOnes = (f: PruneFacts, o: PruneOptions) => (f.record?.preserved ?? []).filter((p) => f.now.getTime() - Date.parse(p.createdAt) >= o.olderThanSeconds * 1000);

/** `<data directory>.pre-<what>-<stamp>`, a sibling of the data directory: no '/' after the prefix, so no `/..` or deeper path. */
export const isPreservedName = (dataDir: string, path: string) => path.startsWith(`${dataDir}.pre-`) && /^[A-Za-z0-9._:-]+$/.test(path.slice(`${dataDir}.pre-`.length));

export function pruneGuards(f: PruneFacts, o: PruneOptions): Guard[] {
  const rec = f.record;
  const label = rec?.cluster ?? o.name;
  // Only pgmam's own naming, next to the data directory: an edited record cannot point prune elsewhere.
  const dataDir = f.dataDir;
  const strange = dataDir ? oldOnes(f, o).filter((p) => !isPreservedName(dataDir, p.path)) : [];
  return [
    runsAsRoot(f.uid),
    { id: 'cluster-is-managed', check: () => (rec ? pass : fail(`${label} is not managed by pgmam`, 'see pgmam list')) },
    clusterIsNotLocked(o.name, f.lock.holder, f.lock.alive),
    // A rollback of an interrupted pitr or sync needs its preserved directory.
    { id: 'no-interrupted-operation', check: () => (f.journal ? fail(`${label}: ${describeJournal(f.journal)}`, 'finish or undo it first') : pass) },
    {
      id: 'data-directory-is-known',
      check: () => (!rec || dataDir ? pass : fail(`${label} is not on this host (pg_lsclusters): its preserved directories cannot be told from others`, 'see pgmam list')),
    },
    { id: 'preserved-paths-are-pgmams', check: () => (strange.length ? fail(`not a pgmam preserved directory of ${label}: ${strange.map((p) => p.path).join(', ')}`) : pass) },
  ];
}

/** Remove one preserved directory and its line in the record; a dropped app's record goes with its last one. Safe to run again. */
function removePreservedStep(name: string, p: Preserved): Step {
  return {
    id: 'remove-preserved',
    title: `remove ${p.path} (${p.reason}, ${humanTime(p.createdAt)})`,
    effect: 'destroy',
    run: async (c: Context) => {
      await c.fs.rm(p.path, { recursive: true });
      const rec = await readRecord(c.fs, c.paths.clustersDir, name);
      if (!rec) return;
      const left = rec.preserved.filter((x) => x.path !== p.path);
      if (rec.dropped && !left.length) await c.fs.rm(recordPath(c.paths.clustersDir, name));
      else await updateManaged(c.fs, c.paths.clustersDir, name, (r) => ({ ...r, preserved: r.preserved.filter((x) => x.path !== p.path) }));
    },
    show: [`rm -rf ${p.path}`],
  };
}

export const pruneJournalSchema = z.object({ preserved: z.array(preservedSchema) });
export type PruneJournal = z.infer<typeof pruneJournalSchema>;

export function planPrune(f: PruneFacts, o: PruneOptions): PlanBody {
  const old = oldOnes(f, o);
  return {
    target: f.record?.cluster ?? o.name,
    steps: old.map((p) => removePreservedStep(o.name, p)),
    journal: { rerun: `pgmam prune ${o.name} --older-than ${o.olderThanText ?? `${o.olderThanSeconds}s`} --yes`, data: { preserved: old } satisfies PruneJournal },
    notes: [
      old.length ? `${old.length} preserved director${old.length === 1 ? 'y is' : 'ies are'} removed for good` : 'nothing to remove',
      // pitr --undo puts back the newest directory a pitr preserved: removing it takes the undo away.
      ...old.filter((p) => p === undoSource(f.record?.preserved ?? [])).map((p) => `warning: ${p.path} is the one pgmam pitr ${o.name} --undo puts back: once removed, that pitr cannot be undone`),
    ],
  };
}

/** An interrupted prune is finished: the directories it was removing are removed (again), and the command ends. */
export async function recoverPrune(_ctx: Context, j: Journal, d: PruneJournal): Promise<Recovery> {
  return { way: 'finished', steps: d.preserved.map((p) => removePreservedStep(j.name, p)), finished: `${j.target}: removed ${d.preserved.map((p) => p.path).join(', ')} (the interrupted prune is finished)\n` };
}

async function reportPrune(ctx: Context, o: PruneOptions, f: PruneFacts, plan: { target: string }): Promise<void> {
  const old = oldOnes(f, o).map((p) => p.path);
  if (!old.length) return ctx.io.out(o.json ? '[]\n' : `${plan.target}: no preserved directory is older than ${o.olderThanText ?? `${o.olderThanSeconds}s`}\n`);
  ctx.io.out(o.json ? `${JSON.stringify(old)}\n` : `${plan.target}: removed ${old.join(', ')}\n`);
}

export const pruneCommand: CommandModule<PruneOptions, PruneFacts, PruneJournal> = {
  spec: {
    name: 'prune',
    summary: 'remove preserved data directories older than --older-than (typed name or --yes; --dry-run lists them)',
    cli: {
      args: [{ syntax: '<app>', key: 'name', help: 'managed cluster' }],
      flags: [{ flags: '--older-than <age>', help: 'age such as 7d, 12h, 30m', default: '7d' }],
      input: z.object({
        name: nameArg('cluster name'),
        olderThan: z.string().transform((v) => {
          if (!DURATION_PATTERN.test(v)) throw new UsageError(`--older-than must be an age such as 7d, 12h or 30m (got "${v}")`);
          return { seconds: durationSeconds(v), text: v.trim() };
        }),
      }).transform(({ name, olderThan }) => ({ name, olderThanSeconds: olderThan.seconds, olderThanText: olderThan.text })),
    },
    options: pruneOptionsSchema,
    examples: ['pgmam prune app1 --dry-run', 'pgmam prune app1 --older-than 7d --yes'],
    target: (o) => o.name,
    destructive: true,
    journal: pruneJournalSchema,
    typeToConfirm: (o) => o.name,
    // An interrupted run is refused by the no-interrupted-operation guard: its preserved directory may be needed.
    settles: false,
  },
  gather: gatherPrune,
  guards: pruneGuards,
  plan: planPrune,
  recover: recoverPrune,
  report: reportPrune,
};
