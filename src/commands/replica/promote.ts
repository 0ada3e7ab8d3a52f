// `pgmam replica promote <replica> [--fence]`: failover. The old primary is stopped (or --fence stops
// it) and kept from starting and archiving; the app's stanza file names the replica before it can
// archive; the replica is promoted and continues the app's archive on a new timeline (same system
// identifier: pgBackRest's standard failover); then `pgbackrest check`, a full backup, and pgmam's
// records say the replica is the app's primary.
import { pointStanzaFileStep } from '../../steps/stanza-file.js';
import { notManaged } from '../../guards/cluster.js';
import { z } from 'zod';
import type { Context } from '../../context.js';
import { clusterIsNotLocked } from '../../guards/cluster.js';
import { runsAsRoot } from '../../guards/host.js';
import { lockFacts, managedClusters, readClusters } from '../../host/facts.js';
import type { HostCluster } from '../../pg/clusters.js';
import * as pg from '../../pg/commands.js';
import { dropRoleSql, lsnBytes, parseStandbyState, promote, REPLICA_CONF_NAME, STANDBY_STATE_SQL, withoutReplicaRule, type StandbyState } from '../../pg/replication.js';
import { retentionOf } from '../../config/schema.js';
import { stanzaScope } from '../../pgbackrest/commands.js';
import { nameArg, nameSchema } from '../../names.js';
import { flag } from '../../plan/cli-spec.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, required, type Guard, type Step } from '../../plan/types.js';
import { startClusterStep, stopClusterStep, waitPromotedStep } from '../../restore/steps.js';
import { parseControlData } from '../../pg/controldata.js';
import { renderArgv } from '../../runner/types.js';
import type { Journal } from '../../state/journal.js';
import type { LockHolder } from '../../state/lock.js';
import { updateManaged, type ManagedCluster } from '../../state/store.js';
import { setStartAtBoot, startAtBootShown } from '../../steps/autostart.js';
import { linkOf, linkSchema } from '../../steps/replication.js';
import { backupAndMark, checkArchivingStep } from '../../steps/stanza.js';
import { editHba } from '../../steps/tls.js';

export const replicaPromoteOptionsSchema = runFlagsSchema.extend({ name: nameSchema, fence: z.boolean() });
export type ReplicaPromoteOptions = z.infer<typeof replicaPromoteOptionsSchema>;

export interface ReplicaPromoteFacts {
  uid: number;
  record: ManagedCluster | undefined;
  cluster: HostCluster | undefined;
  standby: StandbyState | undefined;
  primary: ManagedCluster | undefined;
  primaryCluster: HostCluster | undefined;
  /** The primary's other replicas: they keep following the old primary. */
  siblings: string[];
  stanzaFileText: string | undefined;
  locks: Array<{ name: string; holder: LockHolder | undefined; alive: boolean }>;
}

/** What a promotion's journal keeps, so a re-run finishes what follows the promotion. */
export const promoteJournalSchema = z.object({
  version: z.string(),
  port: z.number(),
  dataDir: z.string(),
  stanza: z.string(),
  primary: z.string(),
  link: linkSchema.nullable(),
});
export type PromoteJournal = z.infer<typeof promoteJournalSchema>;

async function gatherPromote(ctx: Context, o: ReplicaPromoteOptions): Promise<ReplicaPromoteFacts> {
  const [managed, clusters] = await Promise.all([managedClusters(ctx).then((m) => m.records), readClusters(ctx.runner)]);
  const record = managed.find((r) => r.name === o.name);
  const cluster = record && clusters.find((c) => c.name === record.name && c.version === record.version);
  const primary = record?.role === 'replica' ? managed.find((r) => r.name === record.parent) : undefined;
  const primaryCluster = primary && clusters.find((c) => c.name === primary.name && c.version === primary.version);
  const siblings = primary ? managed.filter((r) => r.role === 'replica' && r.parent === primary.name && r.name !== o.name).map((r) => r.name) : [];
  let standby: StandbyState | undefined;
  if (cluster?.running && ctx.host.uid === 0) {
    const r = await ctx.runner.run(pg.psqlValue({ version: cluster.version, port: cluster.port }, STANDBY_STATE_SQL), { check: false });
    if (r.exitCode === 0) standby = parseStandbyState(r.stdout);
  }
  const stanzaFileText = record ? await ctx.fs.readText(record.stanzaFile) : undefined;
  const locks = await Promise.all([o.name, ...(primary ? [primary.name] : [])].map(async (n) => ({ name: n, ...(await lockFacts(ctx, n)) })));
  return { uid: ctx.host.uid, record, cluster, standby, primary, primaryCluster, siblings, stanzaFileText, locks };
}

function promoteGuards(f: ReplicaPromoteFacts, o: ReplicaPromoteOptions): Guard[] {
  const label = f.record?.cluster ?? o.name;
  const s = f.standby;
  return [
    runsAsRoot(f.uid),
    {
      id: 'target-is-a-replica',
      check: () => (!f.record ? notManaged(o.name) : f.record.role !== 'replica' ? fail(`${label} is not a replica: only a replica is promoted`) : !f.primary ? fail(`${label}'s primary ${f.record.parent} is not managed by pgmam`) : pass),
    },
    {
      id: 'replica-runs-in-recovery',
      check: () => (f.record?.role !== 'replica' ? pass : !f.cluster?.running ? fail(`${label} is not running`, `pg_ctlcluster ${f.record.version} ${f.record.name} start`) : !s ? fail(`${label} does not answer`) : !s.inRecovery ? fail(`${label} is not in recovery: it was promoted already`) : pass),
    },
    {
      id: 'replica-has-replayed-everything',
      check: () =>
        s?.inRecovery && s.receiveLsn && s.replayLsn && lsnBytes(s.replayLsn) < lsnBytes(s.receiveLsn)
          ? fail(`${label} has received WAL up to ${s.receiveLsn} but replayed only up to ${s.replayLsn}: promoted now, it would lose what it has not replayed`, 'wait a moment and run again (pgmam check shows its lag)')
          : pass,
    },
    {
      id: 'old-primary-is-stopped',
      check: () =>
        f.primaryCluster?.running && !o.fence
          ? fail(`${f.primary?.cluster} still runs: two primaries would write the app's stanza`, `stop it, or pass --fence (pgmam stops it and disables its start: start.conf disabled)`)
          : pass,
    },
    ...f.locks.map((l) => clusterIsNotLocked(l.name, l.holder, l.alive)),
  ];
}

/** From the promotion on: the standby settings out, the stale replication role dropped, archiving checked, a full backup, the records. */
function afterPromoteSteps(d: PromoteJournal, name: string, env: Pick<PlanEnv, 'config' | 'paths' | 'host'>): Step[] {
  const id = { version: d.version, name };
  const t = { version: d.version, port: d.port };
  const scope = stanzaScope(d.stanza, env.paths.stanzaDir);
  const confFile = `${pg.confDirOf(id)}/conf.d/${REPLICA_CONF_NAME}`;
  const first = backupAndMark(scope, name, `a full backup after the failover`, retentionOf(env.config), t);
  return [
    waitPromotedStep({ id, port: d.port, dataDir: d.dataDir, logFile: undefined }, env.config['recovery-timeout']),
    // pg_control takes the new timeline at the next checkpoint; pgBackRest's backup refuses until then ([058]).
    { id: 'checkpoint', title: `checkpoint ${pg.clusterLabel(id)} (pg_control on the new timeline)`, effect: 'write', run: { ...pg.psqlValue(t, 'checkpoint'), effect: 'write' } },
    {
      id: 'remove-standby-settings',
      title: `take the standby settings out of ${confFile}`,
      effect: 'write',
      run: async (ctx) => {
        const st = await ctx.fs.stat(confFile);
        if (st) await ctx.fs.writeFileAtomic(confFile, `# Written by pgmam: ${pg.clusterLabel(id)} was promoted on ${ctx.clock.now().toISOString()}; it is the primary of app ${d.stanza}.\n`, { mode: 0o644, owner: { uid: st.uid, gid: st.gid } });
        await ctx.runner.run(pg.controlCluster(id, 'reload', env.host.systemd));
      },
    },
    ...(d.link
      ? [
          {
            id: 'drop-stale-replication-role',
            title: `drop the replication role ${d.link.role} it copied from its old primary, and its password file`,
            effect: 'write' as const,
            run: async (ctx: Context) => {
              await ctx.runner.run(pg.psqlScript(t, dropRoleSql(d.link!.role)));
              await ctx.fs.rm(d.link!.passFile);
              // The old primary is stopped: its rule goes from the file (no reload).
              await editHba(ctx, d.link!.primary.id, env.host.systemd, (x) => withoutReplicaRule(x, d.link!.replica)).catch(() => undefined);
            },
          },
        ]
      : []),
    checkArchivingStep(scope, d.stanza),
    {
      ...first.backup,
      title: `take a full backup of ${pg.clusterLabel(id)} into stanza ${d.stanza} (the new timeline's first)`,
    },
    {
      id: 'record-primary',
      title: `record ${pg.clusterLabel(id)} as app ${d.stanza}'s primary`,
      effect: 'write',
      run: async (ctx) => {
        const old = (await managedClusters(ctx)).records.find((r) => r.name === d.primary);
        const tli = await ctx.runner.run(pg.psqlValue(t, 'select timeline_id from pg_control_checkpoint()'), { check: false });
        const timeline = Number(tli.stdout.trim()) || 0;
        await updateManaged(ctx.fs, ctx.paths.clustersDir, name, (r) => ({
          ...r,
          role: 'app',
          parent: null,
          replication: null,
          // The stanza file is the app's: its attached repositories are this cluster's now.
          repos: old?.repos ?? r.repos,
          repoMarks: {},
          timelines: r.timelines.some((x) => x.timeline === timeline) || !timeline ? r.timelines : [...r.timelines, { timeline, parent: timeline - 1, target: null, promotedAt: ctx.clock.now().toISOString() }],
        }));
      },
      show: [`update ${env.paths.clustersDir}/${name}.json: role app, the app's attached repositories`],
    },
    first.mark,
  ];
}

function planPromote(f: ReplicaPromoteFacts, o: ReplicaPromoteOptions, env: PlanEnv): PlanBody {
  const r = required(f.record, 'the replica');
  const c = required(f.cluster, "the replica's cluster");
  const p = required(f.primary, 'the primary');
  const pid = { version: p.version, name: p.name };
  const d: PromoteJournal = { version: r.version, port: c.port, dataDir: required(c.dataDir, "the replica's data directory"), stanza: r.stanza, primary: p.name, link: linkOf(r, p, f.primaryCluster?.port) ?? null };
  const stanzaFile = r.stanzaFile;
  const steps: Step[] = [
    ...(f.primaryCluster?.running ? [{ ...stopClusterStep({ id: pid, port: f.primaryCluster.port, dataDir: f.primaryCluster.dataDir ?? '', logFile: undefined }, env.host.systemd), id: 'stop-old-primary', title: `stop the old primary ${p.cluster} (--fence)` }] : []),
    {
      id: 'fence-old-primary',
      title: `fence the old primary ${p.cluster}: not started at boot or by hand (start.conf disabled), recorded as followed by ${r.cluster}`,
      effect: 'write',
      run: async (ctx) => {
        await setStartAtBoot(ctx, pid, 'disabled', env.host.systemd, false);
        const at = ctx.clock.now().toISOString();
        await updateManaged(ctx.fs, ctx.paths.clustersDir, p.name, (x) => ({ ...x, successor: r.name, fenced: x.fenced ?? { at, repo: 'local', timeline: 0, host: env.host.name, reason: `failover: ${r.cluster} was promoted in its place (pgmam replica rebuild ${p.name})` } }));
      },
      show: [...startAtBootShown(pid, 'disabled', env.host.systemd), `record ${p.name}: fenced, successor ${r.name}`],
    },
    pointStanzaFileStep(stanzaFile, d, `point the app's stanza file ${stanzaFile} at ${r.cluster} (pg1-path ${d.dataDir}, pg1-port ${d.port}) before it can archive`),
    { id: 'promote', title: `promote ${r.cluster} (a new timeline; it archives into stanza ${r.stanza} from now on)`, effect: 'write', run: promote({ version: r.version, port: c.port }) },
    ...afterPromoteSteps(d, r.name, env),
  ];
  return {
    target: r.cluster,
    steps,
    journal: { rerun: renderArgv(['pgmam', 'replica', 'promote', o.name, ...(o.fence ? ['--fence'] : []), '--yes']), data: d },
    notes: [
      `${p.cluster} stays stopped and fenced; pgmam replica rebuild ${p.name} makes it a replica of ${r.cluster}`,
      `commands taking the app ${r.stanza} act on ${r.cluster} from now on`,
      ...(f.siblings.length ? [`${f.siblings.join(', ')} still follow${f.siblings.length === 1 ? 's' : ''} ${p.cluster}: pgmam replica rebuild ${f.siblings.join(' / ')} makes each a replica of ${r.cluster}`] : []),
    ],
  };
}

/** Promoted already: finish forward (writes may have reached it). Not yet: nothing to undo — the fence and the stanza file stay, and the command runs again. */
async function recoverPromote(ctx: Context, j: Journal, d: PromoteJournal): Promise<Recovery> {
  const r = await ctx.runner.run(pg.psqlValue({ version: d.version, port: d.port }, 'select pg_is_in_recovery()'), { check: false });
  const running = r.exitCode === 0;
  // Stopped: a standby leaves standby.signal and "shut down in recovery"; a promoted one neither.
  const control = running ? undefined : parseControlData((await ctx.runner.run(pg.pgControlData(d.version, d.dataDir), { check: false })).stdout);
  const promoted = running ? r.stdout.trim() === 'f' : !(await ctx.fs.exists(`${d.dataDir}/standby.signal`)) && (control?.state === 'shut down' || control?.state === 'in production');
  if (!promoted) return { way: 'rolled-back', steps: [] };
  const id = { version: d.version, name: j.name };
  const start: Step[] = running ? [] : [startClusterStep({ id, port: d.port, dataDir: d.dataDir, logFile: undefined }, ctx.host.systemd, ctx.config['recovery-timeout'])];
  return { way: 'finished', steps: [...start, ...afterPromoteSteps(d, j.name, ctx)], finished: `${j.target} was promoted; replica promote is complete\n` };
}

async function reportPromote(ctx: Context, o: ReplicaPromoteOptions, f: ReplicaPromoteFacts): Promise<void> {
  const result = { cluster: f.record?.cluster, app: f.record?.stanza, oldPrimary: f.primary?.cluster, fenced: true };
  ctx.io.out(o.json ? `${JSON.stringify(result)}\n` : `${result.cluster} is app ${result.app}'s primary now, archiving into its stanza; ${result.oldPrimary} is fenced (pgmam replica rebuild ${f.primary?.name})\n`);
}

export const replicaPromoteCommand: CommandModule<ReplicaPromoteOptions, ReplicaPromoteFacts, PromoteJournal> = {
  spec: {
    name: 'replica promote',
    summary: "failover: promote a replica to be its app's primary (the old primary stopped, or --fence stops it)",
    cli: {
      args: [{ syntax: '<replica>', key: 'name', help: 'the replica to promote' }],
      flags: [{ flags: '--fence', help: 'stop the old primary if it runs (it is always kept from starting again: start.conf disabled)' }],
      input: z.object({ name: nameArg('replica name'), fence: flag }),
    },
    options: replicaPromoteOptionsSchema,
    examples: ['pgmam replica promote app1_replica --fence'],
    target: (o) => o.name,
    locks: (o, f) => [o.name, ...(f.primary ? [f.primary.name] : [])],
    destructive: true,
    typeToConfirm: (o) => o.name,
    journal: promoteJournalSchema,
  },
  gather: gatherPromote,
  guards: promoteGuards,
  plan: planPromote,
  recover: recoverPromote,
  report: reportPromote,
};
