// `pgmam replica rebuild <cluster>`: after a failover, the fenced old primary (or a replica still tied
// to it) becomes a streaming replica of the app's current primary. Its data directory is laid down anew
// from the app's newest backup (taken by replica promote on the new timeline). An old primary's own
// data directory is moved aside as preserved, never overwritten: it may hold commits the new primary
// never received. A replica's only ever held its primary's data and is replaced.
import { z } from 'zod';
import { notManaged } from '../../guards/cluster.js';
import type { Context } from '../../context.js';
import { clusterIsNotLocked } from '../../guards/cluster.js';
import { runsAsRoot } from '../../guards/host.js';
import { lockFacts, managedClusters, postgresOwner, readClusters } from '../../host/facts.js';
import type { HostCluster } from '../../pg/clusters.js';
import * as pg from '../../pg/commands.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { stanzaScope } from '../../pgbackrest/commands.js';
import { nameArg, nameSchema } from '../../names.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, required, type Guard, type Step } from '../../plan/types.js';
import { selectSet } from '../../restore/source.js';
import { createDataDirStep, preserveDataDirStep, restoreStep, stamp, startClusterStep, stopClusterStep, type LiveCluster } from '../../restore/steps.js';
import { dirGrowth } from '../../steps/measures.js';
import { renderArgv } from '../../runner/types.js';
import type { Journal } from '../../state/journal.js';
import type { LockHolder } from '../../state/lock.js';
import { currentPrimary, preservedSchema, updateManaged, type ManagedCluster, type Preserved } from '../../state/store.js';
import { autostartStep, setStartAtBoot } from '../../steps/autostart.js';
import { closeToUsersStep, handedOver, handOverStep } from '../../steps/hand-over.js';
import { configureStandbyStep, linkSchema, replaceStandbyDataStep, primarySideSteps, standbySignalStep, unlinkSteps, verifyStandbyStep, waitStreamingStep } from '../../steps/replication.js';
import { gatherParent, noParent, parentGuards, type ParentFacts } from '../../restore/parent.js';
import { gatherPrimary, noPrimary, primaryGuards, replicaLink, slotIsFree, standbySpec, type PrimaryFacts } from './link.js';
import { REPLICA_CONF_NAME, slotName } from '../../pg/replication.js';

export const replicaRebuildOptionsSchema = runFlagsSchema.extend({ name: nameSchema });
export type ReplicaRebuildOptions = z.infer<typeof replicaRebuildOptionsSchema>;

export interface ReplicaRebuildFacts {
  uid: number;
  now: Date;
  record: ManagedCluster | undefined;
  cluster: HostCluster | undefined;
  /** The app's primary now. */
  primary: PrimaryFacts;
  source: ParentFacts;
  postgres: { uid: number; gid: number } | undefined;
  locks: Array<{ name: string; holder: LockHolder | undefined; alive: boolean }>;
}

export const rebuildJournalSchema = z.object({
  version: z.string(),
  port: z.number(),
  dataDir: z.string(),
  /** Where the old data directory went (preserved), or null when it was a replica's (removed). */
  preserved: preservedSchema.nullable(),
  link: linkSchema,
});
export type RebuildJournal = z.infer<typeof rebuildJournalSchema>;

/** The cluster whose replica it becomes: an old primary's successor, or a replica's primary's. */
const followsOf = (rec: ManagedCluster) => (rec.role === 'replica' ? (rec.parent ?? rec.name) : rec.name);

async function gatherRebuild(ctx: Context, o: ReplicaRebuildOptions): Promise<ReplicaRebuildFacts> {
  const [managed, clusters, postgres] = await Promise.all([managedClusters(ctx).then((m) => m.records), readClusters(ctx.runner), postgresOwner(ctx.fs)]);
  const record = managed.find((r) => r.name === o.name);
  const cluster = record && clusters.find((c) => c.name === record.name && c.version === record.version);
  const now = currentPrimary(managed, record ? followsOf(record) : o.name);
  const primary = now && now.name !== o.name ? await gatherPrimary(ctx, ctx.runner, now.name, managed, clusters) : noPrimary();
  const source = primary.record ? await gatherParent(ctx, ctx.runner, primary.record.name, managed, clusters) : noParent();
  const locks = await Promise.all([o.name, ...(primary.record ? [primary.record.name] : [])].map(async (n) => ({ name: n, ...(await lockFacts(ctx, n)) })));
  return { uid: ctx.host.uid, now: ctx.clock.now(), record, cluster, primary, source, postgres, locks };
}

function rebuildGuards(f: ReplicaRebuildFacts, o: ReplicaRebuildOptions): Guard[] {
  const label = f.record?.cluster ?? o.name;
  const guards: Guard[] = [
    runsAsRoot(f.uid),
    {
      id: 'cluster-follows-another-primary',
      check: () =>
        !f.record
          ? notManaged(o.name)
          : !f.cluster
            ? fail(`${label} is managed by pgmam but the host has no such cluster`)
            : f.record.role !== 'replica' && !f.record.successor
              ? fail(`${label} is no old primary of a failover and no replica: rebuild lays down only those`, 'pgmam replica create <app> makes a new replica')
              : !f.primary.record
                ? fail(`${label}'s app ${f.record.stanza} has no other primary to follow`)
                : pass,
    },
  ];
  if (!f.record || !f.cluster || !f.primary.record) return guards;
  return [...guards, ...primaryGuards(f.primary, f.primary.record.name), ...parentGuards(f.source, f.primary.record.cluster, undefined, f.now), slotIsFree(f.primary, slotName(o.name)), ...f.locks.map((l) => clusterIsNotLocked(l.name, l.holder, l.alive))];
}

function planRebuild(f: ReplicaRebuildFacts, o: ReplicaRebuildOptions, env: PlanEnv): PlanBody {
  const rec = required(f.record, 'the cluster');
  const c = required(f.cluster, 'its cluster');
  const primary = required(f.primary.record, 'the primary');
  const id = { version: rec.version, name: rec.name };
  const dataDir = required(c.dataDir, 'its data directory');
  const owner = f.postgres ?? { uid: 0, gid: 0 };
  const live: LiveCluster = { id, port: c.port, dataDir, logFile: c.logFile };
  const link = replicaLink(primary, required(f.primary.cluster?.port, "the primary's port"), rec.name, env.paths.stateDir);
  const spec = standbySpec(link, primary, dataDir, f.primary.copied, env.paths, env.config);
  const oldPrimary = rec.role !== 'replica';
  const preserved: Preserved | null = oldPrimary ? { path: `${dataDir}.pre-rebuild-${stamp(f.now)}`, reason: 'failover', createdAt: f.now.toISOString() } : null;
  const set = selectSet(f.source, undefined).set;
  const restore = pgbr.restore(stanzaScope(primary.stanza, env.paths.stanzaDir), { set: set?.label ?? '?', type: 'standby', pg1Path: dataDir, repo: f.source.repo.index });
  const steps: Step[] = [
    ...primarySideSteps(link, { slotMaxWalMb: env.config['slot-max-wal-mb'], owner, systemd: env.host.systemd, createSlot: true }),
    ...(c.running ? [stopClusterStep(live, env.host.systemd)] : []),
    { ...closeToUsersStep(id, env.paths.stateDir, env.host.systemd), undo: { title: `open ${rec.cluster}'s pg_hba.conf again`, run: handOverStep(id, env.paths.stateDir, env.host.systemd).run } },
    preserved
      ? { ...preserveDataDirStep(rec.name, dataDir, preserved, env.paths.clustersDir), undo: { title: `remove the unfinished standby in ${dataDir} and move ${preserved.path} back`, run: (ctx) => putBack(ctx, rec.name, dataDir, preserved) } }
      : replaceStandbyDataStep(id, dataDir, owner),
    ...(preserved ? [createDataDirStep(dataDir, owner)] : []),
    { ...configureStandbyStep(id, spec, owner), undo: { title: 'take the standby settings out again', run: (ctx) => ctx.fs.writeFileAtomic(`${pg.confDirOf(id)}/conf.d/${REPLICA_CONF_NAME}`, '# Written by pgmam: no standby settings (replica rebuild was undone).\n', { mode: 0o644, owner }) } },
    restoreStep(restore, `restore ${primary.cluster}'s backup ${set?.label ?? '?'} into ${dataDir} as a standby`, dirGrowth(`restore into ${dataDir}`, dataDir, set?.info?.size)),
    standbySignalStep(dataDir, owner),
    verifyStandbyStep(live, spec),
    // start.conf `disabled` (the fence) refuses even pg_ctlcluster start.
    { ...autostartStep(id, true, env.host.systemd), undo: oldPrimary ? { title: `disable ${rec.cluster}'s start again (the fence)`, run: (ctx) => setStartAtBoot(ctx, id, 'disabled', env.host.systemd, false) } : undefined },
    startClusterStep(live, env.host.systemd, env.config['recovery-timeout']),
    waitStreamingStep(live, env.config['recovery-timeout']),
    {
      id: 'record-replica',
      title: `record ${rec.cluster} as a replica of ${primary.cluster}`,
      effect: 'write',
      run: (ctx) =>
        updateManaged(ctx.fs, ctx.paths.clustersDir, rec.name, (r) => ({
          ...r,
          role: 'replica',
          parent: primary.name,
          replication: { slot: link.slot, role: link.role, passFile: link.passFile },
          fenced: null,
          // An old primary keeps its successor: the app's name still resolves to the primary.
          successor: r.successor,
          backupMark: null,
          repoMarks: {},
          repos: [],
        })),
    },
    handOverStep(id, env.paths.stateDir, env.host.systemd),
  ];
  return {
    target: rec.cluster,
    steps,
    journal: { rerun: renderArgv(['pgmam', 'replica', 'rebuild', o.name, '--yes']), data: { version: rec.version, port: c.port, dataDir, preserved, link } satisfies RebuildJournal },
    notes: [
      preserved ? `its data directory is kept as ${preserved.path} (preserved: it may hold commits ${primary.cluster} never received; listed, pgmam prune removes it)` : `its data directory is replaced: a standby's holds nothing of its own (one promoted by hand since is preserved instead)`,
      `${primary.cluster} keeps running; it gets the role ${link.role}, a rule for it and the slot ${link.slot}`,
    ],
  };
}

/**
 * Before hand-over: the half-laid data directory goes and the old one comes back (it was stopped and
 * fenced, and is again), the link on the primary is taken away, and the command runs again. From hand-over on, finished.
 */
async function recoverRebuild(ctx: Context, j: Journal, d: RebuildJournal): Promise<Recovery> {
  const id = { version: d.version, name: j.name };
  if (handedOver(j)) return { way: 'finished', steps: [handOverStep(id, ctx.paths.stateDir, ctx.host.systemd)], finished: `${j.target} was handed over; replica rebuild is complete\n` };
  const clusters = await readClusters(ctx.runner);
  const running = clusters.some((c) => c.name === j.name && c.version === d.version && c.running);
  const primaryRuns = clusters.some((c) => c.name === d.link.primary.id.name && c.version === d.link.primary.id.version && c.running);
  const live: LiveCluster = { id, port: d.port, dataDir: d.dataDir, logFile: undefined };
  const steps: Step[] = [...(running ? [stopClusterStep(live, ctx.host.systemd)] : [])];
  const p = d.preserved;
  if (p) steps.push({ id: 'put-back-datadir', title: `remove the unfinished standby in ${d.dataDir} and move ${p.path} back`, effect: 'destroy', run: (c) => putBack(c, j.name, d.dataDir, p) });
  if (p) steps.push({ id: 'fence-again', title: `disable ${j.target}'s start again (the fence)`, effect: 'write', run: (c) => setStartAtBoot(c, id, 'disabled', c.host.systemd, false) });
  return { way: 'rolled-back', steps: [...steps, ...unlinkSteps(d.link, primaryRuns, ctx.host.systemd)] };
}

/** The old data directory back in place of an unfinished standby; idempotent. */
async function putBack(ctx: Context, name: string, dataDir: string, p: Preserved): Promise<void> {
  if (!(await ctx.fs.exists(p.path))) return;
  await ctx.fs.rm(dataDir, { recursive: true });
  await ctx.fs.rename(p.path, dataDir);
  await updateManaged(ctx.fs, ctx.paths.clustersDir, name, (r) => ({ ...r, preserved: r.preserved.filter((x) => x.path !== p.path) }));
}

export const replicaRebuildCommand: CommandModule<ReplicaRebuildOptions, ReplicaRebuildFacts, RebuildJournal> = {
  spec: {
    name: 'replica rebuild',
    summary: "make a failover's old primary (or a replica left on it) a streaming replica of the app's current primary",
    cli: {
      args: [{ syntax: '<cluster>', key: 'name', help: 'the fenced old primary, or a replica of it' }],
      flags: [],
      input: z.object({ name: nameArg('cluster name') }),
    },
    options: replicaRebuildOptionsSchema,
    examples: ['pgmam replica rebuild app1            # after pgmam replica promote app1_replica'],
    target: (o) => o.name,
    locks: (o, f) => [o.name, ...(f.primary.record ? [f.primary.record.name] : [])],
    destructive: true,
    typeToConfirm: (o) => o.name,
    // It exists for the fenced old primary.
    fencedMayRun: () => true,
    journal: rebuildJournalSchema,
  },
  gather: gatherRebuild,
  guards: rebuildGuards,
  plan: planRebuild,
  recover: recoverRebuild,
  report: async (ctx, o, f) => ctx.io.out(o.json ? `${JSON.stringify({ cluster: f.record?.cluster, primary: f.primary.record?.cluster })}\n` : `${f.record?.cluster} streams from ${f.primary.record?.cluster} as its replica\n`),
};
