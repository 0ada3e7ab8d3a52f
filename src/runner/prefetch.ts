// Reads started before the runner existed: `list` and `check` begin with pg_lsclusters (a Perl script
// that reads every cluster's configuration, the slowest read they make), so main starts it while the
// command's modules load. The first identical run takes that result; every later one runs anew.
import type { Logger } from 'pino';
import { CommandFailedError, renderArgv, type Cmd, type Runner, type RunOptions, type RunResult } from './types.js';

/** A read begun early, by its argv. Only a plain read of root's own (no user, input or environment) qualifies. */
export type Prefetched = Map<string, Promise<RunResult>>;

export const prefetchKey = (argv: readonly string[]) => renderArgv(argv);

export class PrefetchRunner implements Runner {
  constructor(
    private readonly inner: Runner,
    private readonly early: Prefetched,
    private readonly log: Logger,
  ) {}

  async run(cmd: Cmd, opts: RunOptions = {}): Promise<RunResult> {
    const key = prefetchKey(cmd.argv);
    const pending = cmd.effect === 'read' && !cmd.asUser && !cmd.input && !cmd.env && !cmd.cwd ? this.early.get(key) : undefined;
    if (!pending) return this.inner.run(cmd, opts);
    this.early.delete(key);
    const r = await pending;
    this.log.debug({ event: 'exec', argv: r.argv, exitCode: r.exitCode, signal: r.signal, durationMs: r.durationMs, prefetched: true }, `exec ${r.argv[0]} → ${r.exitCode} (${r.durationMs} ms, begun at start-up)`);
    if (r.exitCode !== 0 && opts.check !== false) throw new CommandFailedError(r);
    return r;
  }
}
