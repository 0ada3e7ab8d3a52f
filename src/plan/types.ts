// A command's behaviour as data: the same Plan drives dry-run output, confirmation, logs and tests.
import type { Context } from '../context.js';
import type { Cmd } from '../runner/types.js';

export type GuardResult = { ok: true } | { ok: false; reason: string; hint?: string };
export const pass: GuardResult = { ok: true };
export const fail = (reason: string, hint?: string): GuardResult => ({ ok: false, reason, ...(hint ? { hint } : {}) });

export interface Guard {
  /** Named for the condition that must hold, e.g. 'port-is-free'. */
  id: string;
  check(): GuardResult;
}

/** What a function step may report: facts learnt while running that the journal must keep (e.g. a new cluster's system identifier). */
export interface StepOutcome {
  journal?: Record<string, unknown>;
}
export type Action = Cmd | ((ctx: Context) => Promise<void | StepOutcome>);

export interface Step {
  /** verb-object, e.g. 'create-cluster'. */
  id: string;
  title: string;
  effect: 'read' | 'write' | 'destroy';
  run: Action;
  /** What a function step does, for --dry-run (a command step shows its command line). */
  show?: string[];
  /**
   * Undoes what this step made, when this or a later step fails. Must be idempotent: it also runs
   * for the failed step itself, which may have made nothing.
   */
  undo?: { title: string; run: Action; show?: string[] };
  /** When this step fails, undo nothing: what was made stays, as the step's failure message says. */
  keepOnFailure?: boolean;
  /** A long step's measure: a live line on a terminal while it runs, its figures in the log at its end. */
  progress?: Progress;
}

/** How far a long step has got, read from what the host shows (a directory's size, a lock file, an LSN). */
export interface Progress {
  /** What the line names, e.g. 'restore 15/app1'. */
  what: string;
  /** Bytes when done; undefined when not known beforehand. */
  total: number | undefined;
  /** 'share': done and total are 1/10000ths of the work (a tool that reports only a share done). Default 'bytes'. */
  unit?: 'bytes' | 'share';
  /** Bytes done now (with the total, where only the tool knows it), read-only and cheap; undefined while it cannot tell yet. */
  done(ctx: Context): Promise<number | { done: number; total: number } | undefined>;
}

export interface Plan {
  command: string;
  /** The cluster the plan changes, e.g. '15/app1'. */
  target: string;
  /** Cluster names locked while the steps run. */
  locks: string[];
  /** true when the plan removes or replaces something the user had: needs confirmation or --yes. */
  destructive: boolean;
  /** On a terminal, confirm by typing this (the cluster's name) instead of answering yes. */
  typeToConfirm?: string;
  guards: Guard[];
  steps: Step[];
  /** Lines printed with the plan (what the result will be). */
  notes?: string[];
  /** What users lose while it runs, said first in the plan and again in the prompt: "downtime: 15/x stops …". */
  downtime?: string;
  /**
   * The journal of this run (under <state-dir>/journal/<first lock>.json): the command line that
   * finishes or rolls it back when run again, and what that re-run needs to know. false: no journal
   * (a recovery plan keeps the journal of the run it recovers until it is done).
   */
  journal?: { rerun: string; data?: object } | false;
  /** Step begin/end lines at debug, not info: a health check from cron prints only its result. */
  quiet?: boolean;
  /** How to go back or forward when step `failedIndex` fails (for steps that are not undone automatically). */
  failureHint?: (failedIndex: number) => string[];
}

export const isCmd = (a: Action): a is Cmd => typeof a !== 'function';

/** A fact a planner relies on because a guard required it: missing means a guard let through what it should have refused (a bug). */
export function required<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) throw new Error(`planned without ${what}: a guard should have refused`);
  return value;
}
