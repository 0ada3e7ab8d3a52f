// `pgmam branch create <parent> [--name LABEL] [--at T] [--cow|--no-cow] [--only-db DB]`: a new cluster
// <parent>_<label> restored from the parent's backups, or copied by reflink while the parent runs
// (restore/cow.ts), with its own port, stanza and first full backup. The parent is not touched.
import { replicaIsRefused } from '../../guards/replica.js';
import { handedOver } from '../../steps/hand-over.js';
import { z } from 'zod';
import { nameSchema, NAME_PATTERN, nameArg, optionalNameArg, parseName, portArg } from '../../names.js';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { runsAsRoot } from '../../guards/host.js';
import { findTools, installedPgVersions, managedClusters, postgresOwner, readClusters, readMainConfig } from '../../host/facts.js';
import { archiveCommandFor } from '../../pg/archive-conf.js';
import * as pg from '../../pg/commands.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { required, type Guard, type Step } from '../../plan/types.js';
import { restoreEnv, restoreSequence } from '../../restore/sequence.js';
import { selectSet } from '../../restore/source.js';
import { enableArchivingStep, type LiveCluster } from '../../restore/steps.js';
import { targetTimeSchema, parseTarget } from '../../restore/target.js';
import { renderArgv } from '../../runner/types.js';
import type { Journal } from '../../state/journal.js';
import { autostartStep } from '../../steps/autostart.js';
import { gatherNewCluster, newClusterGuards, newClusterJournalSchema, newClusterSteps, rollbackNewClusterSteps, type NewClusterFacts, type NewClusterJournal, finishHandOver } from '../../steps/new-cluster.js';
import { confStep, extrasGuards, gatherExtras, postSqlStep, type BranchExtras } from '../../steps/extras.js';
import { gatherParent, parentCowSource, parentGuards, parentSource, type ParentFacts } from '../../restore/parent.js';
import { chooseCopy, cowGuards, gatherReflink, type ReflinkFacts } from '../../restore/cow.js';
import { databasesOfSet, DB_NAME, dropOtherDatabasesStep, onlyDbExists } from '../../restore/only-db.js';
import { stanzaScope } from '../../pgbackrest/commands.js';

export const branchCreateOptionsSchema = runFlagsSchema
  .extend({
    parent: nameSchema,
    label: nameSchema,
    at: targetTimeSchema.optional(),
    port: z.number().int().min(1024).max(65535).optional(),
    /** false: the branch does not start at boot (--no-autostart). */
    autostart: z.boolean().optional(),
    postSql: z.string().optional(),
    conf: z.string().optional(),
    /** Restore from this repository of the parent ('local' or an attached one); default: the one that covers the target. */
    repo: z.string().optional(),
    /** true: a copy-on-write copy of the running parent (--cow); false: restored from its backups (--no-cow); default: copy-on-write where it can be. */
    cow: z.boolean().optional(),
    /** Only this database of the parent (and the system ones); the others are dropped after promotion. */
    onlyDb: z.string().optional(),
  })
  .refine((o) => NAME_PATTERN.test(`${o.parent}_${o.label}`), { message: 'the branch name <parent>_<label> must match ^[a-z][a-z0-9_]{0,47}$' });
export type BranchCreateOptions = z.infer<typeof branchCreateOptionsSchema>;

export interface BranchCreateFacts extends NewClusterFacts {
  uid: number;
  now: Date;
  name: string;
  parent: ParentFacts;
  tools: Record<string, string | undefined>;
  postgres: { uid: number; gid: number } | undefined;
  extras: BranchExtras;
  /** Whether the parent's and the branch's directories share blocks; undefined where no copy-on-write copy is considered. */
  reflink: ReflinkFacts | undefined;
  /** --only-db: the user databases of the backup set the restore lays down. */
  setDatabases: { label: string; databases: string[] | undefined } | undefined;
}

const branchName = (o: Pick<BranchCreateOptions, 'parent' | 'label'>) => `${o.parent}_${o.label}`;

export async function gatherBranchCreate(ctx: Context, o: BranchCreateOptions): Promise<BranchCreateFacts> {
  const runner = ctx.runner;
  const name = branchName(o);
  const [tools, installedPg, main, managed, postgres, clusters, extras] = await Promise.all([
    findTools(ctx),
    installedPgVersions(ctx.fs),
    readMainConfig(ctx.fs),
    managedClusters(ctx),
    postgresOwner(ctx.fs),
    readClusters(runner),
    gatherExtras(ctx, o),
  ]);
  const parent = await gatherParent(ctx, runner, o.parent, managed.records, clusters, { target: o.at, repo: o.repo });
  const fresh = await gatherNewCluster(ctx, runner, {
    name,
    version: parent.record?.version ?? installedPg[0] ?? '?',
    port: o.port,
    installedPg,
    clusters,
    managed: [...managed.records, ...managed.dropped],
    main,
    canProbeRepo: ctx.host.uid === 0 && Boolean(tools.pgbackrest),
    // Beside the parent's, wherever that is: a branch lives on the parent's filesystem.
    dataDir: parent.cluster?.dataDir ? parent.cluster.dataDir.replace(/[^/]+$/, name) : undefined,
  });
  const parentDir = parent.cluster?.dataDir;
  const reflink = parentDir && ctx.host.uid === 0 && o.cow !== false && !restoreOnly(o) ? await gatherReflink(ctx, runner, parentDir, fresh.dataDir) : undefined;
  const set = o.onlyDb && parent.record && ctx.host.uid === 0 ? selectSet(parent, o.at).set : undefined;
  const setDatabases = set && parent.record ? { label: set.label, databases: await databasesOfSet(runner, stanzaScope(parent.record.stanza, ctx.paths.stanzaDir), set.label, parent.repo.index) } : undefined;
  return { ...fresh, uid: ctx.host.uid, now: ctx.clock.now(), name, parent, tools, postgres, extras, reflink, setDatabases };
}

export function branchCreateGuards(f: BranchCreateFacts, o: BranchCreateOptions, env: Pick<PlanEnv, 'config'>): Guard[] {
  const parentLabel = f.parent.record?.cluster ?? o.parent;
  const set = selectSet(f.parent, o.at).set;
  return [
    runsAsRoot(f.uid),
    replicaIsRefused(f.parent.record, 'a parent: branch its app'),
    ...parentGuards(f.parent, parentLabel, o.at, f.now),
    ...newClusterGuards(f, f.name, o.port !== undefined, env.config, set?.info?.size ?? 0),
    ...extrasGuards(f.extras),
    ...(o.cow === true && f.parent.cluster ? cowGuards(f.reflink, parentLabel, f.parent.cluster.running) : []),
    ...(o.onlyDb ? [onlyDbExists(o.onlyDb, f.setDatabases, parentLabel)] : []),
  ];
}

/** What only a restore from the backups can do: a time target, one database, a chosen repository. */
const restoreOnly = (o: Pick<BranchCreateOptions, 'at' | 'onlyDb' | 'repo'>) => (o.at ? '--at takes a past state' : o.onlyDb ? '--only-db restores one database' : o.repo ? `--repo ${o.repo} names a repository to restore from` : undefined);

/** The copy's way: by reflink of the running parent, or restored from its backups. */
export const branchCopy = (f: BranchCreateFacts, o: BranchCreateOptions) => chooseCopy(o.cow, f.reflink, Boolean(f.parent.cluster?.running), restoreOnly(o));

export function planBranchCreate(f: BranchCreateFacts, o: BranchCreateOptions, env: PlanEnv): PlanBody {
  const p = f.parent;
  const version = required(p.record?.version, `the pgmam record of ${o.parent}`);
  const id = { version, name: f.name };
  const port = f.port ?? 0;
  const owner = f.postgres ?? { uid: 0, gid: 0 };
  const n = newClusterSteps({ id, port, dataDir: f.dataDir, repo: f.repo, attach: f.attach, owner, config: env.config, paths: env.paths, systemd: env.host.systemd, hostName: env.host.name, fqdn: f.fqdn, role: 'branch' });
  const live: LiveCluster = { id, port, dataDir: n.dataDir, logFile: `/var/log/postgresql/postgresql-${version}-${f.name}.log` };
  const copy = branchCopy(f, o);
  const seq = restoreSequence({
    source: copy.cow
      ? parentCowSource(p, n.dataDir, { stanzaDir: env.paths.stanzaDir, owner, branch: f.name, archiveWaitTimeout: env.config['archive-wait-timeout'], now: f.now })
      : parentSource(p, n.dataDir, o.at, env.paths.stanzaDir, o.onlyDb),
    into: { kind: 'new', make: [...n.createRepo, n.createCluster, n.closeToUsers, n.configureArchiving, ...n.enableTls, ...confStep(n.confDir, f.extras, owner), n.writeStanzaFile] },
    live,
    target: { previousTimeline: p.currentTimeline ?? 0, targetUs: o.at?.epochUs, targetText: o.at?.text },
    isolation: { archiveCommand: archiveCommandFor(f.name, n.scope.configIncludePath) },
    parentArchive: p.archiveDir ? { dir: p.archiveDir, before: p.archiveBefore } : undefined,
    ...restoreEnv(env, owner),
  });
  const first = n.backupAndMark('the first full backup');
  const steps: Step[] = [
    ...seq.steps,
    ...(o.onlyDb ? [dropOtherDatabasesStep(live, o.onlyDb)] : []),
    n.recordManaged({ role: 'branch', parent: o.parent, createdAt: f.now.toISOString() }),
    ...postSqlStep(live, f.extras, env.host.systemd),
    n.createStanza,
    enableArchivingStep(live, env.host.systemd, owner),
    n.checkArchiving,
    first.backup,
    ...n.backupsIntoAttached('the first full backup'),
    first.mark,
    autostartStep(id, o.autostart !== false, env.host.systemd),
    n.handOver,
  ];
  return {
    target: pg.clusterLabel(id),
    steps,
    journal: {
      rerun: renderArgv(['pgmam', 'branch', 'create', o.parent, '--name', o.label, ...(o.port !== undefined ? ['--port', String(o.port)] : []), ...(o.at ? ['--at', o.at.text] : []), ...(o.autostart === false ? ['--no-autostart'] : []), ...(o.repo ? ['--repo', o.repo] : []), ...(o.cow === true ? ['--cow'] : o.cow === false ? ['--no-cow'] : []), ...(o.onlyDb ? ['--only-db', o.onlyDb] : []), '--yes']),
      data: { ...n.journal, sourceSystemId: p.control?.systemId },
    },
    notes: [
      `the parent ${o.parent} is not stopped or changed; the branch gets its own stanza ${f.name}`,
      `the copy: ${copy.why}`,
      ...(o.onlyDb ? [`only the database ${o.onlyDb} is restored: every other user database of the parent is dropped from the branch after promotion (pgBackRest lays them down as zeroed files, unusable)`] : []),
    ],
  };
}

/** Before hand-over, an interrupted branch create made only a branch no user could reach: it is removed, then created again. From hand-over on, it is finished. */
export async function recoverBranchCreate(ctx: Context, j: Journal, d: NewClusterJournal): Promise<Recovery> {
  if (handedOver(j)) return finishHandOver(ctx, j, d);
  const exists = (await readClusters(ctx.runner)).some((c) => c.name === j.name && c.version === d.version);
  return { way: 'rolled-back', steps: rollbackNewClusterSteps(ctx, j, d, exists) };
}

async function reportBranchCreate(ctx: Context, o: BranchCreateOptions, f: BranchCreateFacts, plan: { target: string }): Promise<void> {
  const result = { cluster: plan.target, name: f.name, parent: o.parent, port: f.port, stanza: f.name, at: o.at?.text ?? null };
  ctx.io.out(o.json ? `${JSON.stringify(result)}\n` : `branch ${plan.target} of ${o.parent} is ready on port ${f.port}${o.at ? ` (parent's state at ${o.at.text})` : ''}, with its own stanza ${f.name} and a full backup\n`);
}

export const branchCreateCommand: CommandModule<BranchCreateOptions, BranchCreateFacts, NewClusterJournal> = {
  spec: {
    name: 'branch create',
    summary: "create <parent>_<label> from the parent's backups (now, or its state at --at)",
    cli: {
      args: [{ syntax: '[parent]', key: 'parent', help: 'managed cluster to branch (asked on a terminal when left out)' }],
      flags: [
        { flags: '--name <label>', help: 'label: the branch is <parent>_<label>', default: 'dev' },
        { flags: '--at <timestamp>', help: "the parent's state at this time (with UTC offset)" },
        { flags: '-p, --port <port>', help: 'port (default: the first free one in port-min..port-max)' },
        { flags: '--post-sql <dir>', help: 'run the *.sql files of DIR, in name order, before handing the branch over' },
        { flags: '--conf <file>', help: "settings for the branch's configuration (not port, archive_*, data_directory, restore_command)" },
        { flags: '--no-autostart', help: 'do not start the branch at boot (start.conf manual)' },
        { flags: '--repo <name>', help: "restore from this repository of the parent ('local' or an attached one; default: the local one when it covers the target, else one that does)" },
        { flags: '--cow', help: "copy the running parent's data directory by reflink (blocks shared; XFS with reflink=1 or btrfs), then recover it from the parent's archive; refused where it cannot be. Default: so wherever it can be" },
        { flags: '--no-cow', help: "restore from the parent's backups even where a copy-on-write copy could be made" },
        { flags: '--only-db <db>', help: 'only this database of the parent (and the system ones): the others are dropped after promotion' },
      ],
      input: z
        .object({
          parent: optionalNameArg('parent name'),
          name: nameArg('branch label'),
          at: z.string().optional().transform((v) => (v === undefined ? undefined : parseTarget(v))),
          port: portArg,
          postSql: z.string().optional(),
          conf: z.string().optional(),
          autostart: z.boolean().default(true),
          repo: optionalNameArg('repository name'),
          cow: z.boolean().optional(),
          onlyDb: z.string().regex(DB_NAME, 'database name: letters, digits, _ and $ (at most 63), starting with a letter or _').optional(),
        })
        .transform(({ name, ...r }) => {
          // A copy taken now cannot be of an earlier state, nor leave databases out, nor come from a repository.
          if (r.cow === true && r.at) throw new UsageError('--cow copies the running parent now: it cannot recover to an earlier --at (leave out --cow to restore from the backups)');
          if (r.cow === true && r.onlyDb) throw new UsageError('--cow copies the whole data directory: --only-db needs a restore from the backups (leave out --cow)');
          if (r.cow === true && r.repo) throw new UsageError('--cow copies the running parent: --repo chooses a repository to restore from (leave out one of them)');
          if (r.parent !== undefined) parseName(`${r.parent}_${name}`, 'branch name'); // the whole name must fit the pattern too
          return { ...r, label: name };
        }),
      keepOnError: true,
      // Without a parent: pick one on a terminal (a usage error without one).
      prepare: async (ctx, i) => {
        const input = i as { parent?: string; label: string };
        if (input.parent !== undefined) return input;
        const asked = await askParent(ctx);
        parseName(`${asked.parent}_${parseName(asked.label, 'branch label')}`, 'branch name');
        return { ...input, ...asked };
      },
    },
    options: branchCreateOptionsSchema,
    examples: ['pgmam branch create app1 --name dev', 'pgmam branch create app1 --name big --cow', 'pgmam branch create app1 --name orders --only-db shop --at "2026-01-19 10:40:00+00"', 'pgmam branch create app1 --name before_migration --at "2026-01-19 10:40:00+00"', 'legacy: pgbranch -c -a app1 -n dev   (pgbranch -c alone asks on a terminal)'],
    target: branchName,
    destructive: false,
    journal: newClusterJournalSchema,
  },
  gather: gatherBranchCreate,
  guards: branchCreateGuards,
  plan: planBranchCreate,
  recover: recoverBranchCreate,
  report: reportBranchCreate,
};

/** Without a parent on a terminal: pick one of the managed clusters and a label; without a terminal: a usage error. */
export async function askParent(ctx: Context): Promise<{ parent: string; label: string; port?: number }> {
  if (!ctx.io.interactive) throw new UsageError('branch create needs a parent (pgmam branch create <parent>, or pgbranch -c -a <parent> -n <label>) when there is no terminal');
  const names = (await managedClusters(ctx)).records.map((r) => r.name).sort();
  if (!names.length) throw new UsageError('no cluster is managed by pgmam yet: create one with pgmam initcluster');
  const parent = await ctx.prompter.choose('Branch which cluster?', names);
  // A label that cannot make a branch name is asked again, on the spot; so is a port out of range.
  const label = await ctx.prompter.ask('Label of the branch (the branch is <parent>_<label>):', 'dev', (v) =>
    NAME_PATTERN.test(v) && NAME_PATTERN.test(`${parent}_${v}`) ? true : `${parent}_${v} is not a branch name: lowercase letters, digits and _, starting with a letter, at most 48 characters in all`,
  );
  const port = await ctx.prompter.ask('Port (empty: the first free one in port-min..port-max):', '', (v) => (v === '' || (/^\d+$/.test(v) && Number(v) >= 1024 && Number(v) <= 65535) ? true : 'a port between 1024 and 65535, or empty'));
  return { parent, label, ...(port ? { port: Number(port) } : {}) };
}
