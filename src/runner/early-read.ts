// A read begun before the runner exists (runner/prefetch.ts): started with node's own spawn, argv
// only, no shell — execa's modules take longer to load than pg_lsclusters needs to start, and this
// read is what list and check wait on first.
import { spawn } from 'node:child_process';
import type { ChildGroups } from './children.js';
import { effectiveArgv, type Cmd, type RunResult } from './types.js';

/** As root (the early reads run only as root or as the user themself): the same argv, environment and group as the execa runner gives. */
export function startEarlyRead(cmd: Cmd, uid: number, baseEnv: Readonly<Record<string, string | undefined>>, children: ChildGroups): Promise<RunResult> {
  const argv = effectiveArgv(cmd, uid);
  const started = performance.now();
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const child = spawn(argv[0]!, argv.slice(1), {
      // A group of its own, as every child of pgmam (runner/children.ts).
      detached: true,
      cwd: cmd.asUser ? '/tmp' : undefined,
      env: { ...baseEnv, LC_ALL: 'C.UTF-8' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pgid = child.pid;
    if (pgid) void children.add(pgid);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let failure: Error | undefined;
    const text = (bs: Buffer[]) => Buffer.concat(bs).toString('utf8').replace(/\r?\n$/, '');
    // As execa reports them: a child that could not start or ended by a signal has exit code 127.
    const end = (code: number | null, signal: NodeJS.Signals | null) => {
      if (pgid) children.remove(pgid);
      resolve({ argv, exitCode: code ?? (failure || signal ? 127 : 0), signal: signal ?? undefined, stdout: text(out), stderr: failure && !err.length ? failure.message : text(err), durationMs: Math.round(performance.now() - started) });
    };
    child.on('error', (e) => {
      failure = e;
      if (pgid === undefined) end(null, null); // never started: no 'close' follows
    });
    child.on('close', end);
  });
}
