// `pgmam purge <name>`: delete what a dropped app left — its kept stanza and backups (in every
// repository its stanza file names), its stanza file, archive spool, preserved data directories and
// pgmam's record — and so free the name. Typed name or --yes; only a name pgmam dropped (list --all).
import { z } from 'zod';
import type { Context } from '../../context.js';
import { clusterIsNotLocked } from '../../guards/cluster.js';
import { runsAsRoot } from '../../guards/host.js';
import { lockFacts, managedClusters, readClusters } from '../../host/facts.js';
import { readLeftovers, type Leftover } from '../../host/leftovers.js';
import { nameArg, nameSchema } from '../../names.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type Recovery } from '../../plan/command.js';
import { humanTime } from '../../plan/render.js';
import { fail, pass, type Guard, type Step } from '../../plan/types.js';
import { deleteStanzaIfKept } from '../../steps/stanza.js';
import { describeJournal, readJournal, type Journal } from '../../state/journal.js';
import type { LockHolder } from '../../state/lock.js';
import { isPreservedName, preservedSchema, recordPath } from '../../state/store.js';

export const purgeOptionsSchema = runFlagsSchema.extend({ name: nameSchema });
export type PurgeOptions = z.infer<typeof purgeOptionsSchema>;

export interface PurgeFacts {
  uid: number;
  leftover: Leftover | undefined;
  /** An app pgmam manages under that name (or whose stanza it is): not purge's to delete. */
  live: string | undefined;
  /** A cluster of that name on the host that pgmam does not manage. */
  hostCluster: string | undefined;
  lock: { holder: LockHolder | undefined; alive: boolean };
  journal: Journal | undefined;
}

export async function gatherPurge(ctx: Context, o: PurgeOptions): Promise<PurgeFacts> {
  const [managed, clusters, lock, journal] = await Promise.all([managedClusters(ctx), readClusters(ctx.runner), lockFacts(ctx, o.name), readJournal(ctx.fs, ctx.paths.stateDir, o.name)]);
  const leftover = (await readLeftovers(ctx, managed, clusters)).find((l) => l.name === o.name);
  const live = managed.records.find((r) => r.name === o.name || r.stanza === (leftover?.stanza ?? o.name))?.cluster;
  const host = clusters.find((c) => c.name === o.name);
  return { uid: ctx.host.uid, leftover, live, hostCluster: host ? `${host.version}/${host.name}` : undefined, lock, journal: journal?.command === 'purge' ? undefined : journal };
}

export function purgeGuards(f: PurgeFacts, o: PurgeOptions): Guard[] {
  const l = f.leftover;
  const strange = l ? l.preserved.filter((p) => !l.dataDir || !isPreservedName(l.dataDir, p.path)) : [];
  return [
    runsAsRoot(f.uid),
    {
      id: 'name-is-a-dropped-app',
      check: () =>
        f.live
          ? fail(`${o.name} belongs to ${f.live}, which pgmam manages: purge deletes only what a dropped app left`, `pgmam drop ${o.name} --purge-backups removes an app with its backups`)
          : f.hostCluster
            ? fail(`${f.hostCluster} is a cluster on this host: purge deletes only what a dropped app left`, 'see pgmam list')
            : !l
              ? fail(`no dropped app ${o.name} left anything`, 'see pgmam list --all')
              : pass,
    },
    clusterIsNotLocked(o.name, f.lock.holder, f.lock.alive),
    { id: 'no-interrupted-operation', check: () => (f.journal ? fail(`${o.name}: ${describeJournal(f.journal)}`, 'finish or undo it first') : pass) },
    { id: 'preserved-paths-are-pgmams', check: () => (strange.length ? fail(`not a pgmam preserved directory of ${o.name}: ${strange.map((p) => p.path).join(', ')}`) : pass) },
  ];
}

export const purgeJournalSchema = z.object({
  stanza: z.string(),
  stanzaFile: z.string(),
  repoPath: z.string().nullable(),
  dataDir: z.string().nullable(),
  preserved: z.array(preservedSchema),
});
export type PurgeJournal = z.infer<typeof purgeJournalSchema>;

/** Each step is safe to run again: a re-run of an interrupted purge runs them all. */
function purgeSteps(name: string, d: PurgeJournal, ctx: Pick<Context, 'paths'>): Step[] {
  const scope = pgbr.stanzaScope(d.stanza, ctx.paths.stanzaDir);
  const record = recordPath(ctx.paths.clustersDir, name);
  return [
    {
      id: 'delete-stanza',
      title: `delete stanza ${d.stanza} and its backups from every repository its stanza file names, if there`,
      effect: 'destroy',
      run: async (c: Context) => {
        if (!d.repoPath) return;
        // Without its stanza file only the local repository can be reached, by its path.
        const bare = !(await c.fs.exists(d.stanzaFile));
        await deleteStanzaIfKept(c, bare ? { ...pgbr.repoScope(d.repoPath, c.paths.stanzaDir), stanza: d.stanza } : scope, name, d.repoPath, bare);
      },
      show: [`$ runuser -u postgres -- pgbackrest --stanza=${d.stanza} stop`, `$ runuser -u postgres -- pgbackrest --stanza=${d.stanza} stanza-delete --force   (each repository)`],
    },
    { id: 'clear-archive-spool', title: `remove stanza ${d.stanza}'s archive-push status files`, effect: 'destroy', run: pgbr.clearSpool(d.stanza) },
    { id: 'remove-stanza-file', title: `remove ${d.stanzaFile}`, effect: 'destroy', run: (c: Context) => c.fs.rm(d.stanzaFile), show: [`rm -f ${d.stanzaFile}`] },
    ...d.preserved.map(
      (p): Step => ({ id: 'remove-preserved', title: `remove ${p.path} (${p.reason}, ${humanTime(p.createdAt)})`, effect: 'destroy', run: (c: Context) => c.fs.rm(p.path, { recursive: true }), show: [`rm -rf ${p.path}`] }),
    ),
    { id: 'forget-app', title: `remove ${record}`, effect: 'write', run: (c: Context) => c.fs.rm(record), show: [`rm -f ${record}`] },
  ];
}

const journalOf = (l: Leftover): PurgeJournal => ({ stanza: l.stanza, stanzaFile: l.stanzaFile, repoPath: l.repoPath ?? null, dataDir: l.dataDir ?? null, preserved: l.preserved });

export function planPurge(f: PurgeFacts, o: PurgeOptions, env: Pick<Context, 'paths'>): PlanBody {
  const l = f.leftover!;
  const d = journalOf(l);
  return {
    target: `${l.version}/${o.name}`,
    steps: purgeSteps(o.name, d, env),
    journal: { rerun: `pgmam purge ${o.name} --yes`, data: d },
    notes: [
      `stanza ${l.stanza} and every backup in it are deleted for good${l.preserved.length ? `, and ${l.preserved.length} preserved data director${l.preserved.length === 1 ? 'y' : 'ies'}` : ''}; the name ${o.name} is free afterwards`,
    ],
  };
}

/** An interrupted purge is finished: every step again (each is safe to). */
export async function recoverPurge(ctx: Context, j: Journal, d: PurgeJournal): Promise<Recovery> {
  return { way: 'finished', steps: purgeSteps(j.name, d, ctx), finished: `${j.target}: purged (the interrupted purge is finished)\n` };
}

export const purgeCommand: CommandModule<PurgeOptions, PurgeFacts, PurgeJournal> = {
  spec: {
    name: 'purge',
    summary: "delete what a dropped app left (its kept stanza and backups, preserved data directories) and free its name; typed name or --yes",
    cli: {
      args: [{ syntax: '<name>', key: 'name', help: 'a dropped app (pgmam list --all)' }],
      flags: [],
      input: z.object({ name: nameArg('app name') }),
    },
    options: purgeOptionsSchema,
    examples: ['pgmam list --all', 'pgmam purge app1 --dry-run', 'pgmam purge app1 --yes'],
    target: (o) => o.name,
    destructive: true,
    typeToConfirm: (o) => o.name,
    journal: purgeJournalSchema,
  },
  gather: gatherPurge,
  guards: purgeGuards,
  plan: planPurge,
  recover: recoverPurge,
  report: async (ctx, o, f) => ctx.io.out(o.json ? `${JSON.stringify({ purged: o.name, stanza: f.leftover?.stanza ?? o.name, preserved: f.leftover?.preserved.map((p) => p.path) ?? [] })}\n` : `${o.name}: purged (stanza ${f.leftover?.stanza ?? o.name} and its backups deleted${f.leftover?.preserved.length ? `, ${f.leftover.preserved.length} preserved directories removed` : ''}); the name is free\n`),
};
