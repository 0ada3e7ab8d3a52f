// `pgmam prune <app> [--older-than 7d]`: remove preserved data directories (left by pitr, undo, sync,
// resetwal) older than the given age. pgmam never removes them on its own; this is the one way, guarded:
// typed name or --yes, --dry-run lists what would go, and nothing an interrupted operation still needs.
import { humanTime } from '../../plan/render.js';
import { notManaged } from '../../guards/cluster.js';
import { UsageError } from '../../errors.js';
import { DURATION_PATTERN, durationSeconds } from '../../config/schema.js';
import { z } from 'zod';
import { nameArg } from '../../names.js';
import { flag } from '../../plan/cli-spec.js';
import type { Context } from '../../context.js';
import { clusterIsNotLocked } from '../../guards/cluster.js';
import { runsAsRoot } from '../../guards/host.js';
import { lockFacts, managedClusters, readClusters } from '../../host/facts.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type Recovery } from '../../plan/command.js';
import { fail, pass, type Guard, type Step } from '../../plan/types.js';
import { describeJournal, readJournal, type Journal } from '../../state/journal.js';
import type { LockHolder } from '../../state/lock.js';
import { isPreservedName, updateManaged, type ManagedCluster, type Preserved, readRecord, recordPath, preservedSchema, undoSource } from '../../state/store.js';

export const pruneOptionsSchema = runFlagsSchema.extend({
  /** One app (managed, or dropped with preserved directories); with `orphans`, ORPHANS. */
  name: z.string(),
  /** Every dropped app's preserved directories. */
  orphans: z.boolean().default(false),
  olderThanSeconds: z.number().int().nonnegative(),
  /** --older-than as the user wrote it (7d), for the messages. */
  olderThanText: z.string().optional(),
});
export type PruneOptions = z.infer<typeof pruneOptionsSchema>;

/** The journal and lock name of `prune --orphans` (host-wide: `_` names are no cluster's). */
export const ORPHANS = '_orphans';

/** One app whose preserved directories prune looks at. */
export interface PruneApp {
  name: string;
  record: ManagedCluster | undefined;
  /** The cluster's data directory as pg_lsclusters reports it (a dropped app's: the one it had): preserved directories sit beside it. */
  dataDir: string | undefined;
  lock: { holder: LockHolder | undefined; alive: boolean };
  journal: Journal | undefined;
}

export interface PruneFacts {
  uid: number;
  now: Date;
  /** The app named, or with --orphans every dropped app that has preserved directories. */
  apps: PruneApp[];
}

export async function gatherPrune(ctx: Context, o: PruneOptions): Promise<PruneFacts> {
  const [managed, clusters] = await Promise.all([managedClusters(ctx), readClusters(ctx.runner)]);
  // A dropped app's record stays for its preserved directories: prune is one way they go.
  const records = o.orphans ? managed.dropped.filter((r) => r.preserved.length) : [[...managed.records, ...managed.dropped].find((r) => r.name === o.name)];
  const apps = await Promise.all(
    records.map(async (record): Promise<PruneApp> => {
      const name = record?.name ?? o.name;
      const [lock, journal] = await Promise.all([lockFacts(ctx, name), readJournal(ctx.fs, ctx.paths.stateDir, name)]);
      const dataDir = record && (clusters.find((c) => c.name === record.name && c.version === record.version)?.dataDir ?? (record.dropped?.dataDir || undefined));
      return { name, record, dataDir, lock, journal };
    }),
  );
  return { uid: ctx.host.uid, now: ctx.clock.now(), apps };
}

/** The preserved directories older than --older-than. */
const oldOnes = (f: PruneFacts, a: PruneApp, o: PruneOptions) => (a.record?.preserved ?? []).filter((p) => f.now.getTime() - Date.parse(p.createdAt) >= o.olderThanSeconds * 1000);

export function pruneGuards(f: PruneFacts, o: PruneOptions): Guard[] {
  return [
    runsAsRoot(f.uid),
    ...f.apps.flatMap((a): Guard[] => {
      const rec = a.record;
      const label = rec?.cluster ?? a.name;
      // Only pgmam's own naming, next to the data directory: an edited record cannot point prune elsewhere.
      const dataDir = a.dataDir;
      const strange = dataDir ? oldOnes(f, a, o).filter((p) => !isPreservedName(dataDir, p.path)) : [];
      return [
        { id: 'cluster-is-managed', check: () => (rec ? pass : notManaged(label)) },
        clusterIsNotLocked(a.name, a.lock.holder, a.lock.alive),
        // A rollback of an interrupted pitr or sync needs its preserved directory.
        { id: 'no-interrupted-operation', check: () => (a.journal ? fail(`${label}: ${describeJournal(a.journal)}`, 'finish or undo it first') : pass) },
        {
          id: 'data-directory-is-known',
          check: () => (!rec || dataDir ? pass : fail(`${label} is not on this host (pg_lsclusters): its preserved directories cannot be told from others`, 'see pgmam list')),
        },
        { id: 'preserved-paths-are-pgmams', check: () => (strange.length ? fail(`not a pgmam preserved directory of ${label}: ${strange.map((p) => p.path).join(', ')}`) : pass) },
      ];
    }),
  ];
}

/**
 * Remove one preserved directory and its line in the record; a dropped app's record goes with its last
 * one unless its stanza is kept (list --all shows it; purge deletes it). Safe to run again.
 */
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
      if (rec.dropped && !left.length && !(await c.fs.exists(rec.stanzaFile))) await c.fs.rm(recordPath(c.paths.clustersDir, name));
      else await updateManaged(c.fs, c.paths.clustersDir, name, (r) => ({ ...r, preserved: r.preserved.filter((x) => x.path !== p.path) }));
    },
    show: [`rm -rf ${p.path}`],
  };
}

/** `app`: whose directory it is (prune --orphans removes several apps'); absent: the journal's own. */
export const pruneJournalSchema = z.object({ preserved: z.array(preservedSchema.extend({ app: z.string().optional() })) });
export type PruneJournal = z.infer<typeof pruneJournalSchema>;

export function planPrune(f: PruneFacts, o: PruneOptions): PlanBody {
  const old = f.apps.flatMap((a) => oldOnes(f, a, o).map((p) => ({ ...p, app: a.name })));
  const one = f.apps.length === 1 && !o.orphans ? f.apps[0] : undefined;
  const age = o.olderThanText ?? `${o.olderThanSeconds}s`;
  return {
    target: o.orphans ? 'the preserved directories of dropped apps' : (one?.record?.cluster ?? o.name),
    steps: old.map((p) => removePreservedStep(p.app, p)),
    journal: { rerun: `pgmam prune ${o.orphans ? '--orphans' : o.name} --older-than ${age} --yes`, data: { preserved: old } satisfies PruneJournal },
    notes: [
      old.length ? `${old.length} preserved director${old.length === 1 ? 'y is' : 'ies are'} removed for good` : 'nothing to remove',
      // pitr --undo puts back the newest directory a pitr preserved: removing it takes the undo away.
      ...f.apps.flatMap((a) => oldOnes(f, a, o).filter((p) => !a.record?.dropped && p === undoSource(a.record?.preserved ?? [])).map((p) => `warning: ${p.path} is the one pgmam pitr ${a.name} --undo puts back: once removed, that pitr cannot be undone`)),
    ],
  };
}

/** An interrupted prune is finished: the directories it was removing are removed (again), and the command ends. */
export async function recoverPrune(_ctx: Context, j: Journal, d: PruneJournal): Promise<Recovery> {
  return { way: 'finished', steps: d.preserved.map((p) => removePreservedStep(p.app ?? j.name, p)), finished: `${j.target}: removed ${d.preserved.map((p) => p.path).join(', ')} (the interrupted prune is finished)\n` };
}

async function reportPrune(ctx: Context, o: PruneOptions, f: PruneFacts, plan: { target: string }): Promise<void> {
  const old = f.apps.flatMap((a) => oldOnes(f, a, o)).map((p) => p.path);
  if (!old.length) return ctx.io.out(o.json ? '[]\n' : `${plan.target}: no preserved directory is older than ${o.olderThanText ?? `${o.olderThanSeconds}s`}\n`);
  ctx.io.out(o.json ? `${JSON.stringify(old)}\n` : `${plan.target}: removed ${old.join(', ')}\n`);
}

export const pruneCommand: CommandModule<PruneOptions, PruneFacts, PruneJournal> = {
  spec: {
    name: 'prune',
    summary: 'remove preserved data directories older than --older-than (typed name or --yes; --dry-run lists them)',
    cli: {
      args: [{ syntax: '[app]', key: 'name', help: 'managed cluster, or a dropped app (pgmam list --all)' }],
      flags: [
        { flags: '--older-than <age>', help: 'age such as 7d, 12h, 30m', default: '7d' },
        { flags: '--orphans', help: "every dropped app's preserved data directories (instead of one app's)" },
      ],
      input: z.object({
        name: nameArg('cluster name').optional(),
        orphans: flag,
        olderThan: z.string().transform((v) => {
          if (!DURATION_PATTERN.test(v)) throw new UsageError(`--older-than must be an age such as 7d, 12h or 30m (got "${v}")`);
          return { seconds: durationSeconds(v), text: v.trim() };
        }),
      }).transform(({ name, orphans, olderThan }) => {
        if (orphans === (name !== undefined)) throw new UsageError(orphans ? 'prune --orphans takes no app name' : 'prune needs an app name, or --orphans');
        return { name: name ?? ORPHANS, orphans, olderThanSeconds: olderThan.seconds, olderThanText: olderThan.text };
      }),
    },
    options: pruneOptionsSchema,
    examples: ['pgmam prune app1 --dry-run', 'pgmam prune app1 --older-than 7d --yes', 'pgmam prune --orphans --older-than 0 --yes'],
    target: (o) => o.name,
    locks: (o, f) => [o.name, ...f.apps.map((a) => a.name).filter((n) => n !== o.name)],
    destructive: true,
    journal: pruneJournalSchema,
    typeToConfirm: (o) => (o.orphans ? 'orphans' : o.name),
    // An interrupted run is refused by the no-interrupted-operation guard: its preserved directory may be needed.
    settles: false,
  },
  gather: gatherPrune,
  guards: pruneGuards,
  plan: planPrune,
  recover: recoverPrune,
  report: reportPrune,
};
