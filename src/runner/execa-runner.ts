// The one place that starts processes: execa with argv arrays, no shell; every call logged.
// execa is loaded at the first run: list and check, whose reads began at start-up, never need it.
import type { Logger } from 'pino';
import type { ChildGroups } from './children.js';
import { CommandFailedError, effectiveArgv, type Cmd, type Runner, type RunOptions, type RunResult } from './types.js';

export class ExecaRunner implements Runner {
  constructor(
    private readonly log: Logger,
    private readonly uid: number,
    private readonly baseEnv: Readonly<Record<string, string | undefined>>,
    private readonly children?: ChildGroups,
  ) {}

  async run(cmd: Cmd, opts: RunOptions = {}): Promise<RunResult> {
    for (let attempt = 1; cmd.retry && attempt < cmd.retry.attempts; attempt++) {
      const r = await this.once(cmd, { check: false });
      if (r.exitCode !== cmd.retry.exitCode) {
        if (r.exitCode !== 0 && opts.check !== false) throw new CommandFailedError(r);
        return r;
      }
      await new Promise((ok) => setTimeout(ok, cmd.retry!.delayMs));
    }
    return this.once(cmd, opts);
  }

  private async once(cmd: Cmd, opts: RunOptions): Promise<RunResult> {
    const result = await execute(cmd, this.uid, this.baseEnv, this.children);
    this.log.debug(
      { event: 'exec', argv: result.argv, exitCode: result.exitCode, signal: result.signal, durationMs: result.durationMs },
      `exec ${result.argv[0]} → ${result.exitCode} (${result.durationMs} ms)`,
    );
    if (result.exitCode !== 0 && opts.check !== false) throw new CommandFailedError(result);
    return result;
  }
}

async function execute(cmd: Cmd, uid: number, baseEnv: Readonly<Record<string, string | undefined>>, children: ChildGroups | undefined): Promise<RunResult> {
    const argv = effectiveArgv(cmd, uid);
    const { execa } = await import('execa');
    const started = performance.now();
    const sub = execa(argv[0]!, argv.slice(1), {
      reject: false,
      shell: false,
      // A group of its own (setsid): a stale-lock check sees whether it outlives a killed pgmam.
      detached: true,
      // postgres cannot enter root's working directory; /tmp is readable by everyone.
      cwd: cmd.cwd ?? (cmd.asUser ? '/tmp' : undefined),
      env: { ...baseEnv, ...cmd.env, LC_ALL: 'C.UTF-8' },
      extendEnv: false,
      input: cmd.input,
      stdin: cmd.input === undefined ? 'ignore' : undefined,
      timeout: cmd.timeoutMs,
      stripFinalNewline: true,
    });
    const pgid = sub.pid;
    if (pgid) await children?.add(pgid);
    const child = await sub.finally(() => pgid && children?.remove(pgid));
    return {
      argv,
      exitCode: child.exitCode ?? (child.failed ? 127 : 0),
      signal: child.signal ?? undefined,
      stdout: typeof child.stdout === 'string' ? child.stdout : '',
      stderr: typeof child.stderr === 'string' ? child.stderr : (child.failed && !child.exitCode ? String(child.message) : ''),
      durationMs: Math.round(performance.now() - started),
    };
}

/**
 * For the file layer (host-fs): one coreutils command as `user` — how root writes in a directory
 * another user owns without following links that user could plant. Argv only; throws on failure.
 */
export async function runAsOwner(user: string, argv: string[], input?: string, cwd = '/tmp'): Promise<void> {
  const { execa } = await import('execa');
  const r = await execa('runuser', ['-u', user, '--', ...argv], { input, stdin: input === undefined ? 'ignore' : undefined, reject: false, shell: false, cwd, env: { LC_ALL: 'C.UTF-8', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, extendEnv: false });
  if (r.exitCode !== 0) throw new Error(`runuser -u ${user} -- ${argv.join(' ')} failed: ${String(r.stderr).trim()}`);
}
