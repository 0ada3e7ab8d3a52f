// Settling interrupted runs of the commands not yet moved onto runCommand (initcluster, resetwal);
// pitr and branch recover their own runs (their modules' `recover`). When a command finds the journal
// of its own earlier run on the same cluster, it first finishes that run or rolls it back — from what
// the journal recorded — and then does what was asked. Rolled back: a half-made cluster (initcluster),
// a copy that did not finish (resetwal). Finished: a resetwal past its pg_resetwal.
import type { Context } from '../context.js';
import { RefusedError } from '../errors.js';
import * as pg from '../pg/commands.js';
import { recoveryPlan } from '../plan/command.js';
import { executePlan, type ExecuteFlags } from '../plan/executor.js';
import type { Plan, Step } from '../plan/types.js';
import { startClusterStep, waitPromotedStep, type LiveCluster } from '../restore/steps.js';
import { ReadOnlyRunner } from '../runner/wrappers.js';
import { describeJournal, ownerAlive, readJournal, stepName, type Journal } from '../state/journal.js';
import { readRecord, updateManaged, type Preserved } from '../state/store.js';
import { readClusters, stanzaScope } from '../host/facts.js';
import { newClusterJournalSchema, rollbackNewClusterSteps } from './new-cluster.js';
import { backupFullStep, checkArchivingStep, markBackupStep } from './stanza.js';

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
  const plan = await legacyRecoveryPlan(ctx, j);
  ctx.log.warn({ event: 'recover', command: j.command, step: stepName(j), way: plan.way }, `${j.target}: ${describeJournal(j)}; ${plan.way === 'finished' ? 'finishing it' : 'rolling it back first'}`);
  if ((await executePlan(ctx, plan.plan, flags)) === 'dry-run') {
    ctx.io.out(plan.way === 'finished' ? 'then the interrupted run is complete\n' : `then ${command} runs again as asked (planned after the rollback)\n`);
    return 'dry-run';
  }
  return plan.way;
}

async function legacyRecoveryPlan(ctx: Context, j: Journal): Promise<{ way: 'rolled-back' | 'finished'; plan: Plan }> {
  const clusters = await readClusters(new ReadOnlyRunner(ctx.runner));
  const version = String(j.data['version'] ?? j.target.split('/')[0] ?? '15');
  const cluster = clusters.find((c) => c.name === j.name && c.version === version);
  const id = { version, name: j.name };
  const plan = (way: 'rolled-back' | 'finished', steps: Step[]): { way: typeof way; plan: Plan } => ({ way, plan: recoveryPlan(j, { way, steps }) });

  if (j.command === 'initcluster') {
    const d = newClusterJournalSchema.parse(j.data);
    return plan('rolled-back', rollbackNewClusterSteps(ctx, j, d, Boolean(cluster)));
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
