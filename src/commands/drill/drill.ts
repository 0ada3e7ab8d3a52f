// `pgmam drill <app>…|--all [--repo NAME] [--keep-on-error]`: a restore drill per app — its newest
// backup and its archive to the end restored into a scratch cluster (restore/drill.ts), checked
// (promoted, pg_amcheck, the app's probe), RTO and RPO measured into the app's record, the scratch
// dropped. The app is never stopped or written to. A failed drill removes its scratch cluster (kept
// with --keep-on-error) and exits 7 naming the step.
import { humanTime } from '../../plan/render.js';
import { z } from 'zod';
import type { Context } from '../../context.js';
import { runsAsRoot, enoughDisk } from '../../guards/host.js';
import { clusterIsNotLocked, portIsFree } from '../../guards/cluster.js';
import { replicaIsRefused } from '../../guards/replica.js';
import { choosePort, dataRootTemplate, listeningPorts, lockFacts, managedClusters, postgresOwner, readClusters } from '../../host/facts.js';
import { expandDataRoot } from '../../pg/data-root.js';
import * as pg from '../../pg/commands.js';
import { flag, type CliBatch } from '../../plan/cli-spec.js';
import { batchTargets, runBatch, runFlagsSchema, withLocksOf, type BatchOutcome, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, required, type Guard, type Step } from '../../plan/types.js';
import { nameSchema, namesArg, optionalNameArg } from '../../names.js';
import { gatherParent, noParent, parentGuards, restoreFromParent, type ParentFacts } from '../../restore/parent.js';
import { restoreEnv, restoreSequence, type RestoreSource } from '../../restore/sequence.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { stanzaScope } from '../../pgbackrest/commands.js';
import { selectSet } from '../../restore/source.js';
import { archiveMax } from '../../pgbackrest/info.js';
import type { LiveCluster } from '../../restore/steps.js';
import {
  amcheckStep,
  configureScratchStep,
  createScratchStep,
  diagnosedRestore,
  dropScratchStep,
  newMeasures,
  noteAppPositionStep,
  probeStep,
  recordDrillStep,
  renderDrillConf,
  scratchName,
  timed,
  type DrillMeasures,
} from '../../restore/drill.js';
import type { Journal } from '../../state/journal.js';
import { closeToUsersStep } from '../../steps/hand-over.js';
import { readRecord, updateManaged, type DrillResult, type ManagedCluster } from '../../state/store.js';
import { renderArgv } from '../../runner/types.js';
import { UsageError } from '../../errors.js';

export const drillTargetOptionsSchema = runFlagsSchema.extend({ app: nameSchema, repo: z.string().optional() });
export type DrillTargetOptions = z.infer<typeof drillTargetOptionsSchema>;

export interface DrillFacts {
  uid: number;
  now: Date;
  app: ParentFacts;
  scratch: {
    name: string;
    dataDir: string;
    takenBy: string[];
    port: number | undefined;
    portConfiguredBy: string[];
    portHeldBy: string | undefined;
    disk: { path: string; freeBytes: number | undefined };
    lock: { holder: Awaited<ReturnType<typeof lockFacts>>['holder']; alive: boolean };
  };
  amcheck: boolean;
  probe: { path: string; text: string } | undefined;
  postgres: { uid: number; gid: number } | undefined;
  /** Filled in by the steps as they run. */
  measures: DrillMeasures;
}

export async function gatherDrill(ctx: Context, o: DrillTargetOptions): Promise<DrillFacts> {
  const runner = ctx.runner;
  const name = scratchName(o.app);
  const [managed, clusters, postgres, listening, dataRoot, lock] = await Promise.all([managedClusters(ctx), readClusters(runner), postgresOwner(ctx.fs), listeningPorts(ctx.fs), dataRootTemplate(ctx), lockFacts(ctx, name)]);
  const app = ctx.host.uid === 0 ? await gatherParent(ctx, runner, o.app, managed.records, clusters, { repo: o.repo }) : noParent();
  const version = app.record?.version ?? '15';
  // Beside the app's data directory: the same filesystem its restores would use.
  const dataDir = app.cluster?.dataDir ? app.cluster.dataDir.replace(/[^/]+$/, name) : expandDataRoot(dataRoot, { version, name });
  const takenBy: string[] = [];
  for (const c of clusters) if (c.name === name) takenBy.push(`cluster ${c.version}/${c.name} exists`);
  for (const p of [pg.confDirOf({ version, name }), dataDir]) if (!takenBy.length && (await ctx.fs.exists(p))) takenBy.push(`${p} exists`);
  if (managed.records.some((r) => r.name === name)) takenBy.push(`pgmam manages a cluster named ${name}`);
  const port = await choosePort(ctx, clusters, listening, undefined);
  const parentDir = dataDir.replace(/\/[^/]+$/, '') || '/';
  const probePath = `${ctx.config['drill-probe-dir']}/${o.app}.sql`;
  const probeText = await ctx.fs.readText(probePath).catch(() => undefined);
  return {
    uid: ctx.host.uid,
    now: ctx.clock.now(),
    app,
    scratch: { name, dataDir, takenBy, ...port, disk: { path: parentDir, freeBytes: await ctx.fs.freeBytes(parentDir).catch(() => undefined) }, lock },
    amcheck: await ctx.fs.exists(pg.pgBin(version, 'pg_amcheck')),
    probe: probeText === undefined ? undefined : { path: probePath, text: probeText },
    postgres,
    measures: newMeasures(),
  };
}

export function drillGuards(f: DrillFacts, o: DrillTargetOptions, env: Pick<PlanEnv, 'config'>): Guard[] {
  const label = f.app.record?.cluster ?? o.app;
  const set = selectSet(f.app, undefined).set;
  const s = f.scratch;
  const version = f.app.record?.version ?? '15';
  return [
    runsAsRoot(f.uid, 'run a restore drill'),
    replicaIsRefused(f.app.record, 'an app: drill its app'),
    ...parentGuards(f.app, label, undefined, f.now),
    {
      id: 'scratch-name-is-free',
      check: () =>
        s.takenBy.length ? fail(`the drill's scratch cluster ${s.name} cannot be made: ${s.takenBy.join('; ')}`, `pgmam drill restores into ${s.name} and drops it after; rename or remove what holds that name`) : pass,
    },
    portIsFree({ port: s.port, configuredBy: s.portConfiguredBy, heldBy: s.portHeldBy, range: [env.config['port-min'], env.config['port-max']], explicit: false }),
    enoughDisk([{ path: s.disk.path, freeBytes: s.disk.freeBytes === undefined ? undefined : s.disk.freeBytes - (set?.info?.size ?? 0) }], env.config['min-free-mb']),
    clusterIsNotLocked(s.name, s.lock.holder, s.lock.alive),
    { id: 'pg-amcheck-is-installed', check: () => (f.amcheck ? pass : fail(`${pg.pgBin(version, 'pg_amcheck')} is missing`, `apt-get install postgresql-client-${version}`)) },
  ];
}

export function planDrill(f: DrillFacts, o: DrillTargetOptions, env: PlanEnv): PlanBody {
  const rec = required(f.app.record, `the pgmam record of ${o.app}`);
  const cluster = required(f.app.cluster, `the cluster of ${o.app}`);
  const id = { version: rec.version, name: f.scratch.name };
  const port = required(f.scratch.port, 'a free port');
  const owner = f.postgres ?? { uid: 0, gid: 0 };
  const dataDir = f.scratch.dataDir;
  const live: LiveCluster = { id, port, dataDir, logFile: `/var/log/postgresql/postgresql-${id.version}-${id.name}.log` };
  const m = f.measures;
  const set = selectSet(f.app, undefined).set;
  const from = f.app.repo.index === 1 ? 'the local repository' : `repository ${f.app.repo.name}`;
  const source: RestoreSource = {
    kind: 'stanza',
    facts: f.app,
    dataDir: cluster.dataDir ?? '',
    scope: stanzaScope(rec.stanza, env.paths.stanzaDir),
    ...restoreFromParent(f.app, dataDir, undefined, env.paths.stanzaDir),
    what: `restore ${rec.cluster}'s newest backup ${set?.label ?? '?'} into ${dataDir} and replay its whole archive, archiving off, from ${from}: ${f.app.repo.why}`,
    // No live cluster: no WAL switch, nothing written to the app.
    live: undefined,
  };
  const seq = restoreSequence({
    source,
    into: {
      kind: 'new',
      make: [createScratchStep(id, port, dataDir), closeToUsersStep(id, env.paths.stateDir, env.host.systemd), configureScratchStep(id, renderDrillConf(rec.cluster, f.app.control?.recoveryMinimums ?? {}), owner)],
    },
    live,
    target: { previousTimeline: f.app.currentTimeline ?? 0 },
    // Only archive_mode = off counts: an archive_command the app set by ALTER SYSTEM comes back with its data, and never runs.
    isolation: {},
    parentArchive: f.app.archiveDir ? { dir: f.app.archiveDir, before: f.app.archiveBefore } : undefined,
    ...restoreEnv(env, owner),
  });
  const at = f.now.toISOString();
  const repo = f.app.repo.name;
  const steps: Step[] = [
    noteAppPositionStep({ id: { version: rec.version, name: rec.name }, port: cluster.port, dataDir: cluster.dataDir ?? '', running: cluster.running, timeline: f.app.currentTimeline ?? 1, archivedWal: f.app.stanza ? archiveMax(f.app.stanza)?.wal : undefined, segmentBytes: f.app.control?.walSegmentBytes ?? 16 * 1024 * 1024 }, m),
    ...seq.steps.map((s) =>
      s.id === 'restore-backup'
        ? timed(diagnosedRestore(s, pgbr.verify(stanzaScope(rec.stanza, env.paths.stanzaDir), set?.label ?? '?', f.app.repo.index)), { began: (ms) => (m.restoreBeganMs = ms) })
        : s.id === 'wait-promoted'
          ? timed(s, { ended: (ms) => (m.promotedMs = ms) })
          : s,
    ),
    amcheckStep(live, m),
    ...(f.probe ? [probeStep(live, f.probe, m)] : []),
    recordDrillStep(rec.name, live, m, seq.recovered, { at, backup: set?.label ?? null, repo }),
    dropScratchStep(id, dataDir),
  ];
  return {
    target: pg.clusterLabel(id),
    steps,
    journal: { rerun: renderArgv(['pgmam', 'drill', o.app, ...(o.repo ? ['--repo', o.repo] : [])]), data: { app: rec.name, version: id.version, dataDir, sourceSystemId: f.app.control?.systemId } satisfies DrillJournal },
    notes: [
      `a restore drill of ${rec.cluster}: its backup ${set?.label ?? '?'} and its archive to the end, into the scratch cluster ${pg.clusterLabel(id)} (port ${port}, closed to users, archiving off, no stanza), which is dropped at the end`,
      `${rec.cluster} is not stopped or written to; RTO: restore, recovery and start; RPO: how far the restored state lags ${rec.cluster}'s position now`,
      ...(f.probe ? [] : [`no probe: ${env.config['drill-probe-dir']}/${rec.name}.sql does not exist (optional: SQL whose result must not be empty)`]),
    ],
  };
}

export const drillJournalSchema = z.object({ app: z.string(), version: z.string(), dataDir: z.string(), systemId: z.string().optional(), sourceSystemId: z.string().optional() });
export type DrillJournal = z.infer<typeof drillJournalSchema>;

/** The scratch cluster was never open to users: a killed drill's is dropped; if it had recorded its result, that was the drill. */
export async function recoverDrill(_ctx: Context, j: Journal, d: DrillJournal): Promise<Recovery> {
  const id = { version: d.version, name: j.name };
  const recorded = j.at > j.steps.indexOf('record-drill') && j.steps.includes('record-drill');
  const steps = [dropScratchStep(id, d.dataDir)];
  return recorded ? { way: 'finished', steps, finished: `the interrupted drill of ${d.app} had recorded its result; its scratch cluster ${j.target} is dropped\n` } : { way: 'rolled-back', steps };
}

export const drillTargetCommand: CommandModule<DrillTargetOptions, DrillFacts, DrillJournal> = {
  spec: {
    name: 'drill',
    summary: 'restore drill of one app',
    options: drillTargetOptionsSchema,
    examples: ['pgmam drill app1'],
    target: (o) => scratchName(o.app),
    // The scratch cluster (its journal) and the app: no pitr, backup or drop of it meanwhile.
    locks: (o) => [scratchName(o.app), o.app],
    destructive: false,
    journal: drillJournalSchema,
  },
  gather: gatherDrill,
  guards: drillGuards,
  plan: planDrill,
  recover: recoverDrill,
  report: async () => undefined,
};

export const drillOptionsSchema = runFlagsSchema.extend({ names: z.array(z.string()), all: z.boolean(), repo: z.string().optional() });
export type DrillOptions = z.infer<typeof drillOptionsSchema>;

/** One app's line in the report and in --json. */
export interface DrillOutcome {
  cluster: string;
  app: string;
  result: 'passed' | 'failed' | 'refused';
  drill: DrillResult | null;
  reason: string | null;
}

export async function runDrill(ctx: Context, o: DrillOptions): Promise<void> {
  const { names, managed } = await batchTargets(ctx, 'drill', o, 'run restore drills');
  // --all: every app (branches are copies of one; replicas share its stanza).
  const apps = o.all ? names.filter((n) => managed.find((r) => r.name === n)?.role === 'app') : names;
  const runs = apps.map((app) => ({ app, ...(o.repo ? { repo: o.repo } : {}), json: o.json, dryRun: o.dryRun, yes: true, keepOnError: o.keepOnError }));
  const startedAt = ctx.clock.now().toISOString();
  await runBatch(ctx, drillTargetCommand, runs, {
    concurrency: 1,
    failedIsFinding: true,
    report: async (batch) => {
      if (o.dryRun) return;
      const outcomes = await Promise.all(batch.map((b) => outcomeOf(ctx, b, managed, startedAt)));
      for (const b of batch) if (b.result !== 'done') for (const l of b.lines) ctx.io.err(`${l}\n`);
      ctx.io.out(o.json ? `${JSON.stringify(outcomes, null, 2)}\n` : renderDrills(outcomes));
    },
  });
}

/** A failed drill is recorded too (ok false, the step and why), under the app's lock; a refused one changed nothing and is not. */
async function outcomeOf(ctx: Context, b: BatchOutcome<DrillTargetOptions, DrillFacts>, managed: ManagedCluster[], at: string): Promise<DrillOutcome> {
  const app = b.options.app;
  const cluster = managed.find((r) => r.name === app)?.cluster ?? app;
  // A re-run that only finished a killed drill (its result recorded before the kill) reports that result.
  if (b.result === 'done') return { cluster, app, result: 'passed', drill: b.run?.facts.measures.result ?? (await readRecord(ctx.fs, ctx.paths.clustersDir, app).catch(() => undefined))?.drill?.last ?? null, reason: null };
  if (b.result === 'refused') return { cluster, app, result: 'refused', drill: null, reason: b.lines.filter((l) => !l.startsWith('  hint')).map((l) => l.replace(/^pgmam: [^:]*refused: /, '')).join('; ') || 'refused' };
  const failure = b.failure ?? { step: '?', reason: b.lines.join(' ') };
  const r: DrillResult = { at, ok: false, rtoSeconds: null, rpoSeconds: null, rpoBytes: null, lostTransactions: null, lastReplayedAt: null, backup: null, repo: b.options.repo ?? null, failedStep: failure.step, error: failure.reason };
  await withLocksOf(ctx, 'drill', [app], () => updateManaged(ctx.fs, ctx.paths.clustersDir, app, (rec) => ({ ...rec, drill: { last: r, lastOk: rec.drill?.lastOk ?? null } })), ctx.config['lock-wait']);
  return { cluster, app, result: 'failed', drill: r, reason: `at ${failure.step}: ${failure.reason}` };
}

const secs = (s: number | null) => (s === null ? '?' : `${s} s`);
const shortTime = humanTime;

export function renderDrills(outcomes: DrillOutcome[]): string {
  const lines = outcomes.map((x) => {
    if (x.result === 'refused') return `${x.cluster}: drill refused: ${x.reason}`;
    if (x.result === 'failed') return `${x.cluster}: drill FAILED ${x.reason}`;
    const d = x.drill;
    if (!d) return `${x.cluster}: drill passed`;
    const behind = d.rpoBytes === 0 ? 'nothing behind' : `${d.rpoBytes ?? '?'} bytes of WAL behind, ${d.lostTransactions ?? '?'} transaction(s) not restored`;
    return `${x.cluster}: drill passed: RTO ${secs(d.rtoSeconds)}, RPO ${secs(d.rpoSeconds)} (${behind}; last restored transaction ${d.lastReplayedAt ? shortTime(d.lastReplayedAt) : 'none since the backup'}), backup ${d.backup ?? '?'} from repository ${d.repo ?? '?'}`;
  });
  const n = (r: DrillOutcome['result']) => outcomes.filter((x) => x.result === r).length;
  return `${[...lines, `drill: ${n('passed')} passed, ${n('failed')} failed, ${n('refused')} refused`].join('\n')}\n`;
}

export const drillBatch: CliBatch<DrillOptions> = {
  name: 'drill',
  summary: "restore drills: each app's newest backup and archive restored into a scratch cluster, checked (pg_amcheck, its probe), RTO and RPO recorded, the scratch dropped",
  examples: ['pgmam drill app1', 'pgmam drill --all                    # from the schedule: weekly', 'pgmam drill app1 --repo offsite --keep-on-error'],
  cli: {
    args: [{ syntax: '[apps...]', key: 'names', help: 'apps to drill (or --all)' }],
    flags: [
      { flags: '--all', help: 'every app pgmam manages (not branches or replicas)' },
      { flags: '--repo <name>', help: "restore from this repository ('local' or an attached one; default: the local one when it covers the archive's end, else one that does)" },
    ],
    input: z
      .object({ names: namesArg('app name'), all: flag, repo: optionalNameArg('repository name') })
      .transform((x) => {
        if (!x.names.length && !x.all) throw new UsageError('drill needs app names or --all');
        if (x.names.length && x.all) throw new UsageError('drill takes app names or --all, not both');
        return x;
      }),
    keepOnError: true,
  },
  run: runDrill,
};
