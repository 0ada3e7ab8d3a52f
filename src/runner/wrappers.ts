// Runners that wrap another: read-only (fact gathering and --dry-run may not write) and recording
// (unit tests).
import { CommandFailedError, renderArgv, type Cmd, type HeldSession, type Runner, type RunOptions, type RunResult } from './types.js';

export class WriteDuringReadOnlyError extends Error {
  constructor(what: string) {
    super(`internal: a write was attempted while gathering facts or under --dry-run: ${what}`);
  }
}

/** psql sessions that cannot write, whatever the SQL: the server refuses any write transaction. */
export const READ_ONLY_PGOPTIONS = '-c default_transaction_read_only=on';
const isPsql = (cmd: Cmd) => /(^|\/)psql$/.test(cmd.argv[0] ?? '');

/**
 * Wraps the runner used while gathering facts and under --dry-run: a command not marked 'read' is a
 * bug and throws before it starts; psql runs in read-only transactions.
 */
export class ReadOnlyRunner implements Runner {
  constructor(private readonly inner: Runner) {}
  async run(cmd: Cmd, opts?: RunOptions): Promise<RunResult> {
    if (cmd.effect !== 'read') throw new WriteDuringReadOnlyError(renderArgv(cmd.argv));
    return this.inner.run(readOnly(cmd), opts);
  }
  async hold(cmd: Cmd): Promise<HeldSession> {
    if (cmd.effect !== 'read') throw new WriteDuringReadOnlyError(renderArgv(cmd.argv));
    return this.inner.hold(readOnly(cmd));
  }
}

const readOnly = (cmd: Cmd): Cmd => (isPsql(cmd) ? { ...cmd, env: { ...cmd.env, PGOPTIONS: READ_ONLY_PGOPTIONS } } : cmd);

export interface StubbedCall {
  /** Matches when the command's argv, joined by spaces, equals this string or matches this RegExp. */
  match: string | RegExp;
  result?: Partial<Pick<RunResult, 'exitCode' | 'stdout' | 'stderr'>>;
  /** How many times it may be used; default unlimited. */
  times?: number;
  used?: number;
}

/**
 * A fake runner for unit tests (after GitHub CLI's run stub): fails on an unexpected command and
 * `verify()` fails on a registered command that was never used.
 */
export class RecordingRunner implements Runner {
  readonly calls: Cmd[] = [];
  private readonly stubs: StubbedCall[] = [];

  register(match: string | RegExp, result: StubbedCall['result'] = {}, times?: number): this {
    this.stubs.push({ match, result, times, used: 0 });
    return this;
  }

  async run(cmd: Cmd, opts: RunOptions = {}): Promise<RunResult> {
    this.calls.push(cmd);
    const line = cmd.argv.join(' ');
    const stub = this.stubs.find(
      (s) => (s.times === undefined || (s.used ?? 0) < s.times) && (typeof s.match === 'string' ? s.match === line : s.match.test(line)),
    );
    if (!stub) throw new Error(`RecordingRunner: unexpected command: ${line}`);
    stub.used = (stub.used ?? 0) + 1;
    const result: RunResult = {
      argv: [...cmd.argv],
      exitCode: stub.result?.exitCode ?? 0,
      stdout: stub.result?.stdout ?? '',
      stderr: stub.result?.stderr ?? '',
      durationMs: 0,
    };
    if (result.exitCode !== 0 && opts.check !== false) throw new CommandFailedError(result);
    return result;
  }

  /** A held session's statements are recorded (and matched) as its argv followed by `<<< SQL`. */
  async hold(cmd: Cmd): Promise<HeldSession> {
    return {
      query: async (sql) => (await this.run({ ...cmd, argv: [...cmd.argv, '<<<', sql.trim()] })).stdout,
      close: async () => ({ argv: [...cmd.argv], exitCode: 0, stdout: '', stderr: '', durationMs: 0 }),
    };
  }

  writes(): Cmd[] {
    return this.calls.filter((c) => c.effect !== 'read');
  }

  verify(): void {
    const unused = this.stubs.filter((s) => (s.used ?? 0) === 0);
    if (unused.length) throw new Error(`RecordingRunner: registered but never used: ${unused.map((s) => String(s.match)).join(', ')}`);
  }
}
