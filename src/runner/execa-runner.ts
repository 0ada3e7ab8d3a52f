// The one place that starts processes: execa with argv arrays, no shell; every call logged.
// execa is loaded at the first run: list and check, whose reads began at start-up, never need it.
import type { Logger } from 'pino';
import type { ChildGroups } from './children.js';
import { CommandFailedError, effectiveArgv, heldMarker, shownCommand, type Cmd, type HeldSession, type Runner, type RunOptions, type RunResult } from './types.js';

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

  async hold(cmd: Cmd): Promise<HeldSession> {
    const argv = effectiveArgv(cmd, this.uid);
    const { execa } = await import('execa');
    const started = performance.now();
    const sub = execa(argv[0]!, argv.slice(1), { ...childOptions(cmd, this.baseEnv), stdin: 'pipe', buffer: false });
    const pgid = sub.pid;
    if (pgid) await this.children?.add(pgid);
    let out = '';
    let err = '';
    let waiting: { marker: string; resolve: (s: string) => void } | undefined;
    sub.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const at = waiting ? out.indexOf(`${waiting.marker}\n`) : -1;
      if (waiting && at >= 0) {
        const w = waiting;
        waiting = undefined;
        const text = out.slice(0, at);
        out = out.slice(at + w.marker.length + 1);
        w.resolve(text.replace(/\n$/, ''));
      }
    });
    sub.stderr!.setEncoding('utf8').on('data', (d: string) => void (err += d));
    const ended = sub.then(
      (c) => ({ argv, exitCode: c.exitCode ?? 127, signal: c.signal ?? undefined, stdout: out, stderr: err, durationMs: Math.round(performance.now() - started) }) as RunResult,
      () => ({ argv, exitCode: 127, stdout: out, stderr: err, durationMs: Math.round(performance.now() - started) }) as RunResult,
    );
    void ended.then((r) => {
      if (pgid) this.children?.remove(pgid);
      this.log.debug({ event: 'exec', argv: r.argv, exitCode: r.exitCode, signal: r.signal, durationMs: r.durationMs, held: true }, `exec ${shownCommand(r.argv)} (held session) → ${r.exitCode} (${r.durationMs} ms)`);
    });
    let n = 0;
    return {
      query: (sql) =>
        new Promise<string>((resolve, reject) => {
          const marker = heldMarker(++n);
          waiting = { marker, resolve };
          // The session's end before the marker: the statement failed (ON_ERROR_STOP) or psql died.
          void ended.then((r) => waiting?.marker === marker && reject(new CommandFailedError({ ...r, exitCode: r.exitCode || 1 })));
          // Ended by a semicolon, or psql would keep it in its buffer past the \echo.
          const script = sql.trimEnd().replace(/;?$/, ';');
          sub.stdin!.write(`${script}\n\\echo ${marker}\n`);
        }),
      close: async () => {
        sub.stdin!.end();
        return ended;
      },
    };
  }

  private async once(cmd: Cmd, opts: RunOptions): Promise<RunResult> {
    const result = await execute(cmd, this.uid, this.baseEnv, this.children);
    this.log.debug(
      { event: 'exec', argv: result.argv, exitCode: result.exitCode, signal: result.signal, durationMs: result.durationMs },
      `exec ${shownCommand(result.argv)} → ${result.exitCode} (${result.durationMs} ms)`,
    );
    if (result.exitCode !== 0 && opts.check !== false) throw new CommandFailedError(result);
    return result;
  }
}


/** What every child of the runner gets, run to its end or held. */
const childOptions = (cmd: Cmd, baseEnv: Readonly<Record<string, string | undefined>>) => ({
  reject: false,
  shell: false,
  // A group of its own (setsid): a stale-lock check sees whether it outlives a killed pgmam.
  detached: true,
  // postgres cannot enter root's working directory; /tmp is readable by everyone.
  cwd: cmd.cwd ?? (cmd.asUser ? '/tmp' : undefined),
  env: { ...baseEnv, ...cmd.env, LC_ALL: 'C.UTF-8' },
  extendEnv: false,
});

async function execute(cmd: Cmd, uid: number, baseEnv: Readonly<Record<string, string | undefined>>, children: ChildGroups | undefined): Promise<RunResult> {
    const argv = effectiveArgv(cmd, uid);
    const { execa } = await import('execa');
    const started = performance.now();
    const sub = execa(argv[0]!, argv.slice(1), {
      ...childOptions(cmd, baseEnv),
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
