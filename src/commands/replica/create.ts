// `pgmam replica create <app> [--name LABEL] [--port N] [--source repo|primary]`: a streaming replica
// <app>_<label> on this host, laid down from the app's newest backup (default: no load on the primary)
// or by pg_basebackup from the primary over TLS, streaming through a slot of its own. It shares the
// app's stanza for the WAL its slot no longer holds and never archives while it is a standby.
import { z } from 'zod';
import type { Context } from '../../context.js';
import { runsAsRoot } from '../../guards/host.js';
import { findTools, installedPgVersions, managedClusters, postgresOwner, readClusters, readMainConfig } from '../../host/facts.js';
import { ARCHIVE_CONF_NAME, renderArchiveConf } from '../../pg/archive-conf.js';
import * as pg from '../../pg/commands.js';
import { baseBackupFromPrimary, primaryConninfo, slotName } from '../../pg/replication.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { stanzaScope } from '../../pgbackrest/commands.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { required, type Guard, type Step } from '../../plan/types.js';
import { selectSet } from '../../restore/source.js';
import { emptyDataDirStep, restoreStep, startClusterStep, type LiveCluster } from '../../restore/steps.js';
import { dirGrowth } from '../../steps/measures.js';
import { nameArg, nameSchema, NAME_PATTERN, parseName, portArg } from '../../names.js';
import { renderArgv } from '../../runner/types.js';
import type { Journal } from '../../state/journal.js';
import { autostartStep } from '../../steps/autostart.js';
import { handedOver } from '../../steps/hand-over.js';
import { gatherNewCluster, newClusterGuards, newClusterJournalSchema, newClusterSteps, rollbackNewClusterSteps, finishHandOver, type NewClusterFacts } from '../../steps/new-cluster.js';
import { configureStandbyStep, linkSchema, primarySideSteps, standbySignalStep, unlinkSteps, verifyStandbyStep, waitStreamingStep } from '../../steps/replication.js';
import { gatherParent, noParent, parentGuards, type ParentFacts } from '../../restore/parent.js';
import { gatherPrimary, primaryGuards, recordReplicaStep, replicaLink, slotIsFree, standbySpec, type PrimaryFacts } from './link.js';

export const replicaCreateOptionsSchema = runFlagsSchema
  .extend({
    app: nameSchema,
    label: nameSchema,
    port: z.number().int().min(1024).max(65535).optional(),
    source: z.enum(['repo', 'primary']),
  })
  .refine((o) => NAME_PATTERN.test(`${o.app}_${o.label}`), { message: 'the replica name <app>_<label> must match ^[a-z][a-z0-9_]{0,47}$' });
export type ReplicaCreateOptions = z.infer<typeof replicaCreateOptionsSchema>;

export interface ReplicaCreateFacts extends NewClusterFacts {
  uid: number;
  now: Date;
  name: string;
  primary: PrimaryFacts;
  /** The app's stanza as a restore source (--source repo). */
  source: ParentFacts;
  postgres: { uid: number; gid: number } | undefined;
  tools: Record<string, string | undefined>;
}

export const replicaJournalSchema = newClusterJournalSchema.extend({ link: linkSchema });
export type ReplicaJournal = z.infer<typeof replicaJournalSchema>;

const replicaName = (o: Pick<ReplicaCreateOptions, 'app' | 'label'>) => `${o.app}_${o.label}`;

async function gatherReplicaCreate(ctx: Context, o: ReplicaCreateOptions): Promise<ReplicaCreateFacts> {
  const runner = ctx.runner;
  const name = replicaName(o);
  const [tools, installedPg, main, managed, postgres, clusters] = await Promise.all([findTools(ctx), installedPgVersions(ctx.fs), readMainConfig(ctx.fs), managedClusters(ctx), postgresOwner(ctx.fs), readClusters(runner)]);
  const primary = await gatherPrimary(ctx, runner, o.app, managed.records, clusters);
  const source = primary.record && o.source === 'repo' ? await gatherParent(ctx, runner, primary.record.name, managed.records, clusters) : noParent();
  const fresh = await gatherNewCluster(ctx, runner, {
    name,
    version: primary.record?.version ?? installedPg[0] ?? '?',
    port: o.port,
    installedPg,
    clusters,
    managed: [...managed.records, ...managed.dropped],
    main,
    canProbeRepo: ctx.host.uid === 0 && Boolean(tools.pgbackrest),
    dataDir: primary.cluster?.dataDir ? primary.cluster.dataDir.replace(/[^/]+$/, name) : undefined,
  });
  // A replica has no stanza of its own: the repositories new apps are attached to are not its business.
  return { ...fresh, attach: [], unreadableRepos: [], uid: ctx.host.uid, now: ctx.clock.now(), name, primary, source, postgres, tools };
}

function replicaCreateGuards(f: ReplicaCreateFacts, o: ReplicaCreateOptions, env: Pick<PlanEnv, 'config'>): Guard[] {
  const guards = [runsAsRoot(f.uid), ...primaryGuards(f.primary, o.app)];
  if (!f.primary.record || !f.primary.cluster) return guards;
  const set = o.source === 'repo' ? selectSet(f.source, undefined).set : undefined;
  if (o.source === 'repo') guards.push(...parentGuards(f.source, f.primary.record.cluster, undefined, f.now));
  return [...guards, slotIsFree(f.primary, slotName(f.name)), ...newClusterGuards(f, f.name, o.port !== undefined, env.config, set?.info?.size ?? 0)];
}

function planReplicaCreate(f: ReplicaCreateFacts, o: ReplicaCreateOptions, env: PlanEnv): PlanBody {
  const primary = required(f.primary.record, 'the app primary');
  const primaryPort = required(f.primary.cluster?.port, "the primary's port");
  const id = { version: primary.version, name: f.name };
  const port = f.port ?? 0;
  const owner = f.postgres ?? { uid: 0, gid: 0 };
  const n = newClusterSteps({ id, port, dataDir: f.dataDir, repo: f.repo, owner, config: env.config, paths: env.paths, systemd: env.host.systemd, hostName: env.host.name, fqdn: f.fqdn, role: 'replica' });
  const live: LiveCluster = { id, port, dataDir: n.dataDir, logFile: `/var/log/postgresql/postgresql-${id.version}-${f.name}.log` };
  const link = replicaLink(primary, primaryPort, f.name, env.paths.stateDir);
  const spec = standbySpec(link, primary, n.dataDir, f.primary.copied, env.paths, env.config);
  const steps: Step[] = [
    ...primarySideSteps(link, { slotMaxWalMb: env.config['slot-max-wal-mb'], owner, systemd: env.host.systemd, createSlot: o.source === 'repo' }),
    n.createCluster,
    n.closeToUsers,
    archiveIntoAppStep(id, primary.stanza, env, owner),
    ...n.enableTls,
    configureStandbyStep(id, spec, owner),
    emptyDataDirStep(n.dataDir, owner),
    o.source === 'repo' ? restoreStandbyStep(f.source, primary, n.dataDir, env) : baseBackupStep(primary, link, spec, n.dataDir, selectSet(f.source, undefined).set?.info?.size),
    standbySignalStep(n.dataDir, owner),
    verifyStandbyStep(live, spec),
    startClusterStep(live, env.host.systemd, env.config['recovery-timeout']),
    waitStreamingStep(live, env.config['recovery-timeout']),
    recordReplicaStep(id, primary, link, f.now.toISOString(), env.paths.clustersDir),
    autostartStep(id, true, env.host.systemd),
    n.handOver,
  ];
  // The replica has no stanza file or stanza: the rollback's are named for it and never exist.
  // Once laid down, the replica's data directory carries its primary's system identifier.
  const journal = { ...n.journal, link, sourceSystemId: f.primary.systemId } satisfies ReplicaJournal;
  return {
    target: pg.clusterLabel(id),
    steps,
    journal: {
      rerun: renderArgv(['pgmam', 'replica', 'create', o.app, '--name', o.label, ...(o.port !== undefined ? ['--port', String(o.port)] : []), '--source', o.source, '--yes']),
      data: journal,
    },
    notes: [
      `${primary.cluster} keeps running; it gets the role ${link.role}, a rule for it in pg_hba.conf and the slot ${link.slot}`,
      `${pg.clusterLabel(id)} never archives while it is a standby; WAL its slot no longer holds comes from stanza ${primary.stanza}`,
    ],
  };
}

/** archive_mode = on into the app's stanza: a standby does not archive; once promoted (replica promote) it continues the app's archive. */
function archiveIntoAppStep(id: pg.ClusterId, stanza: string, env: PlanEnv, owner: { uid: number; gid: number }): Step {
  const file = `${pg.confDirOf(id)}/conf.d/${ARCHIVE_CONF_NAME}`;
  const text = renderArchiveConf({ stanza, archiveTimeout: env.config['archive-timeout'], configIncludePath: stanzaScope(stanza, env.paths.stanzaDir).configIncludePath });
  return {
    id: 'configure-archiving',
    title: `archive into the app's stanza ${stanza} once promoted (a standby does not archive) (${file})`,
    effect: 'write',
    run: async (ctx) => {
      await ctx.fs.mkdirp(`${pg.confDirOf(id)}/conf.d`, { mode: 0o755, owner });
      await ctx.fs.writeFileAtomic(file, text, { mode: 0o644, owner });
    },
    show: [`write ${file} (0644 postgres):`, ...text.trimEnd().split('\n').map((l) => `  | ${l}`)],
  };
}

function restoreStandbyStep(source: ParentFacts, primary: { stanza: string; cluster: string }, dataDir: string, env: PlanEnv): Step {
  const set = selectSet(source, undefined).set;
  const cmd = pgbr.restore(stanzaScope(primary.stanza, env.paths.stanzaDir), { set: set?.label ?? '?', type: 'standby', pg1Path: dataDir, repo: source.repo.index });
  return restoreStep(cmd, `restore ${primary.cluster}'s backup ${set?.label ?? '?'} into ${dataDir} as a standby, from ${source.repo.index === 1 ? 'the local repository' : `repository ${source.repo.name}`} (no load on the primary)`, dirGrowth(`restore into ${dataDir}`, dataDir, set?.info?.size));
}

/** `bytes`: the size of the app's newest backup, what the copy will come near. */
function baseBackupStep(primary: { version: string; cluster: string }, link: { slot: string }, spec: Parameters<typeof primaryConninfo>[0], dataDir: string, bytes: number | undefined): Step {
  const cmd = baseBackupFromPrimary(primary.version, primaryConninfo(spec), dataDir, link.slot);
  return {
    id: 'base-backup',
    title: `copy ${primary.cluster} into ${dataDir} with pg_basebackup over TLS, creating the slot ${link.slot}`,
    effect: 'write',
    run: cmd,
    progress: dirGrowth(`copy into ${dataDir}`, dataDir, bytes),
  };
}

/** Before hand-over: the half-made replica and its link on the primary are removed, and the command runs again. From hand-over on, it is finished. */
async function recoverReplicaCreate(ctx: Context, j: Journal, d: ReplicaJournal): Promise<Recovery> {
  if (handedOver(j)) return finishHandOver(ctx, j, d);
  const clusters = await readClusters(ctx.runner);
  const exists = clusters.some((c) => c.name === j.name && c.version === d.version);
  const primaryRuns = clusters.some((c) => c.name === d.link.primary.id.name && c.version === d.link.primary.id.version && c.running);
  // The cluster first: its walsender would keep the slot active.
  return { way: 'rolled-back', steps: [...rollbackNewClusterSteps(ctx, j, d, exists), ...unlinkSteps(d.link, primaryRuns, ctx.host.systemd)] };
}

async function reportReplicaCreate(ctx: Context, o: ReplicaCreateOptions, f: ReplicaCreateFacts, plan: { target: string }): Promise<void> {
  const result = { cluster: plan.target, name: f.name, primary: f.primary.record?.cluster ?? null, port: f.port, source: o.source, slot: slotName(f.name) };
  ctx.io.out(o.json ? `${JSON.stringify(result)}\n` : `replica ${plan.target} of ${result.primary} streams on port ${f.port} (slot ${result.slot}, from the ${o.source === 'repo' ? "app's newest backup" : 'primary'})\n`);
}

export const replicaCreateCommand: CommandModule<ReplicaCreateOptions, ReplicaCreateFacts, ReplicaJournal> = {
  spec: {
    name: 'replica create',
    summary: "a streaming replica <app>_<label> of the app's primary on this host",
    cli: {
      args: [{ syntax: '<app>', key: 'app', help: 'the app (its stanza name)' }],
      flags: [
        { flags: '--name <label>', help: 'label: the replica is <app>_<label>', default: 'replica' },
        { flags: '-p, --port <port>', help: 'port (default: the first free one in port-min..port-max)' },
        { flags: '--source <where>', help: "repo: the app's newest backup (no load on the primary); primary: pg_basebackup over TLS", default: 'repo' },
      ],
      input: z
        .object({ app: nameArg('app name'), name: nameArg('replica label'), port: portArg, source: z.enum(['repo', 'primary'], { message: '--source must be repo or primary' }) })
        .transform(({ name, ...r }) => {
          parseName(`${r.app}_${name}`, 'replica name');
          return { ...r, label: name };
        }),
      keepOnError: true,
    },
    options: replicaCreateOptionsSchema,
    examples: ['pgmam replica create app1                     # 15/app1_replica, from the newest backup', 'pgmam replica create app1 --name r2 --source primary'],
    target: replicaName,
    // The primary too: its roles, rules and slots change.
    locks: (o, f) => [replicaName(o), ...(f.primary.record ? [f.primary.record.name] : [])],
    destructive: false,
    journal: replicaJournalSchema,
  },
  gather: gatherReplicaCreate,
  guards: replicaCreateGuards,
  plan: planReplicaCreate,
  recover: recoverReplicaCreate,
  report: reportReplicaCreate,
};
