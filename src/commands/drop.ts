// `pgmam drop <app>` and `pgmam branch drop <branch>`: stop and remove managed clusters. Backups are
// kept unless --purge-backups; preserved data directories are always kept.
import type { Context } from '../context.js';
import { clusterIsNotLocked } from '../guards/cluster.js';
import { runsAsRoot } from '../guards/host.js';
import * as pg from '../pg/commands.js';
import * as pgbr from '../pgbackrest/commands.js';
import { executePlan, type ExecuteFlags } from '../plan/executor.js';
import { fail, pass, type Guard, type Plan, type Step } from '../plan/types.js';
import { readLock } from '../state/lock.js';
import { recordPath, type ManagedCluster } from '../state/store.js';
import { ownerAlive, removeJournal } from '../state/journal.js';
import { managedClusters, stanzaScope } from '../host/facts.js';

export interface DropOptions extends ExecuteFlags {
  name: string;
  purgeBackups: boolean;
  /** pgmam drop: also drop the app's branches (and theirs), newest generation first. */
  withBranches: boolean;
  /** pgmam branch drop: only branches may be dropped. */
  onlyBranches: boolean;
}

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

export async function runDrop(ctx: Context, o: DropOptions): Promise<void> {
  const managed = (await managedClusters(ctx)).records;
  const rec = managed.find((r) => r.name === o.name);
  const label = rec?.cluster ?? `15/${o.name}`;
  const branches = rec ? descendants(managed, rec.name) : [];
  const targets = [...(o.withBranches ? branches : []), ...(rec ? [rec] : [])];
  const locks = await Promise.all(targets.map(async (t) => ({ t, holder: await readLock(ctx.fs, ctx.paths.locksDir, t.name) })));
  const guards: Guard[] = [
    runsAsRoot(ctx.host.uid),
    {
      id: o.onlyBranches ? 'target-is-a-branch' : 'cluster-is-managed',
      check: () =>
        !rec
          ? fail(`${label} is not managed by pgmam`, 'see pgmam list')
          : o.onlyBranches && rec.role !== 'branch'
            ? fail(`${label} is not a branch: branch drop removes only branches`, `pgmam drop ${o.name} removes an app`)
            : pass,
    },
    {
      id: 'cluster-has-no-branches',
      check: () =>
        branches.length && !o.withBranches
          ? fail(`${label} still has branches: ${branches.map((b) => b.name).join(', ')}`, o.onlyBranches ? `drop those branches first` : `drop them first, or pass --with-branches`)
          : pass,
    },
    ...locks.map(({ t, holder }) => clusterIsNotLocked(t.name, holder, holder ? ownerAlive(ctx.host, holder) : false)),
  ];
  const kept = targets.flatMap((t) => t.preserved.map((p) => p.path));
  const plan: Plan = {
    command: o.onlyBranches ? 'branch drop' : 'drop',
    target: label,
    // The dropped cluster's journal (if any) is removed by the plan itself.
    journal: false,
    locks: targets.map((t) => t.name),
    destructive: true,
    // A typed name on a terminal, or --yes (GitHub CLI's rule for destructive commands).
    typeToConfirm: o.name,
    guards,
    steps: targets.flatMap((t) => dropSteps(t, o.purgeBackups, ctx)),
    notes: [
      o.purgeBackups
        ? `stanzas ${targets.map((t) => t.stanza).join(', ')} and their backups are deleted`
        : `stanzas ${targets.map((t) => t.stanza).join(', ')} and their backups are kept (pgbackrest --stanza=<name> info); the names stay taken until purged`,
      ...(kept.length ? [`preserved data directories are kept: ${kept.join(', ')}`] : []),
    ],
  };
  if ((await executePlan(ctx, plan, o)) === 'dry-run') return;
  ctx.io.out(`${targets.map((t) => t.cluster).join(', ')} dropped${o.purgeBackups ? ' with their backups' : '; backups kept'}\n`);
}
