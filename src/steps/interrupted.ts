// Converging after an interruption: when a command finds the journal of its own earlier run on the
// same cluster (killed, or failed without being undone), it first finishes that run or rolls it back
// — from what the journal recorded, never by guessing from leftovers — and then does what was asked.
// Rolled back: a half-made cluster (initcluster, branch create), a restore that has not promoted
// (pitr, branch sync: the preserved data directory goes back), a copy that did not finish (resetwal).
// Finished: a pitr whose restore already promoted (writes may have reached it), a resetwal past its
// pg_resetwal. Nothing the user had is deleted: only what the interrupted run itself made.
import type { Context } from '../context.js';
import { RefusedError } from '../errors.js';
import { parseControlData } from '../pg/controldata.js';
import * as pg from '../pg/commands.js';
import * as pgbr from '../pgbackrest/commands.js';
import { executePlan, type ExecuteFlags } from '../plan/executor.js';
import type { Plan, Step } from '../plan/types.js';
import { startClusterStep, stopClusterStep, waitPromotedStep, recordTimelineStep, type LiveCluster } from '../restore/steps.js';
import { ReadOnlyRunner } from '../runner/wrappers.js';
import { describeJournal, ownerAlive, readJournal, removeJournal, stepName, type Journal } from '../state/journal.js';
import { readRecord, recordPath, updateManaged, type Preserved } from '../state/store.js';
import { readClusters, stanzaScope } from '../host/facts.js';
import { backupFullStep, checkArchivingStep, markBackupStep } from './stanza.js';

/** What a new cluster's plan records, so a re-run can remove what an interrupted run made. */
export interface NewClusterJournal {
  version: string;
  dataDir: string;
  confDir: string;
  stanzaFile: string;
  repoPath: string;
}

/** What a restore's plan records (pitr, branch sync): the preserved directory to put back, or the timeline it left. */
export interface RestoreJournal {
  version: string;
  dataDir: string;
  preserved: Preserved;
  /** The cluster ran before: started again after a rollback (pitr). */
  online: boolean;
  /** The timeline before the restore: a higher one in pg_control means the restore promoted. */
  previousTimeline: number;
  /** pitr's target (ISO) for the timeline record. */
  target: string | null;
}

export interface ResetwalJournal {
  version: string;
  dataDir: string;
  copy: Preserved;
}

export type Settled = 'none' | 'rolled-back' | 'finished' | 'dry-run';

/**
 * Settles an interrupted run of `command` on `name` before the command plans anew. Refuses when the
 * interrupted run is another command's (finish that first) or its process or children still run.
 */
export async function settleInterrupted(ctx: Context, name: string, command: string, flags: ExecuteFlags): Promise<Settled> {
  const j = await readJournal(ctx.fs, ctx.paths.stateDir, name);
  if (!j) return 'none';
  if (ownerAlive(ctx.host, j))
    throw new RefusedError(command, [
      { id: 'cluster-is-not-locked', reason: `${j.target} is being changed by pgmam ${j.command} (pid ${j.pid}${j.groups.length ? `, child process groups ${j.groups.join(', ')}` : ''}), at ${stepName(j)}`, hint: 'wait for it to finish' },
    ]);
  if (j.command !== command)
    throw new RefusedError(command, [{ id: 'no-interrupted-operation', reason: `${j.target}: ${describeJournal(j)}`, hint: `finish or undo that first${j.rerun ? `: ${j.rerun}` : ''}` }]);
  const plan = await recoveryPlan(ctx, j);
  ctx.log.warn({ event: 'recover', command: j.command, step: stepName(j), way: plan.way }, `${j.target}: ${describeJournal(j)}; ${plan.way === 'finished' ? 'finishing it' : 'rolling it back first'}`);
  if ((await executePlan(ctx, plan.plan, flags)) === 'dry-run') {
    ctx.io.out(plan.way === 'finished' ? 'then the interrupted run is complete\n' : `then ${command} runs again as asked (planned after the rollback)\n`);
    return 'dry-run';
  }
  return plan.way;
}

async function recoveryPlan(ctx: Context, j: Journal): Promise<{ way: 'rolled-back' | 'finished'; plan: Plan }> {
  const clusters = await readClusters(new ReadOnlyRunner(ctx.runner));
  const version = String(j.data['version'] ?? j.target.split('/')[0] ?? '15');
  const cluster = clusters.find((c) => c.name === j.name && c.version === version);
  const id = { version, name: j.name };
  const plan = (way: 'rolled-back' | 'finished', steps: Step[]): { way: typeof way; plan: Plan } => ({
    way,
    plan: {
      command: `${j.command} (${way === 'finished' ? 'finishing' : 'rolling back'} the interrupted run)`,
      target: j.target,
      locks: [j.name],
      // Removes only what the interrupted run made, but that may include a whole half-made cluster.
      destructive: way === 'rolled-back',
      guards: [],
      steps: [...steps, closeJournalStep(j)],
      journal: false,
      notes: [`${j.target}: ${describeJournal(j)} (started ${j.startedAt})`],
    },
  });

  if (j.command === 'initcluster' || j.command === 'branch create') {
    const d = j.data as unknown as NewClusterJournal;
    return plan('rolled-back', rollbackNewCluster(ctx, j, d, Boolean(cluster)));
  }
  if (j.command === 'pitr' || j.command === 'branch sync') {
    const d = j.data as unknown as RestoreJournal;
    const live: LiveCluster = { id, port: cluster?.port ?? 0, dataDir: d.dataDir, logFile: cluster?.logFile };
    const promoted = j.command === 'pitr' && (await timelineOf(ctx, version, d.dataDir)) > d.previousTimeline;
    if (promoted) return plan('finished', finishPitr(ctx, j, d, live, Boolean(cluster?.running)));
    return plan('rolled-back', await rollbackRestore(ctx, j, d, live, Boolean(cluster?.running)));
  }
  if (j.command === 'resetwal') {
    const d = j.data as unknown as ResetwalJournal;
    const live: LiveCluster = { id, port: cluster?.port ?? 0, dataDir: d.dataDir, logFile: cluster?.logFile };
    if (j.at <= j.steps.indexOf('copy-datadir')) return plan('rolled-back', rollbackResetwalCopy(ctx, j.name, d));
    return plan('finished', finishResetwal(ctx, j, d, live, Boolean(cluster?.running)));
  }
  throw new RefusedError(j.command, [
    { id: 'interrupted-run-is-recoverable', reason: `${j.target}: ${describeJournal(j)}: pgmam cannot finish or roll back ${j.command} by itself`, hint: `look at pgmam list and the log; remove ${ctx.paths.stateDir}/journal/${j.name}.json once the cluster is as it should be` },
  ]);
}

async function timelineOf(ctx: Context, version: string, dataDir: string): Promise<number> {
  const r = await new ReadOnlyRunner(ctx.runner).run(pg.pgControlData(version, dataDir), { check: false });
  return r.exitCode === 0 ? (parseControlData(r.stdout).timeline ?? 0) : 0;
}

const closeJournalStep = (j: Journal): Step => ({
  id: 'close-journal',
  title: `mark the interrupted ${j.command} as settled`,
  effect: 'write',
  run: (c) => removeJournal(c.fs, c.paths.stateDir, j.name),
  show: [`rm ${'<state-dir>'}/journal/${j.name}.json`],
});

/** Remove the cluster, stanza, stanza file and record an interrupted initcluster or branch create made. */
function rollbackNewCluster(ctx: Context, j: Journal, d: NewClusterJournal, exists: boolean): Step[] {
  const id = { version: d.version, name: j.name };
  const scope = stanzaScope(j.name, ctx.paths.stanzaDir);
  const record = recordPath(ctx.paths.clustersDir, j.name);
  return [
    ...(exists ? [{ id: 'drop-cluster', title: `drop the half-made cluster ${j.target}`, effect: 'destroy' as const, run: pg.dropCluster(id) }] : []),
    {
      id: 'remove-cluster-files',
      title: `remove ${d.confDir} and ${d.dataDir}`,
      effect: 'destroy',
      run: async (c) => {
        await c.fs.rm(d.confDir, { recursive: true });
        await c.fs.rm(d.dataDir, { recursive: true });
      },
      show: [`rm -rf ${d.confDir} ${d.dataDir}`],
    },
    {
      // The stanza carries the new cluster's own name: the guards refused the run if it existed before.
      id: 'delete-stanza',
      title: `delete stanza ${j.name} from ${d.repoPath}, if the interrupted run created it`,
      effect: 'destroy',
      run: async (c) => {
        const made = (await c.fs.exists(`${d.repoPath}/backup/${j.name}`)) || (await c.fs.exists(`${d.repoPath}/archive/${j.name}`));
        if (!made) return;
        if (!(await c.fs.exists(d.stanzaFile))) throw new Error(`stanza ${j.name} is in ${d.repoPath} but ${d.stanzaFile} is gone: delete it by hand`);
        await c.runner.run(pgbr.stop(scope), { check: false });
        await c.runner.run(pgbr.stanzaDelete(scope, true));
        await c.runner.run(pgbr.start(scope), { check: false });
      },
      show: ['stop', 'stanza-delete --force', 'start'].map((a) => `$ runuser -u postgres -- pgbackrest --stanza=${j.name} ${a}  (only if ${d.repoPath} holds it)`),
    },
    {
      id: 'remove-stanza-file',
      title: `remove ${d.stanzaFile} and ${record}`,
      effect: 'destroy',
      run: async (c) => {
        await c.fs.rm(d.stanzaFile);
        await c.fs.rm(record);
      },
    },
  ];
}

/** Put the preserved data directory back in place of a restore that did not promote. */
async function rollbackRestore(ctx: Context, j: Journal, d: RestoreJournal, live: LiveCluster, running: boolean): Promise<Step[]> {
  const moved = await ctx.fs.exists(d.preserved.path);
  const steps: Step[] = [];
  if (running) steps.push(stopClusterStep(live, ctx.host.systemd));
  if (moved)
    steps.push({
      id: 'put-back-datadir',
      title: `remove the unfinished restore in ${d.dataDir} and move ${d.preserved.path} back`,
      effect: 'destroy',
      run: async (c) => {
        await c.fs.rm(d.dataDir, { recursive: true });
        await c.fs.rename(d.preserved.path, d.dataDir);
        await updateManaged(c.fs, c.paths.clustersDir, j.name, (r) => ({ ...r, preserved: r.preserved.filter((p) => p.path !== d.preserved.path) }));
      },
      show: [`rm -rf ${d.dataDir}`, `mv ${d.preserved.path} ${d.dataDir}`],
    });
  // pitr restarts a cluster that ran, so the re-run plans from the state the user had.
  if (d.online && j.command === 'pitr') steps.push({ ...startClusterStep(live, ctx.host.systemd, ctx.config['recovery-timeout']), title: `start ${j.target} again on its own data directory` });
  return steps;
}

/** A pitr whose restore promoted: record the timeline, take the full backup, check. */
function finishPitr(ctx: Context, j: Journal, d: RestoreJournal, live: LiveCluster, running: boolean): Step[] {
  const scope = stanzaScope(j.name, ctx.paths.stanzaDir);
  const recovered = { timeline: 0, lastReplayUs: undefined };
  const record = recordTimelineStep(j.name, ctx.paths.clustersDir, recovered, d.previousTimeline, d.target);
  return [
    ...(running ? [] : [startClusterStep(live, ctx.host.systemd, ctx.config['recovery-timeout'])]),
    waitPromotedStep(live, ctx.config['recovery-timeout']),
    {
      ...record,
      title: `record the preserved directory and the new timeline of ${j.name}, unless recorded`,
      run: async (c) => {
        recovered.timeline = await timelineOf(c, d.version, d.dataDir);
        const rec = await readRecord(c.fs, c.paths.clustersDir, j.name);
        if (rec && !rec.preserved.some((p) => p.path === d.preserved.path)) await updateManaged(c.fs, c.paths.clustersDir, j.name, (r) => ({ ...r, preserved: [...r.preserved, d.preserved] }));
        if (rec && !rec.timelines.some((t) => t.timeline === recovered.timeline)) await (record.run as (c: Context) => Promise<void>)(c);
      },
    },
    backupFullStep(scope, j.name, 'a full backup so the new timeline has a base'),
    markBackupStep(scope, j.name, { version: d.version, port: live.port }),
    checkArchivingStep(scope, j.name),
  ];
}

function rollbackResetwalCopy(ctx: Context, name: string, d: ResetwalJournal): Step[] {
  return [
    {
      id: 'remove-unfinished-copy',
      title: `remove the unfinished copy ${d.copy.path} (${d.dataDir} itself was not touched)`,
      effect: 'destroy',
      run: async (c) => {
        await c.fs.rm(d.copy.path, { recursive: true });
        await updateManaged(c.fs, ctx.paths.clustersDir, name, (r) => ({ ...r, preserved: r.preserved.filter((p) => p.path !== d.copy.path) }));
      },
      show: [`rm -rf ${d.copy.path}`],
    },
  ];
}

function finishResetwal(ctx: Context, j: Journal, d: ResetwalJournal, live: LiveCluster, running: boolean): Step[] {
  const scope = stanzaScope(j.name, ctx.paths.stanzaDir);
  const atReset = stepName(j) === 'reset-wal';
  return [
    {
      id: 'record-copy',
      title: `record ${d.copy.path} as preserved, unless recorded`,
      effect: 'write',
      run: async (c) => {
        const rec = await readRecord(c.fs, c.paths.clustersDir, j.name);
        if (rec && !rec.preserved.some((p) => p.path === d.copy.path)) await updateManaged(c.fs, c.paths.clustersDir, j.name, (r) => ({ ...r, preserved: [...r.preserved, d.copy] }));
      },
    },
    // Killed during pg_resetwal: run it again (forced: its first run may have left pg_control half-updated).
    ...(atReset && !running ? [{ id: 'reset-wal', title: `run pg_resetwal -f on ${j.target} again`, effect: 'destroy' as const, run: pg.resetWal(d.version, d.dataDir, { dryRun: false, force: true }) }] : []),
    ...(running ? [] : [startClusterStep(live, ctx.host.systemd, ctx.config['recovery-timeout'])]),
    waitPromotedStep(live, ctx.config['recovery-timeout']),
    backupFullStep(scope, j.name, 'a new full backup (the WAL history was reset)'),
    markBackupStep(scope, j.name, { version: d.version, port: live.port }),
    checkArchivingStep(scope, j.name),
  ];
}
