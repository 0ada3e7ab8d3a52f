// Every error kind pgmam reports, and the one table that maps them to exit codes (pgmam-cli.md).
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  config: 3,
  refused: 4,
  cancelled: 5,
  stepFailed: 6,
  partial: 7,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** What each exit code tells a script (the man pages list them). */
export const EXIT_MEANINGS: { readonly [K in ExitCodeValue]: string } = {
  0: 'done (also --dry-run)',
  1: 'internal error (a bug)',
  2: 'usage: a bad flag, name, port, time or age, or a destructive command without a terminal and without --yes; nothing ran',
  3: 'the configuration file is invalid (every bad key listed); nothing ran',
  4: 'refused by a guard (not root, a tool missing, a name or port taken, locked, interrupted by another command, not enough disk); nothing changed',
  5: 'cancelled at the prompt; nothing changed',
  6: 'a step failed after changes began: the message names the step, what was done and what was undone',
  7: 'some targets failed, others succeeded (backup --all, export --all); check: some managed cluster is unhealthy',
};

export interface GuardFailure {
  id: string;
  reason: string;
  hint?: string;
}

/** Base of every error that pgmam expects and reports without a stack trace. */
export class PgmamError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
    /** Lines printed to stderr instead of the message, when more than one thing is wrong. */
    readonly lines: readonly string[] = [message],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class UsageError extends PgmamError {
  constructor(message: string, lines?: string[]) {
    super(message, ExitCode.usage, lines ?? [`pgmam: ${message}`]);
  }
}

export class ConfigError extends PgmamError {
  constructor(file: string, problems: string[]) {
    super(
      `configuration file ${file} is invalid`,
      ExitCode.config,
      [`pgmam: configuration file ${file} is invalid:`, ...problems.map((p) => `  ${p}`)],
    );
  }
}

/** One or more guards failed: nothing changed. */
export class RefusedError extends PgmamError {
  constructor(
    readonly command: string,
    readonly failures: readonly GuardFailure[],
  ) {
    super(
      `${command} refused: ${failures.map((f) => f.reason).join('; ')}`,
      ExitCode.refused,
      failures.flatMap((f) => [
        `pgmam: ${command} refused: ${f.reason}`,
        ...(f.hint ? [`  hint: ${f.hint}`] : []),
      ]),
    );
  }
}

export class CancelledError extends PgmamError {
  constructor(message = 'cancelled; nothing changed') {
    super(message, ExitCode.cancelled, [`pgmam: ${message}`]);
  }
}

/** A step failed after changes began. */
export class StepFailedError extends PgmamError {
  constructor(
    message: string,
    lines: string[],
    /** The step that failed, and the first line of why (for a batch's report). */
    readonly failure?: { step: string; reason: string },
  ) {
    super(message, ExitCode.stepFailed, lines);
  }
}
