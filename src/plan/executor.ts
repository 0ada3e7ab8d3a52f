// Runs a plan: every guard first, then dry-run or confirmation, then the steps under a lock, each
// logged begin/end; on failure, undoes what this run made and reports the step.
import type { Context } from '../context.js';
import { CancelledError, RefusedError, StepFailedError, UsageError, type GuardFailure } from '../errors.js';
import { lockDeps, acquireLock, LockHeldError, readLock, recordLockGroups } from '../state/lock.js';
import { pausedPath, removeJournal, writeJournal, type Journal } from '../state/journal.js';
import { renderArgv } from '../runner/types.js';
import { renderPlan } from './render.js';
import { figuresText, startMeter, type ProgressFigures } from './progress.js';
import { isCmd, type Action, type Plan, type Step, type StepOutcome } from './types.js';

export interface ExecuteFlags {
  dryRun: boolean;
  yes: boolean;
  keepOnError: boolean;
}

/** Every guard evaluated, every failure reported at once; a failure means zero writes. */
export function checkGuards(plan: Pick<Plan, 'command' | 'guards'>): void {
  const failures: GuardFailure[] = [];
  for (const g of plan.guards) {
    const r = g.check();
    if (!r.ok) failures.push({ id: g.id, reason: r.reason, hint: r.hint });
  }
  if (failures.length) throw new RefusedError(plan.command, failures);
}

async function runAction(ctx: Context, a: Action): Promise<StepOutcome | undefined> {
  if (isCmd(a)) await ctx.runner.run(a);
  else return (await a(ctx)) ?? undefined;
  return undefined;
}

/** A destructive plan needs --yes, or a yes (or the typed name) on a terminal. */
export async function confirmPlan(ctx: Context, plan: Plan, flags: Pick<ExecuteFlags, 'yes'>): Promise<void> {
  if (plan.destructive && !flags.yes) {
    if (!ctx.io.interactive) throw new UsageError(`${plan.command} ${plan.target} changes existing data: confirm on a terminal or pass --yes`);
    ctx.io.err(renderPlan(plan, ctx.host.uid));
    const agreed = plan.typeToConfirm
      ? await ctx.prompter.typeToConfirm(`${plan.downtime ? `Downtime: ${plan.downtime}. ` : ''}This changes ${plan.target} for good.`, plan.typeToConfirm)
      : await ctx.prompter.confirm(`${plan.downtime ? `Downtime: ${plan.downtime}. ` : ''}Run these ${plan.steps.length} steps on ${plan.target}?`);
    if (!agreed) throw new CancelledError();
  }
  if (ctx.host.interrupted()) throw new CancelledError();
}

/**
 * Runs `fn` holding the locks of `plan`. A lock another live pgmam holds is waited for up to
 * `waitSeconds`, then refused (nothing changed).
 */
export async function withLocks<T>(ctx: Context, plan: Pick<Plan, 'command' | 'locks'>, fn: () => Promise<T>, waitSeconds = 0): Promise<T> {
  const releases: Array<() => Promise<void>> = [];
  const deadline = Date.now() + waitSeconds * 1000;
  const take = async (name: string): Promise<() => Promise<void>> => {
    for (;;) {
      try {
        return await acquireLock(lockDeps(ctx), name, plan.command);
      } catch (e) {
        if (!(e instanceof LockHeldError) || Date.now() >= deadline || ctx.host.interrupted()) throw e;
        await new Promise((ok) => setTimeout(ok, 500));
      }
    }
  };
  try {
    for (const name of plan.locks) releases.push(await take(name));
  } catch (e) {
    for (const r of releases) await r();
    if (e instanceof LockHeldError) throw new RefusedError(plan.command, [{ id: 'cluster-is-not-locked', reason: e.message, hint: 'wait for it to finish' }]);
    throw e;
  }
  try {
    return await fn();
  } finally {
    for (const r of releases.reverse()) await r();
  }
}

/** The steps, each journaled and logged begin/end; on failure, undoes what this run made and reports the step. Call under the plan's locks. */
export async function executeSteps(ctx: Context, plan: Plan, flags: ExecuteFlags): Promise<void> {
  const journal = plan.journal === false ? undefined : newJournal(ctx, plan);
  // Each child's process group goes into the lock and the journal as it starts, so a later pgmam can
  // tell a dead pgmam whose restore still runs from one that is really gone.
  let recording = Promise.resolve();
  const record = async (groups: number[]) => {
    for (const name of plan.locks) {
      const holder = await readLock(ctx.fs, ctx.paths.locksDir, name);
      if (holder?.pid === ctx.host.pid) await recordLockGroups(ctx.fs, ctx.paths.locksDir, name, { ...holder, groups: merge(holder.groups, groups) });
    }
    if (journal) {
      journal.groups = merge(journal.groups, groups).filter((g) => ctx.host.isGroupAlive(g));
      await writeJournal(ctx.fs, ctx.paths.stateDir, journal);
    }
  };
  // One write at a time: children of one step may start together.
  const unsubscribe = ctx.children.onStart((groups) => (recording = recording.then(() => record(groups))));

  const began = performance.now();
  // The log file keeps every line (it takes debug); stderr shows them unless the plan is quiet.
  const log = plan.quiet ? ctx.log.debug.bind(ctx.log) : ctx.log.info.bind(ctx.log);
  log({ event: 'begin', command: plan.command, target: plan.target, steps: plan.steps.map((s) => s.id) }, `begin ${plan.command} ${plan.target}`);
  const done: Step[] = [];
  try {
    for (const [i, step] of plan.steps.entries()) {
      const t0 = performance.now();
      const n = `[${i + 1}/${plan.steps.length}]`;
      if (journal) {
        journal.at = i;
        await writeJournal(ctx.fs, ctx.paths.stateDir, journal);
      }
      if (journal && ctx.host.pauseBefore === step.id) await pauseForever(ctx, journal, step.id);
      log({ event: 'step-begin', step: step.id }, `${n} ${step.title}`);
      let figures: ProgressFigures | undefined;
      try {
        const signal = ctx.host.interrupted();
        if (signal) throw new Error(`interrupted by ${signal}`);
        const meter = step.progress && startMeter(ctx, step.progress);
        let out;
        try {
          out = await runAction(ctx, step.run);
        } finally {
          meter?.stop();
        }
        figures = await meter?.finish();
        if (journal && out?.journal) {
          journal.data = { ...journal.data, ...out.journal };
          await writeJournal(ctx.fs, ctx.paths.stateDir, journal);
        }
      } catch (e) {
        ctx.log.error({ event: 'step-failed', step: step.id, err: String(e) }, `${n} ${step.id} failed`);
        const report = await failureReport(ctx, plan, step, i, done, e, flags);
        if (journal) {
          if (report.clean) await removeJournal(ctx.fs, ctx.paths.stateDir, journal.name);
          else await writeJournal(ctx.fs, ctx.paths.stateDir, { ...journal, status: 'failed', error: String(e instanceof Error ? e.message : e).split('\n')[0] ?? null });
        }
        throw new StepFailedError(`${plan.command} ${plan.target} failed at step ${step.id}`, report.lines, { step: step.id, reason: String(e instanceof Error ? e.message : e).split('\n')[0] ?? '' });
      }
      done.push(step);
      log(
        { event: 'step-end', step: step.id, durationMs: Math.round(performance.now() - t0), ...(figures ? { progress: figures } : {}) },
        `${n} ${step.id} done (${secs(performance.now() - t0)}${figures ? `, ${figuresText(figures)}` : ''})`,
      );
    }
    if (journal) await removeJournal(ctx.fs, ctx.paths.stateDir, journal.name);
    log({ event: 'end', command: plan.command, target: plan.target, durationMs: Math.round(performance.now() - began) }, `end ${plan.command} ${plan.target} (${secs(performance.now() - began)})`);
  } finally {
    unsubscribe();
  }
}

const merge = (a: readonly number[] = [], b: readonly number[]) => [...new Set([...a, ...b])];

function newJournal(ctx: Context, plan: Plan): Journal {
  const name = plan.locks[0] ?? plan.target.split('/').at(-1)!;
  const spec = plan.journal || undefined;
  return {
    format: 1,
    command: plan.command,
    target: plan.target,
    name,
    rerun: spec?.rerun ?? `pgmam ${plan.command} ${name}`,
    pid: ctx.host.pid,
    groups: [],
    startedAt: ctx.clock.now().toISOString(),
    steps: plan.steps.map((s) => s.id),
    at: 0,
    status: 'running',
    error: null,
    data: { ...spec?.data },
  };
}

/** The test seam behind PGMAM_TEST_PAUSE_BEFORE: the journal names the step; wait to be killed. */
async function pauseForever(ctx: Context, journal: Journal, step: string): Promise<never> {
  ctx.log.warn({ event: 'paused', step }, `paused before ${step} (PGMAM_TEST_PAUSE_BEFORE)`);
  await ctx.fs.writeFileAtomic(pausedPath(ctx.paths.stateDir, journal.name), `${ctx.host.pid} ${step}\n`, { mode: 0o644 });
  return new Promise<never>(() => setInterval(() => undefined, 1 << 30));
}

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** The failure message; clean when nothing this run made is left (all undone). */
async function failureReport(ctx: Context, plan: Plan, failed: Step, index: number, done: Step[], err: unknown, flags: ExecuteFlags): Promise<{ lines: string[]; clean: boolean }> {
  const lines = [`pgmam: ${plan.command} ${plan.target} failed at step ${index + 1}/${plan.steps.length} ${failed.id} (${failed.title}):`];
  lines.push(...String(err instanceof Error ? err.message : err).split('\n').map((l) => `  ${l}`));
  lines.push(`  done before it: ${done.length ? done.map((s) => s.id).join(', ') : 'nothing'}`);
  lines.push(...(plan.failureHint?.(index) ?? []).map((l) => `  ${l}`));
  const undoable = [...done, failed].filter((s) => s.undo).reverse();
  if (!undoable.length || failed.keepOnFailure) return { lines, clean: false };
  if (flags.keepOnError) {
    lines.push(`  kept as it is (--keep-on-error); to go back, run: ${undoable.map((s) => s.undo!.title).join('; ')}`);
    return { lines, clean: false };
  }
  const undone: string[] = [];
  const notUndone: string[] = [];
  for (const s of undoable) {
    try {
      ctx.log.info({ event: 'undo-begin', step: s.id }, `undo: ${s.undo!.title}`);
      await runAction(ctx, s.undo!.run);
      undone.push(s.undo!.title);
    } catch (e) {
      const what = isCmd(s.undo!.run) ? renderArgv(s.undo!.run.argv) : s.undo!.title;
      notUndone.push(`${what}: ${String(e instanceof Error ? e.message : e).split('\n')[0]}`);
    }
  }
  if (undone.length) lines.push(`  undone: ${undone.join('; ')}`);
  if (notUndone.length) lines.push(`  could not undo (do this by hand): ${notUndone.join('; ')}`);
  else lines.push('  nothing this run made is left behind');
  return { lines, clean: !notUndone.length };
}
