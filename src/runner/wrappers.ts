// Runners that wrap another: read-only (fact gathering may not write) and recording (unit tests).
import { CommandFailedError, renderArgv, type Cmd, type Runner, type RunOptions, type RunResult } from './types.js';

export class WriteDuringReadOnlyError extends Error {
  constructor(cmd: Cmd) {
    super(`internal: a write command was attempted while gathering facts: ${renderArgv(cmd.argv)}`);
  }
}

/** Wraps the runner used while gathering facts: anything not marked 'read' is a bug. */
export class ReadOnlyRunner implements Runner {
  constructor(private readonly inner: Runner) {}
  async run(cmd: Cmd, opts?: RunOptions): Promise<RunResult> {
    if (cmd.effect !== 'read') throw new WriteDuringReadOnlyError(cmd);
    return this.inner.run(cmd, opts);
  }
}

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

  writes(): Cmd[] {
    return this.calls.filter((c) => c.effect !== 'read');
  }

  verify(): void {
    const unused = this.stubs.filter((s) => (s.used ?? 0) === 0);
    if (unused.length) throw new Error(`RecordingRunner: registered but never used: ${unused.map((s) => String(s.match)).join(', ')}`);
  }
}
