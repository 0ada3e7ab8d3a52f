// `pgmam pitr <app> --to T | --latest | --undo`: cluster-wide point-in-time restore that never
// overwrites the current data directory; everything that can be validated is validated before the stop.
import type { Context } from '../context.js';
import { UsageError } from '../errors.js';
import { clusterIsNotLocked } from '../guards/cluster.js';
import { enoughDisk, runsAsRoot } from '../guards/host.js';
import type { HostCluster } from '../pg/clusters.js';
import * as pg from '../pg/commands.js';
import { parseControlData } from '../pg/controldata.js';
import * as pgbr from '../pgbackrest/commands.js';
import { settleInterrupted, type RestoreJournal } from '../steps/interrupted.js';
import { executePlan, type ExecuteFlags } from '../plan/executor.js';
import { fail, pass, type Guard, type Plan, type Step } from '../plan/types.js';
import {
  createDataDirStep,
  preserveDataDirStep,
  restoreStep,
  stamp,
  startClusterStep,
  stopClusterStep,
  switchWalStep,
  verifyRecoveredStep,
  waitPromotedStep,
  recordTimelineStep,
  requestRecoveryStep,
  type LiveCluster,
  type RecoveredState,
} from '../restore/steps.js';
import { parseTarget, type TargetTime } from '../restore/target.js';
import {
  archiveHistorySteps,
  backupWalArchived,
  emptySource,
  gatherSource,
  hasBackupGuard,
  selectSet,
  stanzaIsClustersOwn,
  targetGuards,
  timelineHistoryAvailable,
  type SourceFacts,
} from '../restore/source.js';

import { ReadOnlyRunner } from '../runner/wrappers.js';
import { readLock, type LockHolder } from '../state/lock.js';
import { updateManaged, type ManagedCluster, type Preserved } from '../state/store.js';
import { backupFullStep, checkArchivingStep, markBackupStep } from '../steps/stanza.js';
import { ownerAlive } from '../state/journal.js';
import { managedClusters, postgresOwner, readClusters, stanzaScope } from '../host/facts.js';

export interface PitrOptions extends ExecuteFlags {
  ref: { version: string | undefined; name: string };
  mode: { kind: 'time'; target: TargetTime } | { kind: 'latest' } | { kind: 'undo' };
  json: boolean;
}

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
  postgres: { uid: number; gid: number } | undefined;
}

export async function gatherPitrFacts(ctx: Context, o: PitrOptions): Promise<PitrFacts> {
  const runner = new ReadOnlyRunner(ctx.runner);
  const [clusters, managed, lockHolder, postgres] = await Promise.all([readClusters(runner), managedClusters(ctx), readLock(ctx.fs, ctx.paths.locksDir, o.ref.name), postgresOwner(ctx.fs)]);
  const record = managed.records.find((r) => r.name === o.ref.name && (!o.ref.version || r.version === o.ref.version));
  const cluster = clusters.find((c) => c.name === o.ref.name && c.version === (record?.version ?? o.ref.version ?? c.version));
  const facts: PitrFacts = {
    ...emptySource(),
    uid: ctx.host.uid,
    now: ctx.clock.now(),
    record,
    cluster,
    lock: { holder: lockHolder, alive: lockHolder ? ownerAlive(ctx.host, lockHolder) : false },
    signalFiles: [],
    freeBytes: undefined,
    undoSource: undefined,
    postgres,
  };
  if (!record || !cluster?.dataDir || ctx.host.uid !== 0) return facts;
  const dataDir = cluster.dataDir;
  const [signals, source, free] = await Promise.all([
    Promise.all(['recovery.signal', 'standby.signal'].map(async (f) => ((await ctx.fs.exists(`${dataDir}/${f}`)) ? f : undefined))),
    gatherSource(ctx, runner, record, cluster),
    ctx.fs.freeBytes(dataDir).catch(() => undefined),
  ]);
  Object.assign(facts, source);
  facts.signalFiles = signals.filter((s): s is string => Boolean(s));
  facts.freeBytes = free;

  const last = [...record.preserved].reverse().find((p) => p.reason === 'pitr');
  if (last) {
    const holdsDataDir = await ctx.fs.exists(`${last.path}/PG_VERSION`);
    const ctl = holdsDataDir ? await runner.run(pg.pgControlData(cluster.version, last.path), { check: false }) : undefined;
    facts.undoSource = { preserved: last, holdsDataDir, timeline: ctl?.exitCode === 0 ? parseControlData(ctl.stdout).timeline : undefined };
  }
  return facts;
}

const select = (f: PitrFacts, o: PitrOptions) => selectSet(f, o.mode.kind === 'time' ? o.mode.target : undefined);

export function pitrGuards(f: PitrFacts, o: PitrOptions, minFreeMb: number): Guard[] {
  const label = `${f.record?.version ?? o.ref.version ?? '15'}/${o.ref.name}`;
  const known = Boolean(f.record && f.cluster);
  const guards: Guard[] = [
    runsAsRoot(f.uid),
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
  if (o.mode.kind === 'time') guards.push(...targetGuards(f, o.mode.target, { label, name: o.ref.name, now: f.now, online: Boolean(f.cluster!.running), record: f.record! }));
  else guards.push(hasBackupGuard(f, label));
  guards.push(backupWalArchived(f, set));
  guards.push(enoughDisk([{ path: f.cluster!.dataDir!, freeBytes: f.freeBytes === undefined ? undefined : f.freeBytes - (set?.info?.size ?? 0) }], minFreeMb));
  return guards;
}

export function planPitr(f: PitrFacts, o: PitrOptions, ctx: Pick<Context, 'config' | 'paths' | 'host'>): Plan {
  const rec = f.record;
  const version = rec?.version ?? o.ref.version ?? '15';
  const id = { version, name: o.ref.name };
  const label = pg.clusterLabel(id);
  const dataDir = f.cluster?.dataDir ?? pg.dataDirOf(id);
  const live: LiveCluster = { id, port: f.cluster?.port ?? 0, dataDir, logFile: f.cluster?.logFile };
  const scope = stanzaScope(rec?.stanza ?? o.ref.name, ctx.paths.stanzaDir);
  const systemd = ctx.host.systemd;
  const cfg = ctx.config;
  const owner = f.postgres ?? { uid: 0, gid: 0 };
  const createdAt = f.now.toISOString();
  const online = Boolean(f.cluster?.running);
  const steps: Step[] = [];
  const clustersDir = ctx.paths.clustersDir;

  if (o.mode.kind === 'undo') {
    const source = f.undoSource?.preserved;
    const aside: Preserved = { path: `${dataDir}.pre-undo-${stamp(f.now)}`, reason: 'pitr-undo', createdAt };
    if (online) steps.push(stopClusterStep(live, systemd));
    steps.push(preserveDataDirStep(o.ref.name, dataDir, aside, clustersDir));
    steps.push({
      id: 'put-back-datadir',
      title: `move ${source?.path ?? '(preserved directory)'} back to ${dataDir}`,
      effect: 'write',
      run: async (c) => {
        await c.fs.rename(source!.path, dataDir);
        await updateManaged(c.fs, clustersDir, o.ref.name, (r) => ({ ...r, preserved: r.preserved.filter((p) => p.path !== source!.path) }));
      },
      show: [`mv ${source?.path} ${dataDir}`],
    });
    // Started through a recovery that ends at the end of its own timeline and promotes: the cluster
    // lands on a new timeline above the abandoned one, so no restore can follow the abandoned one and
    // its new backups sort after the abandoned timeline's (pgBackRest 2.45's expire compares WAL
    // names across timelines and would otherwise remove this timeline's WAL).
    const oldTimeline = f.undoSource?.timeline ?? 0;
    const recovered: RecoveredState = { timeline: 0, lastReplayUs: undefined };
    steps.push(
      requestRecoveryStep(
        dataDir,
        [`restore_command = 'pgbackrest${scope.configIncludePath ? ` --config-include-path=${scope.configIncludePath}` : ''} --stanza=${scope.stanza} archive-get %f "%p"'`, "recovery_target_timeline = 'current'"],
        "replay this data directory's own timeline to its end, then promote",
        owner,
        createdAt,
      ),
    );
    steps.push(
      startClusterStep(live, systemd, cfg['recovery-timeout']),
      waitPromotedStep(live, cfg['recovery-timeout']),
      verifyRecoveredStep(live, { previousTimeline: Math.max(oldTimeline, ...(rec?.timelines.map((t) => t.timeline) ?? [])) }, recovered),
      recordTimelineStep(o.ref.name, clustersDir, recovered, oldTimeline, null),
      backupFullStep(scope, o.ref.name, 'a full backup on its new timeline'),
      markBackupStep(scope, o.ref.name, { version, port: live.port }),
      checkArchivingStep(scope, o.ref.name),
    );
    return {
      command: 'pitr --undo',
      target: label,
      locks: [o.ref.name],
      destructive: true,
      guards: [],
      steps,
      notes: [`the data directory as it is now is preserved at ${aside.path}; later restores stay on the timeline the cluster is back on`],
      failureHint: (i) => {
        const put = steps.findIndex((s) => s.id === 'put-back-datadir');
        if (i < steps.findIndex((s) => s.id === 'preserve-datadir')) return ['nothing was moved', ...(online && i > 0 ? [`start the cluster again: pg_ctlcluster ${version} ${o.ref.name} start`] : [])];
        if (i <= put) return [`the current data directory is preserved at ${aside.path}; ${source?.path} is where it was; fix the cause and run pgmam pitr ${o.ref.name} --undo again`];
        return [`the data directory of before the pitr is back in ${dataDir}; the one it replaced is preserved at ${aside.path}`];
      },
    };
  }

  const { set } = select(f, o);
  const previousTimeline = f.currentTimeline ?? 0;
  const preserved: Preserved = { path: `${dataDir}.pre-pitr-${stamp(f.now)}`, reason: 'pitr', createdAt };
  // Pinned to the cluster's timeline by number, so recovery never follows an abandoned timeline in the
  // archive ('latest'), nor depends on which timeline the backup's pg_control names ('current').
  const targetTimeline = previousTimeline;
  const restore =
    o.mode.kind === 'time'
      ? pgbr.restore(scope, { set: set?.label ?? '?', type: 'time', target: o.mode.target.text, targetTimeline })
      : pgbr.restore(scope, { set: set?.label ?? '?', type: 'default', targetTimeline });
  const recovered: RecoveredState = { timeline: 0, lastReplayUs: undefined };
  const targetIso = o.mode.kind === 'time' ? new Date(o.mode.target.epochUs / 1000).toISOString() : null;

  steps.push(...archiveHistorySteps(f, dataDir, scope));
  if (online) steps.push(switchWalStep(live, cfg['archive-wait-timeout']), stopClusterStep(live, systemd));
  steps.push(
    preserveDataDirStep(o.ref.name, dataDir, preserved, clustersDir),
    createDataDirStep(dataDir, owner),
    restoreStep(
      restore,
      o.mode.kind === 'time'
        ? `restore backup ${set?.label} and replay WAL to ${o.mode.target.text} along timeline ${previousTimeline}`
        : `restore backup ${set?.label} and replay all archived WAL of timeline ${previousTimeline}`,
    ),
    startClusterStep(live, systemd, cfg['recovery-timeout']),
    waitPromotedStep(live, cfg['recovery-timeout']),
    verifyRecoveredStep(live, { previousTimeline, targetUs: o.mode.kind === 'time' ? o.mode.target.epochUs : undefined, targetText: o.mode.kind === 'time' ? o.mode.target.text : undefined }, recovered),
    recordTimelineStep(o.ref.name, clustersDir, recovered, previousTimeline, targetIso),
    backupFullStep(scope, o.ref.name, 'a full backup so the new timeline has a base'),
    markBackupStep(scope, o.ref.name, { version, port: live.port }),
    checkArchivingStep(scope, o.ref.name),
  );
  const preserveAt = steps.findIndex((s) => s.id === 'preserve-datadir');
  const recordAt = steps.findIndex((s) => s.id === 'record-timeline');
  const again = o.mode.kind === 'time' ? `pgmam pitr ${o.ref.name} --to '${o.mode.target.text}'` : `pgmam pitr ${o.ref.name} --latest`;
  return {
    command: 'pitr',
    target: label,
    locks: [o.ref.name],
    destructive: true,
    guards: [],
    steps,
    journal: {
      rerun: `${again} --yes`,
      data: { version, dataDir, preserved, online, previousTimeline, target: targetIso } satisfies RestoreJournal,
    },
    notes: [`the current data directory will be preserved at ${preserved.path} (never deleted by pgmam); undo with: pgmam pitr ${o.ref.name} --undo`],
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

export async function runPitr(ctx: Context, o: PitrOptions): Promise<void> {
  const settled = await settleInterrupted(ctx, o.ref.name, o.mode.kind === 'undo' ? 'pitr --undo' : 'pitr', o);
  if (settled === 'dry-run') return;
  if (settled === 'finished') return ctx.io.out(`${o.ref.version ?? '15'}/${o.ref.name}: the interrupted pitr is finished (restored, promoted, backed up); run pitr again for another target\n`);
  const facts = await gatherPitrFacts(ctx, o);
  const plan = planPitr(facts, o, ctx);
  plan.guards = pitrGuards(facts, o, ctx.config['min-free-mb']);
  if ((await executePlan(ctx, plan, o)) === 'dry-run') return;
  const record = facts.record!;
  const after = await managedClusters(ctx).then((m) => m.records.find((r) => r.name === record.name));
  const newest = after?.preserved.at(-1);
  const result = {
    cluster: plan.target,
    mode: o.mode.kind,
    target: o.mode.kind === 'time' ? o.mode.target.text : null,
    set: o.mode.kind === 'undo' ? null : (select(facts, o).set?.label ?? null),
    timeline: after?.timelines.at(-1)?.timeline ?? null,
    preserved: newest?.path ?? null,
    undo: o.mode.kind === 'undo' ? null : `pgmam pitr ${record.name} --undo`,
  };
  if (o.json) ctx.io.out(`${JSON.stringify(result)}\n`);
  else if (o.mode.kind === 'undo') ctx.io.out(`${plan.target} is back on its data directory of before the last pitr; the one it replaced is preserved at ${result.preserved}\n`);
  else
    ctx.io.out(
      `${plan.target} restored ${o.mode.kind === 'time' ? `to ${result.target}` : 'to the end of its archive'} from backup ${result.set}, now on timeline ${result.timeline}, with a new full backup\n` +
        `previous data directory preserved at ${result.preserved}; undo with: ${result.undo}\n`,
    );
}

export function pitrMode(o: { to?: string; latest?: boolean; undo?: boolean }): PitrOptions['mode'] {
  const given = [o.to !== undefined, Boolean(o.latest), Boolean(o.undo)].filter(Boolean).length;
  if (given !== 1) throw new UsageError('pitr needs exactly one of --to "<timestamp with offset>", --latest or --undo');
  if (o.undo) return { kind: 'undo' };
  if (o.latest) return { kind: 'latest' };
  return { kind: 'time', target: parseTarget(o.to!) };
}
