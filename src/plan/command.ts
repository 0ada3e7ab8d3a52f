// The one shape of a command, and the one runner that drives every command of that shape:
// settle an interrupted run (through the module's own recover) → gather (read-only) → guards → plan
// → --dry-run → confirm → lock → gather and guards again under the lock → execute → report.
import { journalMismatch } from '../host/journal-identity.js';
import { notManaged } from '../guards/cluster.js';
import type { CliSpec } from './cli-spec.js';
import { z } from 'zod';
import type { Context } from '../context.js';
import { ExitCode, PgmamError, RefusedError, StepFailedError } from '../errors.js';
import { runsAsRoot } from '../guards/host.js';
import { readOnlyFs } from '../host-fs.js';
import { ReadOnlyRunner } from '../runner/wrappers.js';
import { describeJournal, ownerAlive, readJournal, removeJournal, stepName, type Journal } from '../state/journal.js';
import { checkGuards, confirmPlan, executeSteps, withLocks, type ExecuteFlags } from './executor.js';

/** `fn` holding these clusters' locks (waiting up to `waitSeconds` for another pgmam's): for a batch's own bookkeeping after its runs. */
export const withLocksOf = <T>(ctx: Context, command: string, locks: string[], fn: () => Promise<T>, waitSeconds = 0) => withLocks(ctx, { command, locks }, fn, waitSeconds);
import { renderPlan } from './render.js';
import { fail, type Guard, type Plan, type Step } from './types.js';
import { managedClusters } from '../host/facts.js';
import { currentPrimary, readRecord, type ManagedCluster } from '../state/store.js';

export type RunFlags = ExecuteFlags;

/** The options every command takes from the global flags; a command's own schema extends these. */
export const runFlagsSchema = z.object({ json: z.boolean(), dryRun: z.boolean(), yes: z.boolean(), keepOnError: z.boolean() });

/** What a planner may read besides the facts: settings and paths, never the host. */
export type PlanEnv = Pick<Context, 'config' | 'paths' | 'host'>;

/** What varies by command, declared as data (after pgBackRest's config.yaml). */
export interface CommandSpec<O, F, J> {
  /** As the user types it: 'pitr', 'branch create'. */
  name: string;
  summary: string;
  /** Its command line: arguments, flags and their parsing into `options` (a batch's target module has none). */
  cli?: CliSpec;
  /** The options one run takes, validated before anything runs. */
  options: z.ZodType<O>;
  /** Rules on the options alone (what cannot go together): throws a UsageError (exit 2) before anything runs. */
  check?(o: O): void;
  examples: string[];
  /** The cluster (by name) a run changes: its journal and first lock. None: a read-only command. */
  target?(o: O): string;
  /** Clusters locked while the steps run (default: the target). */
  locks?(o: O, f: F): string[];
  /** Replaces or removes something the user had: confirmation on a terminal, --yes without one. */
  destructive: boolean | ((o: O, f: F) => boolean);
  /** On a terminal, confirm by typing this instead of answering yes. */
  typeToConfirm?(o: O, f: F): string | undefined;
  /** The journal command a run of these options writes and settles (pitr --undo vs pitr); default `name`. */
  journalCommand?(o: O): string;
  /** Wait up to the configuration's lock-wait for a lock another pgmam command holds (backup from cron), instead of refusing at once. */
  waitsForLock?: boolean;
  /** Other commands' interrupted runs this one settles through its recover (pitr --undo settles an interrupted pitr). */
  settlesAlso?(o: O): string[];
  /** false: a run does not settle an interrupted run first (drop removes the cluster and its journal). */
  settles?: false;
  /** The journal data this command writes, parsed by `recover` on a re-run. */
  journal?: z.ZodType<J>;
  /** May act on a fenced cluster (another host took it over): drop without --purge-backups. Default: refused. */
  fencedMayRun?(o: O): boolean;
}

/** A plan as a module builds it: the runner adds the spec's traits and the guards. */
export type PlanBody = Omit<Plan, 'command' | 'locks' | 'destructive' | 'typeToConfirm' | 'guards'> & { command?: string };

/** What a re-run does first about an interrupted run of the same command. */
export interface Recovery {
  way: 'finished' | 'rolled-back';
  steps: Step[];
  /** Finished runs are complete: this line is printed and the command does not run again. */
  finished?: string;
}

export interface CommandModule<O extends RunFlags, F, J = never> {
  spec: CommandSpec<O, F, J>;
  /** Read-only: the context's runner and filesystem throw on any write. */
  gather(ctx: Context, o: O): Promise<F>;
  /** Pure: every condition that must hold before the first change. */
  guards(f: F, o: O, env: PlanEnv): Guard[];
  /** Pure: the steps as data. Never evaluates or patches guards. */
  plan(f: F, o: O, env: PlanEnv): PlanBody;
  /** Finish or undo an interrupted run of this command, from its own journal data. */
  recover?(ctx: Context, j: Journal, data: J, o: O): Promise<Recovery>;
  report(ctx: Context, o: O, f: F, plan: Plan): Promise<void>;
}

/** Gathering and --dry-run see the host through these: reads pass, writes throw. */
export function readOnlyContext(ctx: Context): Context {
  return { ...ctx, runner: new ReadOnlyRunner(ctx.runner), fs: readOnlyFs(ctx.fs) };
}

/**
 * The guards first, then the plan: a planner runs only on facts its guards accepted, so it may rely
 * on them (required()). Refused, the plan has no steps: there is nothing it could do.
 */
export function assemblePlan<O extends RunFlags, F, J>(m: CommandModule<O, F, J>, f: F, o: O, env: PlanEnv, extra: Guard[] = []): Plan {
  const { spec } = m;
  const guards = [...m.guards(f, o, env), ...extra];
  const refused = guards.some((g) => !g.check().ok);
  const command = spec.journalCommand?.(o) ?? spec.name;
  const body: PlanBody = refused ? { target: spec.target?.(o) ?? spec.name, steps: [], journal: false } : m.plan(f, o, env);
  return {
    ...body,
    command: body.command ?? command,
    locks: spec.locks?.(o, f) ?? (spec.target ? [spec.target(o)] : []),
    destructive: typeof spec.destructive === 'function' ? spec.destructive(o, f) : spec.destructive,
    typeToConfirm: spec.typeToConfirm?.(o, f),
    guards,
  };
}

/**
 * A cluster another host took over (check fenced it: stopped, not started at boot) is refused by every
 * command that would change it, before anything runs: two hosts must never write one app's stanza.
 */
async function fencedGuards<O>(ctx: Context, spec: CommandSpec<O, unknown, unknown>, o: O): Promise<Guard[]> {
  if (!spec.target || spec.fencedMayRun?.(o)) return [];
  const rec = await readRecord(ctx.fs, ctx.paths.clustersDir, spec.target(o)).catch(() => undefined);
  const f = rec?.fenced;
  if (!rec || !f) return [];
  return [
    {
      id: 'cluster-is-not-fenced',
      check: () =>
        fail(
          `${rec.cluster} is fenced since ${f.at}: ${f.reason}`,
          `the app continues on ${f.host ? `host ${f.host}` : 'another host'}; keep this copy stopped. pgmam drop ${rec.name} removes it here (its backups stay), or bring its state back under a new name with pgmam recover ${rec.stanza} --from-repo ${f.repo} --as NEW on any host`,
        ),
    },
  ];
}

async function prepare<O extends RunFlags, F, J>(ctx: Context, m: CommandModule<O, F, J>, o: O): Promise<{ facts: F; plan: Plan }> {
  const facts = await m.gather(readOnlyContext(ctx), o);
  const plan = assemblePlan(m, facts, o, ctx, await fencedGuards(ctx, m.spec as CommandSpec<O, unknown, unknown>, o));
  checkGuards(plan);
  return { facts, plan };
}

/** What a run ended with (for batches): the facts its plan was built from, and the plan; undefined when it only settled or printed a dry-run. */
export type RunResult<F> = { facts: F; plan: Plan } | undefined;

export async function runCommand<O extends RunFlags, F, J>(ctx0: Context, m: CommandModule<O, F, J>, input: O): Promise<RunResult<F>> {
  const o = m.spec.options.parse(input);
  m.spec.check?.(o);
  // Under --dry-run nothing may write: not the settling, not the gathering, not the rendering.
  const ctx = o.dryRun ? readOnlyContext(ctx0) : ctx0;
  const settled = await settle(ctx, m, o);
  if (settled === 'dry-run') return undefined;
  // Under --json stdout holds only the result: the note goes to stderr.
  if (settled?.finished) return void ((o as { json?: boolean }).json ? ctx.io.err : ctx.io.out)(settled.finished);

  const first = await prepare(ctx, m, o);
  // A command without steps only reads: its report is its result, --dry-run or not.
  if (!first.plan.steps.length) {
    await m.report(ctx, o, first.facts, first.plan);
    return first;
  }
  if (o.dryRun) return void ctx.io.out(renderPlan(first.plan, ctx.host.uid));
  await confirmPlan(ctx, first.plan, o);
  const waitSeconds = m.spec.waitsForLock ? ctx.config['lock-wait'] : 0;
  const result = await withLocks(ctx, first.plan, async () => {
    // The host may have changed while the user read the plan: gather and check again, holding the lock
    // (fresh: nothing a batch read earlier).
    const again = await prepare({ ...ctx, readCache: undefined }, m, o);
    const was = first.plan.steps.map((s) => s.id).join(' ');
    if (again.plan.steps.map((s) => s.id).join(' ') !== was)
      throw new RefusedError(again.plan.command, [{ id: 'plan-is-unchanged', reason: `${again.plan.target} changed while the plan was being confirmed: its steps are no longer the ones shown`, hint: 'run the command again to see the new plan' }]);
    await executeSteps(ctx, again.plan, o);
    return again;
  }, waitSeconds);
  await m.report(ctx, o, result.facts, result.plan);
  return result;
}

/** An interrupted run of this command on the target is finished or rolled back first; another command's is refused. */
async function settle<O extends RunFlags, F, J>(ctx: Context, m: CommandModule<O, F, J>, o: O): Promise<Recovery | 'dry-run' | undefined> {
  if (!m.spec.target || m.spec.settles === false) return undefined;
  const name = m.spec.target(o);
  const command = m.spec.journalCommand?.(o) ?? m.spec.name;
  const j = await readJournal(ctx.fs, ctx.paths.stateDir, name);
  if (!j) return undefined;
  if (ownerAlive(ctx.host, j))
    throw new RefusedError(command, [
      { id: 'cluster-is-not-locked', reason: `${j.target} is being changed by pgmam ${j.command} (pid ${j.pid}${j.groups.length ? `, child process groups ${j.groups.join(', ')}` : ''}), at ${stepName(j)}`, hint: 'wait for it to finish' },
    ]);
  if (j.command !== command && !(m.spec.settlesAlso?.(o) ?? []).includes(j.command))
    throw new RefusedError(command, [{ id: 'no-interrupted-operation', reason: `${j.target}: ${describeJournal(j)}`, hint: `finish or undo that first${j.rerun ? `: ${j.rerun}` : ''}` }]);
  const mismatch = await journalMismatch(readOnlyContext(ctx), j);
  if (mismatch)
    throw new RefusedError(command, [{ id: 'journal-describes-this-cluster', reason: mismatch, hint: `look at pgmam list and the log; remove ${ctx.paths.stateDir}/journal/${j.name}.json once you know it is stale` }]);
  const parsed = m.spec.journal?.safeParse(j.data);
  if (!m.recover || !parsed?.success)
    throw new RefusedError(command, [
      { id: 'interrupted-run-is-recoverable', reason: `${j.target}: ${describeJournal(j)}: pgmam cannot finish or roll back ${j.command} by itself`, hint: `look at pgmam list and the log; remove ${ctx.paths.stateDir}/journal/${j.name}.json once the cluster is as it should be` },
    ]);
  const r = await m.recover(ctx, j, parsed.data, o);
  const plan = recoveryPlan(j, r, ctx.host.uid);
  ctx.log.warn({ event: 'recover', command: j.command, step: stepName(j), way: r.way }, `${j.target}: ${describeJournal(j)}; ${r.way === 'finished' ? 'finishing it' : 'rolling it back first'}`);
  checkGuards(plan);
  if (o.dryRun) {
    ctx.io.out(renderPlan(plan, ctx.host.uid));
    ctx.io.out(r.way === 'finished' ? 'then the interrupted run is complete\n' : `then ${command} runs again as asked (planned after the rollback)\n`);
    return 'dry-run';
  }
  await confirmPlan(ctx, plan, o);
  await withLocks(ctx, plan, () => executeSteps(ctx, plan, o));
  return r;
}

/** The plan that settles an interrupted run: its steps, then the journal closed. */
export function recoveryPlan(j: Journal, r: Recovery, uid: number): Plan {
  return {
    command: `${j.command} (${r.way === 'finished' ? 'finishing' : 'rolling back'} the interrupted run)`,
    target: j.target,
    locks: [j.name],
    // Removes only what the interrupted run made, but that may include a whole half-made cluster.
    destructive: r.way === 'rolled-back',
    // Settling changes clusters: as any change, root only (exit 4 before anything runs).
    guards: [runsAsRoot(uid)],
    steps: [...r.steps, closeJournalStep(j)],
    // The journal of the interrupted run stays until the last step closes it.
    journal: false,
    notes: [`${j.target}: ${describeJournal(j)} (started ${j.startedAt})`],
  };
}

export const closeJournalStep = (j: Journal): Step => ({
  id: 'close-journal',
  title: `mark the interrupted ${j.command} as settled`,
  effect: 'write',
  run: (c) => removeJournal(c.fs, c.paths.stateDir, j.name),
  show: [`rm <state-dir>/journal/${j.name}.json`],
});

/**
 * The targets of a batch (`<app>…` or `--all`), checked once for the whole batch: run as root, and
 * every named app managed by pgmam — otherwise the batch is refused before any target runs.
 */
/**
 * The clusters a batch acts on: each name resolved to its app's current primary (after a failover, the
 * promoted replica); --all = every app's primary and every branch, with `replicas` also each replica and
 * each old primary a failover left behind.
 */
export async function batchTargets(ctx: Context, command: string, o: { names: string[]; all: boolean }, doing: string, opts: { replicas?: boolean } = {}): Promise<{ names: string[]; managed: ManagedCluster[] }> {
  const managed = (await managedClusters(ctx)).records;
  const unknown = o.names.filter((n) => !managed.some((r) => r.name === n));
  checkGuards({ command, guards: [runsAsRoot(ctx.host.uid, doing), ...unknown.map((n) => ({ id: 'cluster-is-managed', check: () => notManaged(n) }))] });
  const all = managed.filter((r) => opts.replicas || (r.role !== 'replica' && !r.successor)).map((r) => r.name);
  return { names: o.all ? all : [...new Set(o.names.map((n) => (opts.replicas ? n : (currentPrimary(managed, n)?.name ?? n))))], managed };
}

/** One target's result in a batch (backup --all, export --all). */
export interface BatchOutcome<O, F> {
  target: string;
  options: O;
  result: 'done' | 'refused' | 'failed';
  /** What the run ended with (done): its facts and plan. */
  run?: RunResult<F>;
  /** Ids of the failed guards (refused). */
  refusedBy: string[];
  /** The lines the run printed about why (refusals, the failed step). */
  lines: readonly string[];
  /** A failed run: the step, and the first line of why. */
  failure?: { step: string; reason: string };
}

/**
 * A batch: one runCommand per target (each with its own plan, lock and journal), `concurrency` at a
 * time; one target's refusal or failure does not stop the others. `report` sees every outcome; then
 * exit 0 when all are done, 7 when some are, 4 when none is (pgmam-cli.md); --dry-run exits 0. A bug
 * (not a PgmamError) still stops the batch.
 */
export async function runBatch<O extends RunFlags, F, J>(
  ctx: Context,
  m: CommandModule<O, F, J>,
  runs: O[],
  opts: {
    concurrency?: number;
    report?: (outcomes: Array<BatchOutcome<O, F>>) => Promise<void>;
    /** A failed run is a finding, not a refusal (drill): exit 7 even when no target succeeded. */
    failedIsFinding?: boolean;
  } = {},
): Promise<Array<BatchOutcome<O, F>>> {
  const outcomes: Array<BatchOutcome<O, F>> = new Array(runs.length);
  // The targets' first gathers share the host-wide reads (pg_lsclusters, records, a repository's info).
  const shared: Context = { ...ctx, readCache: new Map() };
  let next = 0;
  const worker = async () => {
    while (next < runs.length) {
      const i = next++;
      const o = runs[i]!;
      const target = m.spec.target?.(o) ?? m.spec.name;
      try {
        outcomes[i] = { target, options: o, result: 'done', run: await runCommand(shared, m, o), refusedBy: [], lines: [] };
      } catch (e) {
        if (!(e instanceof PgmamError)) throw e;
        outcomes[i] = { target, options: o, result: e instanceof RefusedError ? 'refused' : 'failed', refusedBy: e instanceof RefusedError ? e.failures.map((f) => f.id) : [], lines: e.lines, ...(e instanceof StepFailedError && e.failure ? { failure: e.failure } : {}) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 1, runs.length)) }, worker));
  await opts.report?.(outcomes);
  if (runs.some((o) => o.dryRun)) return outcomes;
  const bad = outcomes.filter((x) => x.result !== 'done');
  // With a report, each target's reason is in it (stdout); stderr gets one line.
  const why = opts.report ? [] : bad.flatMap((b) => b.lines);
  if (bad.length && bad.length === outcomes.length && !(opts.failedIsFinding && bad.some((b) => b.result === 'failed'))) throw new PgmamError(`${m.spec.name}: no target succeeded`, ExitCode.refused, [...why, `pgmam: ${m.spec.name}: none of ${outcomes.length} succeeded`]);
  if (bad.length) throw new PgmamError(`${m.spec.name}: some targets failed`, ExitCode.partial, [...why, `pgmam: ${m.spec.name}: ${bad.length} of ${outcomes.length} failed (${bad.map((b) => b.target).join(', ')})`]);
  return outcomes;
}
