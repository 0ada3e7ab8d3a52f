// The only file that touches `process`: argv, environment, terminal, exit code.
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { createRequire } from 'node:module';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context, ProgressLine } from './context.js';
import { ExitCode, PgmamError } from './errors.js';
import { ChildGroups } from './runner/children.js';
import { commandsFor, configFlag } from './cli/commands.js';
import { isLegacyName, legacyHelp, translateLegacy } from './cli/legacy.js';
import type { GlobalOptions } from './cli/program.js';
import type { Prefetched } from './runner/prefetch.js';

declare const PGMAM_VERSION: string;
const version = typeof PGMAM_VERSION === 'string' ? PGMAM_VERSION : '0.0.0-dev';

// A live progress line is wiped before any other output, so the two never mix; the next tick redraws it.
let progressShown = false;
const clearProgress = () => {
  if (progressShown) process.stderr.write('\r\x1b[K');
  progressShown = false;
};
const progressLine: ProgressLine = {
  show(line) {
    const width = Math.max(20, (process.stderr.columns || 80) - 1);
    process.stderr.write(`\r\x1b[K${line.length > width ? line.slice(0, width) : line}`);
    progressShown = true;
  },
  clear: clearProgress,
};
/** Whether a result reached stdout: under --json, an error object is printed only where none did (one JSON document). */
let wroteResult = false;
const write = (s: string) => {
  clearProgress();
  wroteResult = true;
  process.stdout.write(s);
};
const writeErr = (s: string) => {
  clearProgress();
  process.stderr.write(s);
};

function signalExists(target: number): boolean {
  try {
    process.kill(target, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
const isProcessAlive = (pid: number) => signalExists(pid);
const isGroupAlive = (pgid: number) => pgid > 1 && signalExists(-pgid);

const children = new ChildGroups();
let interruptedBy: string | undefined;
// Children run in groups of their own, so a Ctrl-C on the terminal reaches only pgmam: pass it on,
// and let the step fail (and be undone) instead of leaving a restore running behind a dead pgmam.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    interruptedBy = sig;
    for (const g of children.current()) {
      try {
        process.kill(-g, sig);
      } catch {
        // already gone
      }
    }
  });
}

/** Reads begun before the context exists (see runner/prefetch.ts). */
const early: Prefetched = new Map();

/** The configuration, read once per run (the early reads of list and check need it before commander parses). */
const configs = new Map<string, ReturnType<typeof readConfig>>();
const loadConfig = (flag: string | undefined) => {
  let c = configs.get(flag ?? '');
  if (!c) configs.set(flag ?? '', (c = readConfig(flag)));
  return c;
};
async function readConfig(flag: string | undefined) {
  const { configSource, parseConfig } = await import('./config/load.js');
  const source = configSource(flag, process.env['PGMAM_CONFIG']);
  let text: string | undefined;
  try {
    text = existsSync(source.path) ? readFileSync(source.path, 'utf8') : undefined;
  } catch (e) {
    throw new PgmamError(`cannot read ${source.path}: ${(e as Error).message}`, ExitCode.config);
  }
  return { source, config: parseConfig(source, text) };
}

/**
 * list and check wait, as root, on one `pgbackrest info` of the configured repository: it begins while
 * the command's modules load. (The clusters they read from their files, not from pg_lsclusters.) A
 * configuration that does not parse starts nothing here (the command reports it).
 */
async function startEarlyReads(args: readonly string[]): Promise<void> {
  const [{ startEarlyRead }, { prefetchKey }] = await Promise.all([import('./runner/early-read.js'), import('./runner/prefetch.js')]);
  const uid = process.getuid?.() ?? 0;
  const start = (cmd: Parameters<typeof startEarlyRead>[0]) => early.set(prefetchKey(cmd), startEarlyRead(cmd, uid, process.env, children));
  if (uid !== 0) return;
  const { config } = await loadConfig(configFlag(args)).catch(() => ({ config: undefined }));
  if (!config) return;
  const [{ info, repoScope }, { FALLBACK_REPO_PATH, MAIN_CONFIG_FILES, parseMainConfig }] = await Promise.all([import('./pgbackrest/commands.js'), import('./pgbackrest/config.js')]);
  // Unset, the repository is pgBackRest's own repo1-path (as repoPathFrom reads it), else its default.
  const readable = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return undefined;
    }
  };
  const repoPath = config['repo-path'] || parseMainConfig(MAIN_CONFIG_FILES.map((f) => [f, readable(f)])).globalRepoPath || FALLBACK_REPO_PATH;
  start(info(repoScope(repoPath, config['stanza-dir'])));
}

async function makeContext(g: GlobalOptions, command: string): Promise<Context> {
  // Loaded here, not at start-up: `pgmam --version` and a usage error need none of them.
  const [{ source, config }, { pathsFrom }, { nodeFs }, { createLogger }, { ExecaRunner }, { PrefetchRunner }] = await Promise.all([
    loadConfig(g.config),
    import('./context.js'),
    import('./host-fs.js'),
    import('./log.js'),
    import('./runner/execa-runner.js'),
    import('./runner/prefetch.js'),
  ]);
  const paths = pathsFrom(config);
  const uid = process.getuid?.() ?? 0;
  const { log, fileProblem } = createLogger({ file: uid === 0 ? paths.logFile : undefined, stderrLevel: g.logLevel, writeErr, command });
  if (fileProblem) log.warn(fileProblem);
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  // Only for a person watching: never into a pipe or a file, under --json, or when asked to be quiet.
  const progress = process.stdout.isTTY && process.stderr.isTTY && !g.json && (g.logLevel === 'info' || g.logLevel === 'debug') ? progressLine : undefined;
  return {
    runner: new PrefetchRunner(new ExecaRunner(log, uid, process.env, children), early, log),
    children,
    fs: nodeFs,
    clock: { now: () => new Date() },
    log,
    io: { out: write, err: writeErr, interactive, columns: process.stdout.columns || Number(process.env['COLUMNS']) || 80, quiet: g.logLevel !== 'info' && g.logLevel !== 'debug', ...(progress ? { progress } : {}) },
    prompter: {
      async confirm(message) {
        const { confirm } = await import('@inquirer/prompts');
        return confirm({ message, default: false });
      },
      async typeToConfirm(message, expected) {
        const { input } = await import('@inquirer/prompts');
        return (await input({ message: `${message} Type ${expected} to confirm:` })) === expected;
      },
      async choose(message, choices) {
        const { select } = await import('@inquirer/prompts');
        return select({ message, choices: choices.map((c) => ({ name: c, value: c })) });
      },
      async ask(message, defaultValue, validate) {
        const { input } = await import('@inquirer/prompts');
        return input({ message, default: defaultValue, ...(validate ? { validate } : {}) });
      },
    },
    config,
    configFile: source.explicit ? source.path : undefined,
    paths,
    host: { uid, name: hostname(), systemd: existsSync('/run/systemd/system'), path: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', pid: process.pid,
      isProcessAlive,
      isGroupAlive,
      interrupted: () => interruptedBy,
      pauseBefore: process.env['PGMAM_TEST_PAUSE_BEFORE'] || undefined,
    },
    version,
  };
}

/**
 * The executable cron, systemd and the legacy links should run: the standalone file itself (its links
 * resolve to it), or bin/pgmam beside the bundle of a clone. The name it was invoked as picks a legacy
 * translation: a link's own name (argv0 for the standalone file, whose argv[1] is its resolved path).
 */
function self(): { path: string; invokedAs: string } {
  if (isStandalone()) return { path: process.execPath, invokedAs: basename(process.argv0) };
  return { path: fileURLToPath(new URL('../bin/pgmam', import.meta.url)), invokedAs: basename(process.argv[1] ?? 'pgmam') };
}

function isStandalone(): boolean {
  try {
    return createRequire(import.meta.url)('node:sea').isSea() === true;
  } catch {
    return false; // node:sea is missing before Node 20.12: not a standalone executable either
  }
}

async function main(): Promise<number> {
  const { path: selfPath, invokedAs } = self();
  try {
    // A legacy name's help is its own usage (the legacy flags), not pgmam's.
    if (isLegacyName(invokedAs) && process.argv.slice(2).some((a) => a === '--help' || a === '-h')) {
      write(legacyHelp(invokedAs));
      return ExitCode.ok;
    }
    const args = isLegacyName(invokedAs) ? translateLegacy(invokedAs, process.argv.slice(2)) : process.argv.slice(2);
    // The version alone needs no command line parser: it answers before commander (and the child
    // process module it loads) is read, as commander would (`pgmam --version`, `-V`).
    if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
      write(`${version}\n`);
      return ExitCode.ok;
    }
    // Only the command this line runs is loaded (every one for help or a misspelt command).
    const loaders = commandsFor(args);
    // list and check wait on pgBackRest first: it runs while their modules load.
    if (loaders.length === 1 && loaders[0]!.readsRepoFirst && !args.some((a) => a === '--help' || a === '-h')) await startEarlyReads(args);
    await import('./zod-setup.js');
    const [commands, { buildProgram }] = await Promise.all([Promise.all(loaders.map((c) => c.load())), import('./cli/program.js')]);
    const program = buildProgram(makeContext, { version, selfPath, write, writeErr, commands });
    if (args.length === 0) {
      program.outputHelp();
      return ExitCode.usage;
    }
    await program.parseAsync(args, { from: 'user' });
    return ExitCode.ok;
  } catch (e) {
    // Under --json an error is also one JSON object on stdout: a script reads it where it reads results.
    const json = wantsJson(process.argv.slice(2)) && !wroteResult;
    if (isCommanderError(e)) {
      const code = e.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
      if (json && code !== ExitCode.ok) write(`${JSON.stringify({ error: { code, message: (e as unknown as Error).message.replace(/^error: /, '') } })}\n`);
      return code;
    }
    if (e instanceof PgmamError) {
      for (const line of e.lines) writeErr(`${line}\n`);
      if (json) write(`${JSON.stringify({ error: errorObject(e) })}\n`);
      return e.exitCode;
    }
    writeErr(`pgmam: internal error (a bug): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return ExitCode.internal;
  }
}

/** --json among the options (before a `--`). */
const wantsJson = (args: readonly string[]) => {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).includes('--json');
};

/** An error as --json prints it: its exit code, its message and, for a refusal, every failed guard. */
function errorObject(e: PgmamError): Record<string, unknown> {
  const failures = (e as PgmamError & { failures?: ReadonlyArray<{ id: string; reason: string; hint?: string }> }).failures;
  return { code: e.exitCode, message: e.message, ...(failures ? { refusals: failures.map((f) => ({ guard: f.id, reason: f.reason, ...(f.hint ? { hint: f.hint } : {}) })) } : {}) };
}

/** commander's own exit (help, a usage error), told apart without loading commander for it. */
const isCommanderError = (e: unknown): e is { exitCode: number } => e instanceof Error && String((e as Error & { code?: unknown }).code).startsWith('commander.');

// `pgmam list | head` closes stdout early: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

// No top-level await: the standalone executable's entry is CommonJS.
void main().then((code) => {
  process.exitCode = code;
});
