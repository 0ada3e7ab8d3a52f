// `pgmam pitr <app> --to T | --latest | --undo`: cluster-wide point-in-time restore that never
// overwrites the current data directory; everything that can be validated is validated before the stop.
import { replicaIsRefused } from '../../guards/replica.js';
import { archiveMax } from '../../pgbackrest/info.js';
import { retentionOf } from '../../config/schema.js';
import { handOverStep, handedOver } from '../../steps/hand-over.js';
import { flag } from '../../plan/cli-spec.js';
import { z } from 'zod';
import { nameSchema, clusterRefArg, optionalNameArg } from '../../names.js';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { clusterIsNotLocked } from '../../guards/cluster.js';
import { enoughDisk, runsAsRoot } from '../../guards/host.js';
import { lockFacts, managedClusters, postgresOwner, readClusters, resolveAppName } from '../../host/facts.js';
import { stanzaScope } from '../../pgbackrest/commands.js';
import type { HostCluster } from '../../pg/clusters.js';
import * as pg from '../../pg/commands.js';
import { parseControlData } from '../../pg/controldata.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, required, type Guard, type Step } from '../../plan/types.js';
import { restoreJournalSchema, rollbackRestoreSteps, timelineOf, type RestoreJournal } from '../../restore/recovery.js';
import { expectOf, restoreSequence } from '../../restore/sequence.js';
import { backupWalArchived, emptySource, gatherSource, repoIsAttached, hasBackupGuard, selectSet, stanzaIsClustersOwn, targetGuards, timelineHistoryAvailable, type SourceFacts } from '../../restore/source.js';
import { recordTimelineStep, stamp, startClusterStep, stopClusterStep, type LiveCluster } from '../../restore/steps.js';
import { parseTarget, targetTimeSchema } from '../../restore/target.js';
import type { LockHolder } from '../../state/lock.js';
import type { Journal } from '../../state/journal.js';
import { relayReplicasSteps, replicaViews, stopReplicasSteps, type ReplicaView } from '../../steps/replication.js';
import { readRecord, undoSource, updateManaged, type ManagedCluster, type Preserved } from '../../state/store.js';
import { backupAndMark, checkArchivingStep } from '../../steps/stanza.js';
import { downtimeLine, restoreDowntime, sessionsOf } from '../../steps/downtime.js';
import { alignStanzaFileStep } from '../../steps/stanza-file.js';

export const pitrOptionsSchema = runFlagsSchema.extend({
  ref: z.object({ version: z.string().regex(/^\d{2}$/).optional(), name: nameSchema }),
  mode: z.discriminatedUnion('kind', [z.object({ kind: z.literal('time'), target: targetTimeSchema }), z.object({ kind: z.literal('latest') }), z.object({ kind: z.literal('undo') })]),
  /** Restore from this repository ('local' or an attached one); default: the one that covers the target. */
  repo: z.string().optional(),
});
export type PitrOptions = z.infer<typeof pitrOptionsSchema>;

export interface PitrFacts extends SourceFacts {
  uid: number;
  now: Date;
  record: ManagedCluster | undefined;
  cluster: HostCluster | undefined;
  lock: { holder: LockHolder | undefined; alive: boolean };
  signalFiles: string[];
  freeBytes: number | undefined;
  /** For --undo: the directory the last pitr preserved, and whether it holds a data directory. */
  undoSource: { preserved: Preserved; holdsDataDir: boolean; timeline: number | undefined } | undefined;
  /** Entries of pg_tblspc: tablespaces outside the data directory, which a restore would write into. */
  tablespaces: string[];
  postgres: { uid: number; gid: number } | undefined;
  /** Its replicas: stopped before the restore, laid down again after it. */
  replicas: ReplicaView[];
  /** Client sessions now: the restore cuts them (its plan and prompt say so). */
  sessions: number | undefined;
}

export async function gatherPitrFacts(ctx: Context, o: PitrOptions): Promise<PitrFacts> {
  const runner = ctx.runner;
  const [clusters, managed, lock, postgres] = await Promise.all([readClusters(runner), managedClusters(ctx), lockFacts(ctx, o.ref.name), postgresOwner(ctx.fs)]);
  const record = managed.records.find((r) => r.name === o.ref.name && (!o.ref.version || r.version === o.ref.version));
  const cluster = clusters.find((c) => c.name === o.ref.name && c.version === (record?.version ?? o.ref.version ?? c.version));
  const facts: PitrFacts = {
    ...emptySource(),
    uid: ctx.host.uid,
    now: ctx.clock.now(),
    record,
    cluster,
    lock,
    signalFiles: [],
    freeBytes: undefined,
    undoSource: undefined,
    tablespaces: [],
    postgres,
    replicas: record && cluster ? replicaViews(managed.records, clusters, record, cluster.port) : [],
    sessions: await sessionsOf(ctx, cluster),
  };
  if (!record || !cluster?.dataDir || ctx.host.uid !== 0) return facts;
  const dataDir = cluster.dataDir;
  const [signals, source, free] = await Promise.all([
    Promise.all(['recovery.signal', 'standby.signal'].map(async (f) => ((await ctx.fs.exists(`${dataDir}/${f}`)) ? f : undefined))),
    gatherSource(ctx, runner, record, cluster, { target: o.mode.kind === 'time' ? o.mode.target : undefined, repo: o.repo }),
    ctx.fs.freeBytes(dataDir).catch(() => undefined),
  ]);
  Object.assign(facts, source);
  facts.signalFiles = signals.filter((s): s is string => Boolean(s));
  facts.freeBytes = free;
  facts.tablespaces = await ctx.fs.readdir(`${dataDir}/pg_tblspc`);

  const last = undoSource(record.preserved);
  if (last) {
    const holdsDataDir = await ctx.fs.exists(`${last.path}/PG_VERSION`);
    const ctl = holdsDataDir ? await runner.run(pg.pgControlData(cluster.version, last.path), { check: false }) : undefined;
    facts.undoSource = { preserved: last, holdsDataDir, timeline: ctl?.exitCode === 0 ? parseControlData(ctl.stdout).timeline : undefined };
  }
  return facts;
}

const select = (f: PitrFacts, o: PitrOptions) => selectSet(f, o.mode.kind === 'time' ? o.mode.target : undefined);

export function pitrGuards(f: PitrFacts, o: PitrOptions, minFreeMb: number): Guard[] {
  const label = f.record?.cluster ?? (o.ref.version ? `${o.ref.version}/${o.ref.name}` : o.ref.name);
  const known = Boolean(f.record && f.cluster);
  const guards: Guard[] = [
    runsAsRoot(f.uid),
    replicaIsRefused(f.record, 'restored to a point in time: its app is (pgmam pitr <app>), and pitr rebuilds its replicas after'),
    {
      id: 'cluster-is-managed',
      check: () =>
        !f.record
          ? fail(`${label} is not managed by pgmam`, f.cluster ? 'pgmam restores only clusters it manages' : 'see pgmam list')
          : !f.cluster
            ? fail(`${label} is managed by pgmam but the host has no such cluster`)
            : pass,
    },
    clusterIsNotLocked(o.ref.name, f.lock.holder, f.lock.alive),
  ];
  if (!known || f.uid !== 0) return guards;

  if (o.mode.kind === 'undo') {
    guards.push({
      id: 'preserved-datadir-exists',
      check: () =>
        !f.undoSource
          ? fail(`${label} has no data directory preserved by a pitr to put back`, 'see pgmam list')
          : !f.undoSource.holdsDataDir
            ? fail(`${f.undoSource.preserved.path} does not hold a data directory (no PG_VERSION)`)
            : pass,
    });
    return guards;
  }

  const { set } = select(f, o);
  guards.push(
    repoIsAttached(f),
    {
      id: 'cluster-is-not-in-recovery',
      check: () =>
        f.signalFiles.length
          ? fail(`${label} has ${f.signalFiles.join(' and ')}: no restore during active recovery`, 'a standby or a recovering cluster is not restored by pgmam')
          : f.server?.inRecovery
            ? fail(`${label} is in recovery (pg_is_in_recovery() is true): no restore during active recovery`)
            : pass,
    },
    stanzaIsClustersOwn(f, label, f.record!.stanza, f.cluster!),
    timelineHistoryAvailable(f, label),
  );
  if (o.mode.kind === 'time') guards.push(...targetGuards(f, o.mode.target, { label, name: o.ref.name, now: f.now, online: Boolean(f.cluster!.running), timelines: f.record!.timelines }));
  else guards.push(hasBackupGuard(f, label));
  guards.push({
    id: 'cluster-has-no-tablespaces',
    check: () =>
      f.tablespaces.length
        ? fail(`${label} has tablespaces outside its data directory (pg_tblspc: ${f.tablespaces.join(', ')}): a restore would overwrite them in place, with no copy kept`, 'pitr of clusters with tablespaces is not supported yet')
        : pass,
  });
  guards.push(backupWalArchived(f, set));
  guards.push(enoughDisk([{ path: f.cluster!.dataDir!, freeBytes: f.freeBytes === undefined ? undefined : f.freeBytes - (set?.info?.size ?? 0) }], minFreeMb));
  return guards;
}

export function planPitr(f: PitrFacts, o: PitrOptions, env: PlanEnv): PlanBody {
  const rec = f.record;
  const version = required(rec?.version, `the pgmam record of ${o.ref.name}`);
  const id = { version, name: o.ref.name };
  const dataDir = required(f.cluster?.dataDir, `the data directory of ${pg.clusterLabel(id)} (pg_lsclusters)`);
  const live: LiveCluster = { id, port: f.cluster?.port ?? 0, dataDir, logFile: f.cluster?.logFile };
  const scope = stanzaScope(rec?.stanza ?? o.ref.name, env.paths.stanzaDir);
  const cfg = env.config;
  const createdAt = f.now.toISOString();
  const online = Boolean(f.cluster?.running);
  const clustersDir = env.paths.clustersDir;
  const common = { live, owner: f.postgres ?? { uid: 0, gid: 0 }, clustersDir, stateDir: env.paths.stateDir, systemd: env.host.systemd, recoveryTimeout: cfg['recovery-timeout'], archiveWaitTimeout: cfg['archive-wait-timeout'] };

  if (o.mode.kind === 'undo') {
    const source = f.undoSource?.preserved ?? { path: '(preserved directory)', reason: 'pitr', createdAt };
    const aside: Preserved = { path: `${dataDir}.pre-undo-${stamp(f.now)}`, reason: 'pitr-undo', createdAt };
    // Started through a recovery that ends at the end of its own timeline and promotes: the cluster
    // lands on a new timeline above the abandoned one, so no restore can follow the abandoned one and
    // its new backups sort after the abandoned timeline's (pgBackRest 2.45's expire compares WAL
    // names across timelines and would otherwise remove this timeline's WAL).
    const oldTimeline = f.undoSource?.timeline ?? 0;
    const seq = restoreSequence({
      ...common,
      source: {
        kind: 'preserved',
        preserved: source,
        recoverySettings: [`restore_command = 'pgbackrest${scope.configIncludePath ? ` --config-include-path=${scope.configIncludePath}` : ''} --stanza=${scope.stanza} archive-get %f "%p"'`, "recovery_target_timeline = 'current'"],
        why: "replay this data directory's own timeline to its end, then promote",
        createdAt,
      },
      into: { kind: 'replace', name: o.ref.name, running: online, preserved: aside },
      target: { previousTimeline: Math.max(oldTimeline, ...(rec?.timelines.map((t) => t.timeline) ?? [])) },
    });
    const steps: Step[] = [...stopReplicasSteps(f.replicas, env.host.systemd), ...seq.steps, recordTimelineStep(o.ref.name, clustersDir, seq.recovered, oldTimeline, null), seq.handOver, ...pitrTail(scope, o.ref.name, version, live.port, env, 1, rec?.stanzaFile), ...relay(f, scope, env)];
    return {
      command: 'pitr --undo',
      target: pg.clusterLabel(id),
      steps,
      // Putting a directory back is a rename: the recovery along its own timeline is most of it.
      downtime: downtimeLine(pg.clusterLabel(id), undefined, f.sessions, 'is handed back (stop, put the preserved directory back, replay its own timeline, start)'),
      journal: {
        rerun: `pgmam pitr ${o.ref.name} --undo --yes`,
        data: { version, dataDir, preserved: aside, source, online, previousTimeline: Math.max(oldTimeline, ...(rec?.timelines.map((t) => t.timeline) ?? [])), target: null, systemId: f.control?.systemId, replicas: f.replicas } satisfies RestoreJournal,
      },
      notes: [
        ...replicaNotes(f),`the data directory as it is now is preserved at ${aside.path}; later restores stay on the timeline the cluster is back on`],
      failureHint: (i) => {
        const put = steps.findIndex((s) => s.id === 'put-back-datadir');
        if (i < steps.findIndex((s) => s.id === 'preserve-datadir')) return ['nothing was moved', ...(online && i > 0 ? [`start the cluster again: pg_ctlcluster ${version} ${o.ref.name} start`] : [])];
        if (i <= put) return [`the current data directory is preserved at ${aside.path}; ${source.path} is where it was; fix the cause and run pgmam pitr ${o.ref.name} --undo again`];
        return [`the data directory of before the pitr is back in ${dataDir}; the one it replaced is preserved at ${aside.path}`];
      },
    };
  }

  const { set } = select(f, o);
  const previousTimeline = f.currentTimeline ?? 0;
  const preserved: Preserved = { path: `${dataDir}.pre-pitr-${stamp(f.now)}`, reason: 'pitr', createdAt };
  // Pinned to the cluster's timeline by number, so recovery never follows an abandoned timeline in the
  // archive ('latest'), nor depends on which timeline the backup's pg_control names ('current').
  const restore =
    o.mode.kind === 'time'
      ? pgbr.restore(scope, { set: set?.label ?? '?', type: 'time', target: o.mode.target.text, targetTimeline: previousTimeline, repo: f.repo.index })
      : pgbr.restore(scope, { set: set?.label ?? '?', type: 'default', targetTimeline: previousTimeline, repo: f.repo.index });
  const targetIso = o.mode.kind === 'time' ? new Date(o.mode.target.epochUs / 1000).toISOString() : null;
  // A stopped cluster's last segment was never archived (it was not full): --latest promises every
  // commit before the command, so the segments past the archive's newest come from the old pg_wal.
  const newestArchived = f.stanza ? archiveMax(f.stanza)?.wal : undefined;
  const afterRestore: Step[] =
    o.mode.kind === 'latest' && !online
      ? [
          {
            id: 'copy-unarchived-wal',
            title: `copy the WAL segments ${dataDir} had not archived (after ${newestArchived ?? 'none'}) into the restored pg_wal`,
            effect: 'write',
            run: async (c) => {
              const names = (await c.fs.readdir(`${preserved.path}/pg_wal`)).filter((n) => /^[0-9A-F]{24}$/.test(n) && (!newestArchived || n > newestArchived));
              for (const n of names) await c.fs.copyFile(`${preserved.path}/pg_wal/${n}`, `${dataDir}/pg_wal/${n}`, f.postgres);
            },
            show: [`cp ${preserved.path}/pg_wal/<segments after ${newestArchived ?? 'none'}> ${dataDir}/pg_wal/  (as postgres)`],
          },
        ]
      : [];
  const seq = restoreSequence({
    ...common,
    source: {
      kind: 'stanza',
      facts: f,
      dataDir,
      scope,
      live: online ? live : undefined,
      restore,
      expect: expectOf(set, f.stanza),
      what: `${
        o.mode.kind === 'time'
          ? `restore backup ${set?.label} and replay WAL to ${o.mode.target.text} along timeline ${previousTimeline}`
          : `restore backup ${set?.label} and replay all archived WAL of timeline ${previousTimeline}`
      }, from ${f.repo.index === 1 ? 'the local repository' : `repository ${f.repo.name} (repo${f.repo.index})`}: ${f.repo.why}`,
    },
    into: { kind: 'replace', name: o.ref.name, running: online, preserved },
    afterRestore,
    target: { previousTimeline, targetUs: o.mode.kind === 'time' ? o.mode.target.epochUs : undefined, targetText: o.mode.kind === 'time' ? o.mode.target.text : undefined },
  });
  // Handed over once the restore is verified and recorded: the full backup runs with users back.
  const steps: Step[] = [...stopReplicasSteps(f.replicas, env.host.systemd), ...seq.steps, recordTimelineStep(o.ref.name, clustersDir, seq.recovered, previousTimeline, targetIso), seq.handOver, ...pitrTail(scope, o.ref.name, version, live.port, env, f.repo.index, rec?.stanzaFile), ...relay(f, scope, env)];
  const preserveAt = steps.findIndex((s) => s.id === 'preserve-datadir');
  const recordAt = steps.findIndex((s) => s.id === 'record-timeline');
  const again = `${o.mode.kind === 'time' ? `pgmam pitr ${o.ref.name} --to '${o.mode.target.text}'` : `pgmam pitr ${o.ref.name} --latest`}${o.repo ? ` --repo ${o.repo}` : ''}`;
  return {
    target: pg.clusterLabel(id),
    steps,
    downtime: downtimeLine(pg.clusterLabel(id), restoreDowntime(rec, set?.info?.size), f.sessions),
    journal: {
      rerun: `${again} --yes`,
      data: { version, dataDir, preserved, online, previousTimeline, target: targetIso, systemId: f.control?.systemId, ...(f.repo.index === 1 ? {} : { fromRepo: f.repo.index }), replicas: f.replicas } satisfies RestoreJournal,
    },
    notes: [
      ...replicaNotes(f),`the current data directory will be preserved at ${preserved.path} (never deleted by pgmam); undo with: pgmam pitr ${o.ref.name} --undo`],
    failureHint: (i) => {
      if (i < preserveAt) return ['the data directory was not touched', ...(online && i > 0 ? [`start the cluster again: pg_ctlcluster ${version} ${o.ref.name} start`] : [])];
      if (i > recordAt) return [`the cluster is restored and running; the data directory of before is preserved at ${preserved.path}`, `finish by hand: runuser -u postgres -- pgbackrest --stanza=${o.ref.name} --type=full backup`];
      return [
        `the data directory of before the pitr is preserved at ${preserved.path}`,
        `to go back: pgmam pitr ${o.ref.name} --undo`,
        `to go forward: fix the cause, then pgmam pitr ${o.ref.name} --undo and ${again} again`,
      ];
    },
  };
}

/**
 * An interrupted pitr or --undo. Before hand-over no user could reach the restored cluster: it is
 * rolled back — the data directory of before goes back (a restore that promoted is moved aside as
 * preserved, one that did not is removed) and the cluster starts as it was, open again. From
 * hand-over on, users may be writing: it is finished (hand-over, full backup, mark, check), never
 * rolled back. `pitr --undo` settles an interrupted pitr too: rolled back, that is the undo.
 */
export async function recoverPitr(ctx: Context, j: Journal, d: RestoreJournal, o?: PitrOptions): Promise<Recovery> {
  const undoing = o?.mode.kind === 'undo' && j.command === 'pitr';
  const cluster = (await readClusters(ctx.runner)).find((c) => c.name === j.name && c.version === d.version);
  const live: LiveCluster = { id: { version: d.version, name: j.name }, port: cluster?.port ?? 0, dataDir: d.dataDir, logFile: cluster?.logFile };
  const running = Boolean(cluster?.running);
  // After a failover the cluster's name is not its stanza's: the record says which it is.
  const rec = await readRecord(ctx.fs, ctx.paths.clustersDir, j.name);
  const reopen = handOverStep(live.id, ctx.paths.stateDir, ctx.host.systemd);
  if (handedOver(j)) {
    const scope = stanzaScope(rec?.stanza ?? j.name, ctx.paths.stanzaDir);
    const relayed = relayReplicasSteps(d.replicas ?? [], scope.stanza ?? j.name, scope.configIncludePath, (await postgresOwner(ctx.fs)) ?? { uid: 0, gid: 0 }, ctx.host.systemd, ctx.config['recovery-timeout']);
    const steps = [...(running ? [] : [startClusterStep(live, ctx.host.systemd, ctx.config['recovery-timeout'])]), reopen, ...pitrTail(scope, j.name, d.version, live.port, ctx, d.fromRepo, rec?.stanzaFile), ...relayed];
    // Finished first; then --undo goes on to undo it like any completed pitr.
    return undoing ? { way: 'finished', steps } : { way: 'finished', steps, finished: `${j.target}: the interrupted ${j.command} is finished (handed over, backed up)\n` };
  }
  if (j.command === 'pitr --undo') return { way: 'rolled-back', steps: [...rollbackUndoSteps(ctx, j.name, d, live, running), reopen] };
  const promoted = (await timelineOf(ctx, d.version, d.dataDir)) > d.previousTimeline;
  const steps = [...(await rollbackRestoreSteps(ctx, j.name, d, live, running, d.online, promoted)), reopen];
  return undoing ? { way: 'rolled-back', steps, finished: `${j.target}: the interrupted pitr is rolled back; the cluster is on its data directory of before\n` } : { way: 'rolled-back', steps };
}

/** An --undo before hand-over: the directory it was putting back returns to its preserved place, the one it moved aside comes back. Nothing is removed. */
function rollbackUndoSteps(ctx: Context, name: string, d: RestoreJournal, live: LiveCluster, running: boolean): Step[] {
  const source = d.source;
  if (!source) throw new Error(`the journal of ${name}'s pitr --undo names no source directory`);
  const aside = d.preserved;
  return [
    ...(running ? [stopClusterStep(live, ctx.host.systemd)] : []),
    {
      id: 'put-back-datadir',
      title: `move ${d.dataDir} back to ${source.path} (preserved) and ${aside.path} back to ${d.dataDir}`,
      effect: 'write',
      run: async (c) => {
        if (!(await c.fs.exists(aside.path))) return; // killed before the move: nothing to put back
        if (await c.fs.exists(d.dataDir)) {
          await c.fs.rename(d.dataDir, source.path);
          await updateManaged(c.fs, c.paths.clustersDir, name, (r) => ({ ...r, preserved: [...r.preserved.filter((p) => p.path !== source.path), source] }));
        }
        await c.fs.rename(aside.path, d.dataDir);
        await updateManaged(c.fs, c.paths.clustersDir, name, (r) => ({ ...r, preserved: r.preserved.filter((p) => p.path !== aside.path) }));
      },
      show: [`mv ${d.dataDir} ${source.path}  (if there)`, `mv ${aside.path} ${d.dataDir}`],
    },
    ...(d.online ? [{ ...startClusterStep(live, ctx.host.systemd, ctx.config['recovery-timeout']), title: `start ${pg.clusterLabel(live.id)} again on its own data directory` }] : []),
  ];
}

async function reportPitr(ctx: Context, o: PitrOptions, f: PitrFacts, plan: { target: string }): Promise<void> {
  const after = await managedClusters(ctx).then((m) => m.records.find((r) => r.name === o.ref.name));
  const result = {
    cluster: plan.target,
    mode: o.mode.kind,
    target: o.mode.kind === 'time' ? o.mode.target.text : null,
    set: o.mode.kind === 'undo' ? null : (select(f, o).set?.label ?? null),
    timeline: after?.timelines.at(-1)?.timeline ?? null,
    preserved: after?.preserved.at(-1)?.path ?? null,
    undo: o.mode.kind === 'undo' ? null : `pgmam pitr ${o.ref.name} --undo`,
  };
  if (o.json) ctx.io.out(`${JSON.stringify(result)}\n`);
  else if (o.mode.kind === 'undo') ctx.io.out(`${plan.target} is back on its data directory of before the last pitr; the one it replaced is preserved at ${result.preserved}\n`);
  else
    ctx.io.out(
      `${plan.target} restored ${o.mode.kind === 'time' ? `to ${result.target}` : 'to the end of its archive'} from backup ${result.set}, now on timeline ${result.timeline}, with a new full backup\n` +
        `previous data directory preserved at ${result.preserved}; undo with: ${result.undo}\n`,
    );
}

export const pitrCommand: CommandModule<PitrOptions, PitrFacts, RestoreJournal> = {
  spec: {
    name: 'pitr',
    summary: 'restore a whole cluster to a point in time, keeping the old data directory',
    cli: {
      args: [{ syntax: '[app]', key: 'ref', help: 'managed cluster: app1 or 15/app1' }],
      flags: [
        { flags: '--to <timestamp>', help: 'target time with UTC offset, e.g. "2026-01-19 10:40:00+00"' },
        { flags: '--latest', help: 'restore to the end of the archive (every commit before the command started)' },
        { flags: '--undo', help: 'put back the data directory the last pitr preserved' },
        { flags: '--repo <name>', help: "restore from this repository ('local' or an attached one; default: the local one when it covers the target, else one that does)" },
      ],
      input: z
        .object({ ref: clusterRefArg, to: z.string().optional(), latest: flag, undo: flag, repo: optionalNameArg('repository name') })
        .transform((r) => ({ ref: r.ref, mode: pitrMode(r), ...(r.repo ? { repo: r.repo } : {}) })),
      keepOnError: true,
      // An app named alone is its primary now (after a failover, the promoted replica); VERSION/NAME is that cluster.
      prepare: async (ctx, i) => {
        const input = i as { ref: { version: string | undefined; name: string } };
        return input.ref.version ? input : { ...input, ref: { ...input.ref, name: await resolveAppName(ctx, input.ref.name) } };
      },
    },
    options: pitrOptionsSchema,
    examples: ['pgmam pitr app1 --to "2026-01-19 10:40:00+00"', 'pgmam pitr app1 --latest --yes', 'pgmam pitr app1 --undo', 'legacy: pitr -a app1 -t "2026-01-19 10:40:00+00" -y'],
    target: (o) => o.ref.name,
    destructive: true,
    journalCommand: (o) => (o.mode.kind === 'undo' ? 'pitr --undo' : 'pitr'),
    settlesAlso: (o) => (o.mode.kind === 'undo' ? ['pitr'] : []),
    journal: restoreJournalSchema,
  },
  gather: gatherPitrFacts,
  guards: (f, o, env) => pitrGuards(f, o, env.config['min-free-mb']),
  plan: planPitr,
  recover: recoverPitr,
  report: reportPitr,
};

export function pitrMode(o: { to?: string; latest?: boolean; undo?: boolean }): PitrOptions['mode'] {
  const given = [o.to !== undefined, Boolean(o.latest), Boolean(o.undo)].filter(Boolean).length;
  if (given !== 1) throw new UsageError('pitr needs exactly one of --to "<timestamp with offset>", --latest or --undo');
  if (o.undo) return { kind: 'undo' };
  if (o.latest) return { kind: 'latest' };
  return { kind: 'time', target: parseTarget(o.to!) };
}

/** The replicas laid down again from the full backup pitrTail takes (they cannot follow their primary across a restore). */
function relay(f: PitrFacts, scope: ReturnType<typeof stanzaScope>, env: PlanEnv): Step[] {
  return relayReplicasSteps(f.replicas, scope.stanza ?? '?', scope.configIncludePath, f.postgres ?? { uid: 0, gid: 0 }, env.host.systemd, env.config['recovery-timeout']);
}

const replicaNotes = (f: PitrFacts) =>
  f.replicas.length ? [`its replicas ${f.replicas.map((r) => r.name).join(', ')} are stopped first and laid down again from the new full backup (they cannot follow the cluster across the restore)`] : [];

/** What follows the hand-over of a pitr or an undo (and what finishing an interrupted one runs): a full backup on the new timeline, its mark, an archiving check. */
function pitrTail(scope: ReturnType<typeof stanzaScope>, name: string, version: string, port: number, env: Pick<PlanEnv, 'config' | 'paths'>, fromRepo = 1, stanzaFile = `${env.paths.stanzaDir}/${name}.conf`): Step[] {
  // Restored from another repository (the local one lost, say): the local stanza is made again where missing.
  const recreate: Step[] = fromRepo === 1 ? [] : [{ id: 'create-local-stanza', title: `create stanza ${name} again where a repository lacks it (the restore read repo${fromRepo})`, effect: 'write', run: pgbr.stanzaCreate(scope) }];
  return [...recreate, alignStanzaFileStep(stanzaFile, name, retentionOf(env.config)), ...Object.values(backupAndMark(scope, name, 'a full backup so the new timeline has a base', retentionOf(env.config), { version, port }, true)), checkArchivingStep(scope, name)];
}
