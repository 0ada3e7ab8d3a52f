// Reads started before the runner existed: `list` and `check` begin with pg_lsclusters (a Perl script
// that reads every cluster's configuration, the slowest read they make) and one `pgbackrest info` of
// the configured repository, so main starts them while the command's modules load. The first
// identical run takes that result; every later one runs anew.
import type { Logger } from 'pino';
import { CommandFailedError, renderArgv, shownCommand, type Cmd, type HeldSession, type Runner, type RunOptions, type RunResult } from './types.js';

/** A read begun early, by its command (user and argv). Only a read without input, environment or directory of its own qualifies. */
export type Prefetched = Map<string, Promise<RunResult>>;

export const prefetchKey = (cmd: Pick<Cmd, 'argv' | 'asUser'>) => `${cmd.asUser ?? ''}|${renderArgv(cmd.argv)}`;

export class PrefetchRunner implements Runner {
  constructor(
    private readonly inner: Runner,
    private readonly early: Prefetched,
    private readonly log: Logger,
  ) {}

  hold(cmd: Cmd): Promise<HeldSession> {
    return this.inner.hold(cmd);
  }

  async run(cmd: Cmd, opts: RunOptions = {}): Promise<RunResult> {
    const key = prefetchKey(cmd);
    const pending = cmd.effect === 'read' && !cmd.input && !cmd.env && !cmd.cwd ? this.early.get(key) : undefined;
    if (!pending) return this.inner.run(cmd, opts);
    this.early.delete(key);
    const r = await pending;
    this.log.debug({ event: 'exec', argv: r.argv, exitCode: r.exitCode, signal: r.signal, durationMs: r.durationMs, prefetched: true }, `exec ${shownCommand(r.argv)} → ${r.exitCode} (${r.durationMs} ms, begun at start-up)`);
    if (r.exitCode !== 0 && opts.check !== false) throw new CommandFailedError(r);
    return r;
  }
}
