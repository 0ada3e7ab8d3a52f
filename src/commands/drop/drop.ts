// `pgmam drop <app>` and `pgmam branch drop <branch>`: stop and remove managed clusters. Backups are
// kept unless --purge-backups; preserved data directories are always kept.
import { flag } from '../../plan/cli-spec.js';
import { z } from 'zod';
import { nameSchema, nameArg } from '../../names.js';
import type { Context } from '../../context.js';
import { clusterIsNotLocked } from '../../guards/cluster.js';
import { runsAsRoot } from '../../guards/host.js';
import * as pg from '../../pg/commands.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv } from '../../plan/command.js';
import { fail, pass, type Guard, type Step } from '../../plan/types.js';
import type { LockHolder } from '../../state/lock.js';
import { recordPath, type ManagedCluster } from '../../state/store.js';
import { removeJournal } from '../../state/journal.js';
import { lockFacts, managedClusters } from '../../host/facts.js';
import { stanzaScope } from '../../pgbackrest/commands.js';

export const dropOptionsSchema = runFlagsSchema.extend({
  name: nameSchema,
  purgeBackups: z.boolean(),
  /** pgmam drop: also drop the app's branches (and theirs), newest generation first. */
  withBranches: z.boolean(),
  /** pgmam branch drop: only branches may be dropped. */
  onlyBranches: z.boolean(),
});
export type DropOptions = z.infer<typeof dropOptionsSchema>;

/** The branches of `name`, and theirs, deepest first. */
export function descendants(records: ManagedCluster[], name: string): ManagedCluster[] {
  const children = records.filter((r) => r.role === 'branch' && r.parent === name);
  return children.flatMap((c) => [...descendants(records, c.name), c]);
}

function dropSteps(rec: ManagedCluster, purge: boolean, ctx: Pick<Context, 'paths'>): Step[] {
  const id = { version: rec.version, name: rec.name };
  const scope = stanzaScope(rec.stanza, ctx.paths.stanzaDir);
  const confDir = pg.confDirOf(id);
  return [
    ...(purge
      ? [
          {
            id: 'delete-stanza',
            title: `delete stanza ${rec.stanza} and its backups`,
            effect: 'destroy' as const,
            run: async (c: Context) => {
              await c.runner.run(pgbr.stop(scope));
              await c.runner.run(pgbr.stanzaDelete(scope, true));
            },
            show: [`$ runuser -u postgres -- pgbackrest --stanza=${rec.stanza} stop`, `$ runuser -u postgres -- pgbackrest --stanza=${rec.stanza} stanza-delete --force`],
          },
        ]
      : []),
    { id: 'drop-cluster', title: `drop cluster ${rec.cluster} (stopping it)`, effect: 'destroy', run: pg.dropCluster(id) },
    {
      id: 'remove-config',
      title: `remove ${confDir}${purge ? ` and ${rec.stanzaFile}` : ''}`,
      effect: 'destroy',
      run: async (c) => {
        // pg_dropcluster leaves the config directory when it holds our conf.d files.
        await c.fs.rm(confDir, { recursive: true });
        if (purge) await c.fs.rm(rec.stanzaFile);
      },
    },
    {
      id: 'forget-cluster',
      // An interrupted operation's journal goes with the cluster it was about.
      title: `remove ${recordPath(ctx.paths.clustersDir, rec.name)} and its journal, if any`,
      effect: 'destroy',
      run: async (c) => {
        await c.fs.rm(recordPath(ctx.paths.clustersDir, rec.name));
        await removeJournal(c.fs, c.paths.stateDir, rec.name);
      },
    },
  ];
}

export interface DropFacts {
  uid: number;
  record: ManagedCluster | undefined;
  /** Its branches, and theirs, deepest first. */
  branches: ManagedCluster[];
  /** What the plan drops: the branches (with --with-branches), then the cluster. */
  targets: ManagedCluster[];
  locks: Array<{ name: string; holder: LockHolder | undefined; alive: boolean }>;
}

export async function gatherDrop(ctx: Context, o: DropOptions): Promise<DropFacts> {
  const managed = (await managedClusters(ctx)).records;
  const record = managed.find((r) => r.name === o.name);
  const branches = record ? descendants(managed, record.name) : [];
  const targets = [...(o.withBranches ? branches : []), ...(record ? [record] : [])];
  const locks = await Promise.all(targets.map(async (t) => ({ name: t.name, ...(await lockFacts(ctx, t.name)) })));
  return { uid: ctx.host.uid, record, branches, targets, locks };
}

export function dropGuards(f: DropFacts, o: DropOptions): Guard[] {
  const label = f.record?.cluster ?? o.name;
  return [
    runsAsRoot(f.uid),
    {
      id: o.onlyBranches ? 'target-is-a-branch' : 'cluster-is-managed',
      check: () =>
        !f.record
          ? fail(`${label} is not managed by pgmam`, 'see pgmam list')
          : o.onlyBranches && f.record.role !== 'branch'
            ? fail(`${label} is not a branch: branch drop removes only branches`, `pgmam drop ${o.name} removes an app`)
            : pass,
    },
    {
      id: 'cluster-has-no-branches',
      check: () =>
        f.branches.length && !o.withBranches
          ? fail(`${label} still has branches: ${f.branches.map((b) => b.name).join(', ')}`, o.onlyBranches ? `drop those branches first` : `drop them first, or pass --with-branches`)
          : pass,
    },
    ...f.locks.map((l) => clusterIsNotLocked(l.name, l.holder, l.alive)),
  ];
}

export function planDrop(f: DropFacts, o: DropOptions, env: PlanEnv): PlanBody {
  const kept = f.targets.flatMap((t) => t.preserved.map((p) => p.path));
  return {
    target: f.record?.cluster ?? o.name,
    // The dropped cluster's journal (if any) is removed by the plan itself.
    journal: false,
    steps: f.targets.flatMap((t) => dropSteps(t, o.purgeBackups, env)),
    notes: [
      o.purgeBackups
        ? `stanzas ${f.targets.map((t) => t.stanza).join(', ')} and their backups are deleted`
        : `stanzas ${f.targets.map((t) => t.stanza).join(', ')} and their backups are kept (pgbackrest --stanza=<name> info); the names stay taken until purged`,
      ...(kept.length ? [`preserved data directories are kept: ${kept.join(', ')}`] : []),
    ],
  };
}

const dropSpec = {
  options: dropOptionsSchema,
  target: (o: DropOptions) => o.name,
  locks: (_o: DropOptions, f: DropFacts) => f.targets.map((t) => t.name),
  destructive: true,
  // A typed name on a terminal, or --yes (GitHub CLI's rule for destructive commands).
  typeToConfirm: (o: DropOptions) => o.name,
  // Dropping an interrupted cluster is one way to settle it: its journal goes with it.
  settles: false as const,
};

const dropModule = {
  gather: gatherDrop,
  guards: dropGuards,
  plan: planDrop,
  report: async (ctx: Context, o: DropOptions, f: DropFacts) => ctx.io.out(`${f.targets.map((t) => t.cluster).join(', ')} dropped${o.purgeBackups ? ' with their backups' : '; backups kept'}\n`),
};

export const dropCommand: CommandModule<DropOptions, DropFacts> = {
  spec: {
    ...dropSpec,
    name: 'drop',
    summary: 'stop and remove a managed cluster; backups kept unless --purge-backups',
    cli: {
      args: [{ syntax: '<app>', key: 'name' }],
      flags: [
        { flags: '--purge-backups', help: "also delete the cluster's stanza and backups" },
        { flags: '--with-branches', help: "also drop the app's branches (refused otherwise while it has any)" },
      ],
      input: z.object({ name: nameArg('cluster name'), purgeBackups: flag, withBranches: flag }).transform((r) => ({ ...r, onlyBranches: false })),
    },
    examples: ['pgmam drop app1 --yes', 'pgmam drop app1 --with-branches --purge-backups --yes'],
  },
  ...dropModule,
};

export const branchDropCommand: CommandModule<DropOptions, DropFacts> = {
  spec: {
    ...dropSpec,
    name: 'branch drop',
    summary: 'drop a branch (only branches); keeps its backups unless --purge-backups',
    cli: {
      args: [{ syntax: '<branch>', key: 'name' }],
      flags: [{ flags: '--purge-backups', help: "also delete the branch's stanza and backups" }],
      input: z.object({ name: nameArg('branch name'), purgeBackups: flag }).transform((r) => ({ ...r, withBranches: false, onlyBranches: true })),
    },
    examples: ['pgmam branch drop app1_dev --yes --purge-backups'],
  },
  ...dropModule,
};
