// `pgmam branch sync <branch>`: one way, parent → branch. The branch's own data directory is preserved
// (never deleted), the parent's latest state restored in its place, and the branch's stanza reset.
import { relayReplicasSteps, replicaViews, stopReplicasSteps, type ReplicaView } from '../../steps/replication.js';
import { replicaIsRefused } from '../../guards/replica.js';
import { retentionOf, type Retention } from '../../config/schema.js';
import { handOverStep, handedOver } from '../../steps/hand-over.js';
import { z } from 'zod';
import { nameSchema, nameArg, optionalNameArg } from '../../names.js';
import type { Context } from '../../context.js';
import { clusterIsNotLocked } from '../../guards/cluster.js';
import { runsAsRoot } from '../../guards/host.js';
import { lockFacts, managedClusters, postgresOwner, readClusters } from '../../host/facts.js';
import { SPOOL_PATH } from '../../pgbackrest/config.js';
import { stanzaScope } from '../../pgbackrest/commands.js';
import { archiveCommandFor } from '../../pg/archive-conf.js';
import type { HostCluster } from '../../pg/clusters.js';
import * as pg from '../../pg/commands.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, required, type Guard, type Step } from '../../plan/types.js';
import { restoreJournalSchema, rollbackRestoreSteps, timelineOf, type RestoreJournal } from '../../restore/recovery.js';
import { restoreEnv, restoreSequence } from '../../restore/sequence.js';
import { enableArchivingStep, stamp, startClusterStep, type LiveCluster } from '../../restore/steps.js';
import type { Journal } from '../../state/journal.js';
import type { LockHolder } from '../../state/lock.js';
import { recordPath, updateManaged, type ManagedCluster, type Preserved } from '../../state/store.js';
import { backupAndMark, checkArchivingStep, deleteStanzaEverywhere } from '../../steps/stanza.js';
import { alignStanzaFileStep } from '../../steps/stanza-file.js';
import { confStep, extrasGuards, gatherExtras, postSqlStep, type BranchExtras } from '../../steps/extras.js';
import { downtimeLine, restoreDowntime, sessionsOf } from '../../steps/downtime.js';
import { selectSet } from '../../restore/source.js';
import { gatherParent, noParent, parentCowSource, parentGuards, parentSource, type ParentFacts } from '../../restore/parent.js';
import { chooseCopy, cowGuards, gatherReflink, type ReflinkFacts } from '../../restore/cow.js';

export const branchSyncOptionsSchema = runFlagsSchema.extend({
  name: nameSchema,
  postSql: z.string().optional(),
  conf: z.string().optional(),
  /** Restore from this repository of the parent ('local' or an attached one); default: the one that covers the end of its archive. */
  repo: z.string().optional(),
  /** As branch create's: true --cow, false --no-cow, default copy-on-write where it can be. */
  cow: z.boolean().optional(),
});
export type BranchSyncOptions = z.infer<typeof branchSyncOptionsSchema>;

export interface BranchSyncFacts {
  uid: number;
  now: Date;
  record: ManagedCluster | undefined;
  cluster: HostCluster | undefined;
  lock: { holder: LockHolder | undefined; alive: boolean };
  parent: ParentFacts;
  postgres: { uid: number; gid: number } | undefined;
  extras: BranchExtras;
  /** The branch's replicas: stopped first, laid down again from its new full backup. */
  replicas: ReplicaView[];
  /** Whether the parent's and the branch's directories share blocks; undefined where no copy-on-write copy is considered. */
  reflink: ReflinkFacts | undefined;
  /** Client sessions on the branch now: the sync cuts them (its plan and prompt say so). */
  sessions: number | undefined;
}

export async function gatherBranchSync(ctx: Context, o: BranchSyncOptions): Promise<BranchSyncFacts> {
  const runner = ctx.runner;
  const [managed, postgres, clusters, lock, extras] = await Promise.all([managedClusters(ctx), postgresOwner(ctx.fs), readClusters(runner), lockFacts(ctx, o.name), gatherExtras(ctx, o)]);
  const record = managed.records.find((r) => r.name === o.name);
  const cluster = record && clusters.find((c) => c.name === o.name && c.version === record.version);
  const parent = record?.role === 'branch' && record.parent ? await gatherParent(ctx, runner, record.parent, managed.records, clusters, { repo: o.repo }) : noParent();
  const replicas = record && cluster ? replicaViews(managed.records, clusters, record, cluster.port) : [];
  const parentDir = parent.cluster?.dataDir;
  const reflink = parentDir && cluster?.dataDir && ctx.host.uid === 0 && o.cow !== false && !o.repo ? await gatherReflink(ctx, runner, parentDir, cluster.dataDir) : undefined;
  return { uid: ctx.host.uid, now: ctx.clock.now(), record, cluster, lock, parent, postgres, extras, replicas, reflink, sessions: await sessionsOf(ctx, cluster) };
}

export function branchSyncGuards(f: BranchSyncFacts, o: BranchSyncOptions): Guard[] {
  const label = f.record?.cluster ?? o.name;
  const guards: Guard[] = [
    runsAsRoot(f.uid),
    replicaIsRefused(f.record, 'a branch to sync'),
    {
      id: 'target-is-a-branch',
      check: () =>
        !f.record
          ? fail(`${label} is not managed by pgmam`, 'only branches made by pgmam branch create can be synced')
          : f.record.role !== 'branch'
            ? fail(`${label} is not a branch (it is an ${f.record.role}): no bidirectional or reversed sync`, 'sync goes one way, parent → branch: pgmam branch sync <parent>_<label>')
            : !f.cluster
              ? fail(`${label} is managed by pgmam but the host has no such cluster`)
              : pass,
    },
    clusterIsNotLocked(o.name, f.lock.holder, f.lock.alive),
  ];
  if (f.record?.role === 'branch' && f.cluster) guards.push(...parentGuards(f.parent, `${f.record.version}/${f.record.parent}`, undefined, f.now));
  guards.push(...extrasGuards(f.extras));
  if (o.cow === true && f.parent.cluster) guards.push(...cowGuards(f.reflink, `${f.record?.version}/${f.record?.parent}`, f.parent.cluster.running));
  return guards;
}

export function planBranchSync(f: BranchSyncFacts, o: BranchSyncOptions, env: PlanEnv): PlanBody {
  const rec = f.record;
  const p = f.parent;
  const version = required(rec?.version, `the pgmam record of ${o.name}`);
  const id = { version, name: o.name };
  const dataDir = required(f.cluster?.dataDir, `the data directory of ${pg.clusterLabel(id)} (pg_lsclusters)`);
  const live: LiveCluster = { id, port: f.cluster?.port ?? 0, dataDir, logFile: f.cluster?.logFile };
  const owner = f.postgres ?? { uid: 0, gid: 0 };
  const scope = stanzaScope(o.name, env.paths.stanzaDir);
  const preserved: Preserved = { path: `${dataDir}.pre-sync-${stamp(f.now)}`, reason: 'sync', createdAt: f.now.toISOString() };
  const running = Boolean(f.cluster?.running);
  const copy = chooseCopy(o.cow, f.reflink, Boolean(p.cluster?.running), o.repo ? `--repo ${o.repo} names a repository to restore from` : undefined);
  const seq = restoreSequence({
    source: copy.cow
      ? parentCowSource(p, dataDir, { stanzaDir: env.paths.stanzaDir, owner, branch: o.name, archiveWaitTimeout: env.config['archive-wait-timeout'], now: f.now })
      : parentSource(p, dataDir, undefined, env.paths.stanzaDir),
    into: { kind: 'replace', name: o.name, running, preserved },
    live,
    target: { previousTimeline: p.currentTimeline ?? 0 },
    isolation: { archiveCommand: archiveCommandFor(o.name, scope.configIncludePath) },
    parentArchive: p.archiveDir ? { dir: p.archiveDir, before: p.archiveBefore } : undefined,
    beforeRestore: confStep(pg.confDirOf(id), f.extras, owner),
    ...restoreEnv(env, owner),
  });
  // Handed over after its post-sync scripts; its stanza is reset and backed up with users back.
  const relay = relayReplicasSteps(f.replicas, o.name, scope.configIncludePath, owner, env.host.systemd, env.config['recovery-timeout']);
  const steps: Step[] = [...stopReplicasSteps(f.replicas, env.host.systemd), ...seq.steps, ...postSqlStep(live, f.extras, env.host.systemd), seq.handOver, ...syncTail(o.name, live, owner, env.host.systemd, env.paths, retentionOf(env.config)), ...relay];
  const preserveAt = steps.findIndex((s) => s.id === 'preserve-datadir');
  // A copy-on-write copy lays nothing down: its recovery from the parent's archive is most of it.
  const estimate = copy.cow ? undefined : restoreDowntime(undefined, selectSet(p, undefined).set?.info?.size);
  return {
    target: pg.clusterLabel(id),
    steps,
    downtime: downtimeLine(pg.clusterLabel(id), estimate, f.sessions, 'is handed back (the copy of the parent recovered and started)'),
    journal: {
      rerun: `pgmam branch sync ${o.name}${o.repo ? ` --repo ${o.repo}` : ''}${o.cow === true ? ' --cow' : o.cow === false ? ' --no-cow' : ''} --yes`,
      // The parent's timeline: a restore on a higher one has promoted and may hold the branch users' writes.
      data: { version, dataDir, preserved, online: running, previousTimeline: p.currentTimeline ?? 0, target: null, systemId: p.control?.systemId, replicas: f.replicas } satisfies RestoreJournal,
    },
    notes: [
      ...(f.replicas.length ? [`its replicas ${f.replicas.map((r) => r.name).join(', ')} are stopped first and laid down again from its new full backup`] : []),
      `the branch's data directory will be preserved at ${preserved.path}; its stanza ${o.name} and its backups are reset`,
      `the parent ${rec?.parent ?? '?'} is not stopped or changed`,
      `the copy: ${copy.why}`,
    ],
    failureHint: (i) =>
      i < preserveAt
        ? ["the branch's data directory was not touched", ...(running && i > 0 ? [`start the branch again: pg_ctlcluster ${version} ${o.name} start`] : [])]
        : [`the branch's data directory of before the sync is preserved at ${preserved.path}`, `to go forward: fix the cause and run pgmam branch sync ${o.name} again`],
  };
}

/**
 * An interrupted sync. Before hand-over: the branch's own data directory goes back in place (a restore
 * that promoted is moved aside as preserved, not removed), open again, and the sync runs again. From
 * hand-over on, users may be writing: it is finished.
 */
export async function recoverBranchSync(ctx: Context, j: Journal, d: RestoreJournal): Promise<Recovery> {
  const cluster = (await readClusters(ctx.runner)).find((c) => c.name === j.name && c.version === d.version);
  const live: LiveCluster = { id: { version: d.version, name: j.name }, port: cluster?.port ?? 0, dataDir: d.dataDir, logFile: cluster?.logFile };
  const reopen = handOverStep(live.id, ctx.paths.stateDir, ctx.host.systemd);
  if (handedOver(j)) {
    const owner = (await postgresOwner(ctx.fs)) ?? { uid: 0, gid: 0 };
    const relay = relayReplicasSteps(d.replicas ?? [], j.name, stanzaScope(j.name, ctx.paths.stanzaDir).configIncludePath, owner, ctx.host.systemd, ctx.config['recovery-timeout']);
    const steps = [...(cluster?.running ? [] : [startClusterStep(live, ctx.host.systemd, ctx.config['recovery-timeout'])]), reopen, ...syncTail(j.name, live, owner, ctx.host.systemd, ctx.paths, retentionOf(ctx.config)), ...relay];
    return { way: 'finished', steps, finished: `${j.target}: the interrupted sync is finished (handed over, stanza reset, backed up)\n` };
  }
  // Journals written before the parent's timeline was recorded say 0: then any readable timeline counts as promoted.
  const promoted = (await timelineOf(ctx, d.version, d.dataDir)) > d.previousTimeline;
  return { way: 'rolled-back', steps: [...(await rollbackRestoreSteps(ctx, j.name, d, live, Boolean(cluster?.running), false, promoted)), reopen] };
}

async function reportBranchSync(ctx: Context, o: BranchSyncOptions, f: BranchSyncFacts, plan: { target: string }): Promise<void> {
  const preserved = (await managedClusters(ctx)).records.find((r) => r.name === o.name)?.preserved.at(-1)?.path ?? null;
  ctx.io.out(o.json ? `${JSON.stringify({ cluster: plan.target, parent: f.record?.parent, preserved })}\n` : `${plan.target} now holds ${f.record?.parent}'s latest state; its earlier data directory is preserved at ${preserved}\n`);
}

export const branchSyncCommand: CommandModule<BranchSyncOptions, BranchSyncFacts, RestoreJournal> = {
  spec: {
    name: 'branch sync',
    summary: "one-way, parent → branch: the branch gets the parent's latest state (its own data directory preserved, its stanza reset)",
    cli: {
      args: [{ syntax: '<branch>', key: 'name', help: 'a branch made by pgmam branch create' }],
      flags: [
        { flags: '--post-sql <dir>', help: 'run the *.sql files of DIR, in name order, before handing the branch over' },
        { flags: '--conf <file>', help: "settings for the branch's configuration" },
        { flags: '--repo <name>', help: "restore from this repository of the parent ('local' or an attached one; default: the local one when it covers the end of its archive, else one that does)" },
        { flags: '--cow', help: "copy the running parent's data directory by reflink (XFS with reflink=1 or btrfs), then recover it from the parent's archive; refused where it cannot be. Default: so wherever it can be" },
        { flags: '--no-cow', help: "restore from the parent's backups even where a copy-on-write copy could be made" },
      ],
      input: z
        .object({ name: nameArg('branch name'), postSql: z.string().optional(), conf: z.string().optional(), repo: optionalNameArg('repository name'), cow: z.boolean().optional() })
        .refine((o) => !(o.cow === true && o.repo), { message: '--cow copies the running parent: --repo chooses a repository to restore from (leave out one of them)' }),
    },
    options: branchSyncOptionsSchema,
    examples: ['pgmam branch sync app1_dev --yes', 'pgmam branch sync app1_dev --cow --yes', 'legacy: pgbranch -b app1_dev sync -y'],
    target: (o) => o.name,
    destructive: true,
    journal: restoreJournalSchema,
  },
  gather: gatherBranchSync,
  guards: branchSyncGuards,
  plan: planBranchSync,
  recover: recoverBranchSync,
  report: reportBranchSync,
};

/** What follows a sync's hand-over (and what finishing an interrupted one runs): a fresh stanza, archiving on, a full backup, the record. Each step can run again. */
function syncTail(name: string, live: LiveCluster, owner: { uid: number; gid: number }, systemd: boolean, paths: { stanzaDir: string; clustersDir: string }, retention: Retention): Step[] {
  const scope = stanzaScope(name, paths.stanzaDir);
  return [
    {
      // Its old history conflicts with the new timeline (pgBackRest #1908, error 45): start it afresh.
      id: 'reset-branch-stanza',
      title: `reset the branch's stanza ${name}: its earlier backups and WAL are deleted`,
      effect: 'destroy',
      run: async (ctx) => {
        await ctx.runner.run(pgbr.stop(scope));
        await deleteStanzaEverywhere(ctx, scope, name);
        // The new timeline repeats the last sync's (2, from the same segment numbers on): a status file
        // of that sync's async archive-push would answer "pushed" for a segment the new stanza never got.
        await ctx.runner.run(pgbr.clearSpool(name));
        await ctx.runner.run(pgbr.start(scope), { check: false }); // warns: stanza-delete removed the stop file
        await ctx.runner.run(pgbr.stanzaCreate(scope));
      },
      show: [...['stop', 'stanza-delete --force'].map((a) => `$ runuser -u postgres -- pgbackrest --stanza=${name} ${a}`), `$ runuser -u postgres -- rm -rf -- ${SPOOL_PATH}/archive/${name}`, ...['start', 'stanza-create'].map((a) => `$ runuser -u postgres -- pgbackrest --stanza=${name} ${a}`)],
    },
    enableArchivingStep(live, systemd, owner),
    checkArchivingStep(scope, name),
    alignStanzaFileStep(`${paths.stanzaDir}/${name}.conf`, name, retention),
    ...Object.values(backupAndMark(scope, name, 'a full backup', retention, { version: live.id.version, port: live.port })),
    {
      id: 'record-sync',
      title: `record the sync of ${pg.clusterLabel(live.id)}`,
      effect: 'write',
      run: (c) => updateManaged(c.fs, paths.clustersDir, name, (r) => ({ ...r, syncedAt: c.clock.now().toISOString() })),
      show: [`update ${recordPath(paths.clustersDir, name)}`],
    },
  ];
}
