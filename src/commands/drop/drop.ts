// `pgmam drop <app>` and `pgmam branch drop <branch>`: stop and remove managed clusters. Backups are
// kept unless --purge-backups; preserved data directories are always kept.
import { handedOver } from '../../steps/hand-over.js';
import { notManaged } from '../../guards/cluster.js';
import { finishHandOver, newClusterJournalSchema, rollbackNewClusterSteps, type NewClusterJournal } from '../../steps/new-cluster.js';
import { renderArgv } from '../../runner/types.js';
import { flag } from '../../plan/cli-spec.js';
import { z } from 'zod';
import { nameSchema, nameArg } from '../../names.js';
import type { Context } from '../../context.js';
import { clusterIsNotLocked } from '../../guards/cluster.js';
import { runsAsRoot } from '../../guards/host.js';
import * as pg from '../../pg/commands.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { deleteStanzaIfKept } from '../../steps/stanza.js';
import { unregisterEverywhereStep } from '../../steps/registration.js';
import { readRepos } from '../../state/repos.js';
import { clusterTlsDir } from '../../steps/tls.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, type Guard, type Step } from '../../plan/types.js';
import type { LockHolder } from '../../state/lock.js';
import { recordPath, type ManagedCluster, readRecord, writeManaged } from '../../state/store.js';
import { describeJournal, readJournal, type Journal } from '../../state/journal.js';
import { lockFacts, managedClusters, readClusters } from '../../host/facts.js';
import { stanzaScope } from '../../pgbackrest/commands.js';
import { SPOOL_PATH } from '../../pgbackrest/config.js';
import { linkOf, linkSchema, unlinkSteps } from '../../steps/replication.js';

export const dropOptionsSchema = runFlagsSchema.extend({
  name: nameSchema,
  purgeBackups: z.boolean(),
  /** pgmam drop: also drop the app's branches (and theirs), newest generation first. */
  withBranches: z.boolean(),
  /** pgmam branch drop: only branches may be dropped. */
  onlyBranches: z.boolean(),
  /** pgmam drop: also drop the replicas of the app (and of its branches dropped with it). */
  withReplicas: z.boolean().default(false),
  /** pgmam replica drop: only replicas may be dropped. */
  onlyReplicas: z.boolean().default(false),
});
export type DropOptions = z.infer<typeof dropOptionsSchema>;

/** The branches of `name`, and theirs, deepest first. */
export function descendants(records: ManagedCluster[], name: string): ManagedCluster[] {
  const children = records.filter((r) => r.role === 'branch' && r.parent === name);
  return children.flatMap((c) => [...descendants(records, c.name), c]);
}

/** What a drop records of each target, so a re-run can finish it when the cluster is already gone. */
const dropTargetSchema = z.object({
  name: z.string(), cluster: z.string(), version: z.string(), stanza: z.string(), stanzaFile: z.string(), repoPath: z.string(), dataDir: z.string().nullable(), hasPreserved: z.boolean(), repoHosts: z.array(z.number()).default([]),
  /** A replica, or an old primary a failover left: the stanza is its app's, which goes on; nothing of it is touched. */
  sharedStanza: z.boolean().default(false),
  /** A replica: its slot, role and rule on its primary, taken away when the primary runs (a fenced old primary is laid down anew by rebuild). */
  link: linkSchema.nullable().default(null),
  primaryRuns: z.boolean().default(false),
});
type DropTarget = z.infer<typeof dropTargetSchema>;
export const dropJournalSchema = z.object({ targets: z.array(dropTargetSchema), purge: z.boolean() });
export type DropJournal = z.infer<typeof dropJournalSchema>;

/**
 * The steps that drop one cluster, each one safe to run again (a re-run of an interrupted drop runs
 * them all): the cluster first, then — with --purge-backups — its stanza, so a failed drop never
 * leaves a running cluster archiving into a deleted stanza; the record last, kept (marked dropped)
 * while it lists preserved data directories.
 */
function dropSteps(t: DropTarget, purge: boolean, ctx: Pick<Context, 'paths' | 'config' | 'host'>): Step[] {
  const id = { version: t.version, name: t.name };
  const certDir = clusterTlsDir(ctx.config['tls-dir'], id);
  const scope = stanzaScope(t.stanza, ctx.paths.stanzaDir);
  const confDir = pg.confDirOf(id);
  const record = recordPath(ctx.paths.clustersDir, t.name);
  const keepsStanza = !purge && !t.sharedStanza;
  return [
    {
      id: 'drop-cluster',
      title: `drop cluster ${t.cluster} (stopping it), if the host still has it`,
      effect: 'destroy',
      run: async (c) => {
        if ((await readClusters(c.runner)).some((x) => x.name === t.name && x.version === t.version)) await c.runner.run(pg.dropCluster(id));
      },
      show: [`$ ${renderArgv(pg.dropCluster(id).argv)}`],
    },
    ...(t.sharedStanza
      ? []
      : [{ id: 'clear-archive-spool', title: `remove stanza ${t.stanza}'s archive-push status files from ${SPOOL_PATH}`, effect: 'destroy' as const, run: pgbr.clearSpool(t.stanza) }]),
    {
      id: 'remove-config',
      title: `remove ${confDir} and its certificate ${certDir}`,
      effect: 'destroy',
      // pg_dropcluster leaves the config directory when it holds our conf.d files.
      run: async (c) => {
        await c.fs.rm(confDir, { recursive: true });
        await c.fs.rm(certDir, { recursive: true });
      },
      show: [`rm -rf ${confDir} ${certDir}`],
    },
    ...(t.link ? unlinkSteps(t.link, t.primaryRuns, ctx.host.systemd) : []),
    // Before the stanza goes: its file still names the repository hosts.
    ...(t.repoHosts.length && !t.sharedStanza ? [unregisterEverywhereStep(t.stanza, t.repoHosts, scope)] : []),
    ...(purge && !t.sharedStanza
      ? [
          {
            id: 'delete-stanza',
            title: `delete stanza ${t.stanza} and its backups from ${t.repoPath}, if there`,
            effect: 'destroy' as const,
            run: (c: Context) => deleteStanzaIfKept(c, scope, t.name, t.repoPath),
            show: [`$ runuser -u postgres -- pgbackrest --stanza=${t.stanza} stop`, `$ runuser -u postgres -- pgbackrest --stanza=${t.stanza} stanza-delete --force`],
          },
          { id: 'remove-stanza-file', title: `remove ${t.stanzaFile}`, effect: 'destroy' as const, run: (c: Context) => c.fs.rm(t.stanzaFile), show: [`rm -f ${t.stanzaFile}`] },
        ]
      : []),
    {
      id: 'forget-cluster',
      // Kept, marked dropped, while it has something left to show: its kept stanza (not a replica's: that is its app's) or preserved directories.
      title: t.hasPreserved || keepsStanza ? `mark ${record} dropped (pgmam list --all shows its ${[keepsStanza ? 'kept backups' : '', t.hasPreserved ? 'preserved data directories' : ''].filter(Boolean).join(' and ')}; pgmam purge ${t.name} deletes them)` : `remove ${record}`,
      effect: 'write',
      run: async (c) => {
        const rec = await readRecord(c.fs, c.paths.clustersDir, t.name);
        if (!rec) return;
        if (rec.preserved.length || keepsStanza) await writeManaged(c.fs, c.paths.clustersDir, { ...rec, dropped: rec.dropped ?? { at: c.clock.now().toISOString(), dataDir: t.dataDir ?? '' } });
        else await c.fs.rm(record);
      },
    },
  ];
}

export interface DropFacts {
  uid: number;
  record: ManagedCluster | undefined;
  /** Its branches, and theirs, deepest first. */
  branches: ManagedCluster[];
  /** The replicas of the cluster and of its branches. */
  replicas: ManagedCluster[];
  /** Names of the clusters that run (a replica's primary among them). */
  running: string[];
  /** Each record's primary port (for a replica's link). */
  ports: Record<string, number>;
  /** What the plan drops: the branches (with --with-branches), then the cluster. */
  targets: ManagedCluster[];
  /** Each target's data directory as pg_lsclusters shows it (null: the host has no such cluster). */
  dataDirs: Record<string, string | null>;
  locks: Array<{ name: string; holder: LockHolder | undefined; alive: boolean }>;
  /** Targets (other than the one named) with an interrupted operation: settled by their own command first. */
  interrupted: Array<{ name: string; what: string }>;
  /** Names of the repositories on another host (kind tls): a dropped app is taken out of their backups. */
  repoHosts: string[];
  managed: ManagedCluster[];
  /** The name is a dropped app's (its record kept for its backups or preserved directories): purge is what deletes those. */
  dropped: boolean;
}

export async function gatherDrop(ctx: Context, o: DropOptions): Promise<DropFacts> {
  const [all, clusters] = await Promise.all([managedClusters(ctx), readClusters(ctx.runner)]);
  const managed = all.records;
  const record = managed.find((r) => r.name === o.name);
  const branches = record ? descendants(managed, record.name) : [];
  const family = [...(o.withBranches ? branches : []), ...(record ? [record] : [])];
  const replicas = managed.filter((r) => r.role === 'replica' && family.some((t) => t.name === r.parent && t.name !== r.name));
  const targets = [...(o.withReplicas ? replicas : []), ...family];
  const locks = await Promise.all(targets.map(async (t) => ({ name: t.name, ...(await lockFacts(ctx, t.name)) })));
  const dataDirs = Object.fromEntries(targets.map((t) => [t.name, clusters.find((c) => c.name === t.name && c.version === t.version)?.dataDir ?? null]));
  const journals = await Promise.all(targets.filter((t) => t.name !== o.name).map(async (t) => ({ name: t.name, j: await readJournal(ctx.fs, ctx.paths.stateDir, t.name) })));
  const interrupted = journals.flatMap(({ name, j }) => (j ? [{ name, what: describeJournal(j) }] : []));
  // Repositories on another host (kind tls): the app's registration there goes with it.
  const repoHosts = (await readRepos(ctx.fs, ctx.paths.stateDir)).repos.filter((r) => r.kind === 'tls').map((r) => r.name);
  const running = clusters.filter((c) => c.running).map((c) => c.name);
  const ports = Object.fromEntries(clusters.map((c) => [c.name, c.port]));
  return { uid: ctx.host.uid, record, branches, replicas, running, ports, targets, dataDirs, locks, interrupted, repoHosts, managed, dropped: !record && all.dropped.some((r) => r.name === o.name) };
}

export function dropGuards(f: DropFacts, o: DropOptions): Guard[] {
  const label = f.record?.cluster ?? o.name;
  return [
    runsAsRoot(f.uid),
    {
      id: o.onlyBranches ? 'target-is-a-branch' : 'cluster-is-managed',
      check: () =>
        !f.record
          ? notManaged(label, f.dropped)
          : o.onlyBranches && f.record.role !== 'branch'
            ? fail(`${label} is not a branch: branch drop removes only branches`, `pgmam drop ${o.name} removes an app`)
            : o.onlyReplicas && f.record.role !== 'replica'
              ? fail(`${label} is not a replica: replica drop removes only replicas`, `pgmam drop ${o.name} removes an app`)
              : !o.onlyReplicas && f.record.role === 'replica'
                ? fail(`${label} is a replica`, `pgmam replica drop ${o.name}`)
                : pass,
    },
    {
      id: 'cluster-has-no-replicas',
      check: () => (f.replicas.length && !o.withReplicas && !o.onlyReplicas ? fail(`${label} has replicas: ${f.replicas.map((r) => r.name).join(', ')}`, 'drop them first (pgmam replica drop), or pass --with-replicas') : pass),
    },
    {
      id: 'stanza-stays-with-its-app',
      check: () => (o.purgeBackups && f.record?.successor ? fail(`${label} is an old primary of app ${f.record.stanza}: its stanza belongs to ${f.record.successor} now`, `pgmam drop ${o.name} without --purge-backups`) : pass),
    },
    {
      id: 'cluster-has-no-branches',
      check: () =>
        f.branches.length && !o.withBranches
          ? fail(`${label} still has branches: ${f.branches.map((b) => b.name).join(', ')}`, o.onlyBranches ? `drop those branches first` : `drop them first, or pass --with-branches`)
          : pass,
    },
    ...f.locks.map((l) => clusterIsNotLocked(l.name, l.holder, l.alive)),
    {
      id: 'no-interrupted-operation',
      check: () => (f.interrupted.length ? fail(f.interrupted.map((i) => `${i.name}: ${i.what}`).join('; '), 'finish or undo that first (the command it names)') : pass),
    },
  ];
}

const dropTargets = (f: DropFacts): DropTarget[] =>
  f.targets.map((t) => {
    const primary = t.role === 'replica' ? f.managed.find((r) => r.name === t.parent) : undefined;
    const link = linkOf(t, primary, primary ? f.ports[primary.name] : undefined) ?? null;
    return {
      name: t.name, cluster: t.cluster, version: t.version, stanza: t.stanza, stanzaFile: t.stanzaFile, repoPath: t.repoPath, dataDir: f.dataDirs[t.name] ?? null, hasPreserved: t.preserved.length > 0,
      repoHosts: t.repos.filter((a) => !a.suspended && f.repoHosts.includes(a.name)).map((a) => a.index),
      sharedStanza: t.role === 'replica' || Boolean(t.successor),
      link,
      // A primary the same drop removes (listed after its replicas) still runs when the replica goes.
      primaryRuns: Boolean(primary && f.running.includes(primary.name) && !primary.fenced),
    };
  });

const rerunOf = (o: DropOptions) => renderArgv(['pgmam', ...(o.onlyBranches ? ['branch', 'drop'] : o.onlyReplicas ? ['replica', 'drop'] : ['drop']), o.name, ...(o.withBranches ? ['--with-branches'] : []), ...(o.withReplicas ? ['--with-replicas'] : []), ...(o.purgeBackups ? ['--purge-backups'] : []), '--yes']);

export function planDrop(f: DropFacts, o: DropOptions, env: PlanEnv): PlanBody {
  const kept = f.targets.flatMap((t) => t.preserved.map((p) => p.path));
  const targets = dropTargets(f);
  return {
    target: f.record?.cluster ?? o.name,
    steps: targets.flatMap((t) => dropSteps(t, o.purgeBackups, env)),
    journal: { rerun: rerunOf(o), data: { targets, purge: o.purgeBackups } satisfies DropJournal },
    notes: f.targets.every((t) => t.role === 'replica' || t.successor) ? [`the stanza ${f.targets[0]?.stanza ?? ''} is its app's: it and its backups are not touched`] : [
      ...(f.replicas.length && o.withReplicas ? [`the replicas ${f.replicas.map((r) => r.name).join(', ')} are dropped first, with their slots and roles on their primaries`] : []),
      o.purgeBackups
        ? `stanzas ${f.targets.map((t) => t.stanza).join(', ')} and their backups are deleted`
        : `stanzas ${f.targets.map((t) => t.stanza).join(', ')} and their backups are kept (pgmam list --all shows them); the names stay taken until pgmam purge <name> deletes them`,
      ...(kept.length ? [`preserved data directories are kept and listed until pgmam prune removes them: ${kept.join(', ')}`] : []),
    ],
  };
}

/**
 * An interrupted drop is finished: every step runs again (each is safe to), and the command ends.
 * A cluster whose creation was interrupted or failed is what dropping it asks for: before hand-over
 * the half-made cluster is removed (as its own re-run would first); after it, handed over, then dropped.
 */
export async function recoverDrop(ctx: Context, j: Journal, data: DropJournal | NewClusterJournal): Promise<Recovery> {
  if (j.command === 'initcluster' || j.command === 'branch create') {
    const d = newClusterJournalSchema.parse(data);
    if (handedOver(j)) return { ...(await finishHandOver(ctx, j, d)), finished: undefined };
    const exists = (await readClusters(ctx.runner)).some((c) => c.name === j.name && c.version === d.version);
    return { way: 'rolled-back', steps: rollbackNewClusterSteps(ctx, j, d, exists), finished: `${j.target}: the half-made cluster of the interrupted ${j.command} is removed\n` };
  }
  const d = dropJournalSchema.parse(data);
  return { way: 'finished', steps: d.targets.flatMap((t) => dropSteps(t, d.purge, ctx)), finished: `${d.targets.map((t) => t.cluster).join(', ')} dropped (the interrupted drop is finished)\n` };
}

const dropSpec = {
  options: dropOptionsSchema,
  // A fenced copy (another host took the app over) may be dropped here; the shared stanza is the other host's now.
  fencedMayRun: (o: DropOptions) => !o.purgeBackups,
  target: (o: DropOptions) => o.name,
  // The named cluster first: the journal is its, where a re-run of the same drop looks.
  locks: (o: DropOptions, f: DropFacts) => [o.name, ...f.targets.map((t) => t.name).filter((n) => n !== o.name)],
  destructive: true,
  // A typed name on a terminal, or --yes (GitHub CLI's rule for destructive commands).
  typeToConfirm: (o: DropOptions) => o.name,
  journal: z.union([dropJournalSchema, newClusterJournalSchema]),
  // A drop journals under the name given; `branch drop` and `drop` finish each other's runs, and
  // settle an interrupted or failed creation of the cluster they are asked to drop.
  settlesAlso: () => ['drop', 'branch drop', 'initcluster', 'branch create'],
};

const dropModule = {
  recover: recoverDrop,
  gather: gatherDrop,
  guards: dropGuards,
  plan: planDrop,
  report: async (ctx: Context, o: DropOptions, f: DropFacts) => ctx.io.out(`${f.targets.map((t) => t.cluster).join(', ')} dropped${o.onlyReplicas ? `; app ${f.record?.stanza ?? ''} and its backups untouched` : o.purgeBackups ? ' with their backups' : `; backups kept (pgmam purge ${o.name} deletes them and frees the name)`}\n`),
};

export const dropCommand: CommandModule<DropOptions, DropFacts, DropJournal | NewClusterJournal> = {
  spec: {
    ...dropSpec,
    name: 'drop',
    summary: 'stop and remove a managed cluster; backups kept unless --purge-backups',
    cli: {
      args: [{ syntax: '<app>', key: 'name' }],
      flags: [
        { flags: '--purge-backups', help: "also delete the cluster's stanza and backups" },
        { flags: '--with-branches', help: "also drop the app's branches (refused otherwise while it has any)" },
        { flags: '--with-replicas', help: "also drop the app's replicas (refused otherwise while it has any)" },
      ],
      input: z.object({ name: nameArg('cluster name'), purgeBackups: flag, withBranches: flag, withReplicas: flag }).transform((r) => ({ ...r, onlyBranches: false, onlyReplicas: false })),
    },
    examples: ['pgmam drop app1 --yes', 'pgmam drop app1 --with-branches --purge-backups --yes'],
  },
  ...dropModule,
};

export const branchDropCommand: CommandModule<DropOptions, DropFacts, DropJournal | NewClusterJournal> = {
  spec: {
    ...dropSpec,
    name: 'branch drop',
    summary: 'drop a branch (only branches); keeps its backups unless --purge-backups',
    cli: {
      args: [{ syntax: '<branch>', key: 'name' }],
      flags: [{ flags: '--purge-backups', help: "also delete the branch's stanza and backups" }],
      input: z.object({ name: nameArg('branch name'), purgeBackups: flag }).transform((r) => ({ ...r, withBranches: false, onlyBranches: true, withReplicas: false, onlyReplicas: false })),
    },
    examples: ['pgmam branch drop app1_dev --yes --purge-backups'],
  },
  ...dropModule,
};

export const replicaDropCommand: CommandModule<DropOptions, DropFacts, DropJournal | NewClusterJournal> = {
  spec: {
    ...dropSpec,
    name: 'replica drop',
    summary: 'drop a replica (only replicas), its slot and replication role on its primary; the app and its stanza are not touched',
    cli: {
      args: [{ syntax: '<replica>', key: 'name' }],
      flags: [],
      input: z.object({ name: nameArg('replica name') }).transform((r) => ({ ...r, purgeBackups: false, withBranches: false, onlyBranches: false, withReplicas: false, onlyReplicas: true })),
    },
    examples: ['pgmam replica drop app1_replica --yes'],
    // A replica of an old primary that a failover fenced may be dropped.
    fencedMayRun: () => true,
  },
  ...dropModule,
};
