// commander wiring only: one loop over the commands' specs. Global flags once; each command's
// arguments and flags from its spec, parsed into options by its own zod schema. No domain logic.
import { Command, CommanderError, Option } from 'commander';
import type { Context } from '../context.js';
import type { CliArg, CliSpec } from '../plan/cli-spec.js';
import type { CommandModule, RunFlags } from '../plan/command.js';
import type { LogLevel } from '../log.js';
import type { CliCommand } from './commands.js';
import type { CliBatch } from '../plan/cli-spec.js';

export interface GlobalOptions {
  dryRun: boolean;
  yes: boolean;
  json: boolean;
  config?: string;
  logLevel: LogLevel;
}

/** What a parsed command line runs. A test swaps it to see the parsed options. */
export interface Dispatch {
  command<O extends RunFlags, F, J>(ctx: Context, m: CommandModule<O, F, J>, o: O): Promise<unknown>;
  batch<O>(ctx: Context, b: CliBatch<O>, o: O & RunFlags): Promise<unknown>;
}
// The runner is loaded once a command runs: help, --version and usage errors need none of it.
export const realDispatch: Dispatch = { command: async (ctx, m, o) => (await import('../plan/command.js')).runCommand(ctx, m, o), batch: (ctx, b, o) => b.run(ctx, o) };

/** The key a positional argument's value has in the raw input (default: the name in its syntax). */
export const argKey = (a: CliArg) => a.key ?? a.syntax.replace(/[<>[\].]/g, '');

/** Builds the Context once the global options (config file, log level) are known. */
export type ContextFactory = (g: GlobalOptions, command: string) => Promise<Context>;

function globals(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as Record<string, unknown>;
  const level = (o['quiet'] ? 'warn' : o['verbose'] ? 'debug' : (o['logLevel'] as LogLevel | undefined)) ?? 'info';
  return { dryRun: Boolean(o['dryRun']), yes: Boolean(o['yes']), json: Boolean(o['json']), config: o['config'] as string | undefined, logLevel: level };
}

const describe = (c: CliCommand) => (c.kind === 'module' ? { ...c.module.spec, cli: c.module.spec.cli! } : c.batch);

/** Each command's examples, by its name ('branch create'): the man pages show them. */
export const commandExamples = (commands: readonly CliCommand[]): Map<string, string[]> => new Map(commands.map((c) => [describe(c).name, describe(c).examples]));

/** A loaded command's name, as its spec gives it. */
export const commandName = (c: CliCommand) => describe(c).name;

function wire(cmd: Command, cli: CliSpec, examples: string[]): void {
  for (const a of cli.args ?? []) cmd.argument(a.syntax, a.help ?? '');
  for (const f of cli.flags ?? []) {
    const opt = new Option(f.flags, f.help);
    if (f.choices) opt.choices(f.choices);
    if (f.default !== undefined) opt.default(f.default);
    cmd.addOption(opt);
  }
  if (cli.keepOnError) cmd.option('--keep-on-error', 'if a step fails, keep what was made instead of undoing it');
  cmd.addHelpText('after', `\nExample:\n  ${examples.join('\n  ')}\n`);
}

const GROUPS: ReadonlyArray<[string, string]> = [
  ['branch', "independent clusters restored from a parent's backups"],
  ['tls', "TLS: pgmam's CA and each cluster's own server certificate"],
  ['repo', 'repositories: the local one, and S3 ones or repository hosts (pgBackRest TLS servers) beside it'],
  ['replica', 'streaming replicas of an app on this host, and failover to one'],
];

/** Commands that only read (no target to change): the only ones an unknown command's error may suggest. */
const readOnlyNames = (commands: readonly CliCommand[]) => commands.filter((c) => c.kind === 'module' && !c.module.spec.target).map(commandName);

/** Edit distance of two short words, a swap of neighbours counting one (optimal string alignment). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  return d[a.length]![b.length]!;
}

/** An unknown command's error, with the nearest read-only command when one is close (never one that changes anything). */
export function withSafeSuggestion(message: string, commands: readonly CliCommand[]): string {
  const m = /unknown command '([^']+)'/.exec(message);
  if (!m) return message;
  const typed = m[1]!;
  const near = readOnlyNames(commands)
    .map((n) => n.split(' ').at(-1)!)
    .map((n) => ({ n, d: distance(typed, n) }))
    .filter((x) => x.d <= Math.max(1, Math.floor(typed.length / 3)))
    .sort((a, b) => a.d - b.d)[0];
  return `${message.trimEnd()}${near ? ` (did you mean ${near.n}? it only reads)` : ''}; see pgmam --help\n`;
}

/** The program over the commands given (commands.ts loads only those a command line needs). */
export function buildProgram(
  makeContext: ContextFactory,
  meta: { version: string; selfPath: string; write: (s: string) => void; writeErr: (s: string) => void; dispatch?: Dispatch; commands: readonly CliCommand[] },
): Command {
  const dispatch = meta.dispatch ?? realDispatch;
  const program = new Command('pgmam')
    .description('Many PostgreSQL applications on one Debian host: one app = one cluster, each with its own pgBackRest stanza.')
    .version(meta.version, '--version')
    .option('--dry-run', 'print the plan (every step with its exact command line) and change nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--json', 'machine-readable output on stdout')
    .option('--config <file>', 'configuration file (default /etc/pgmam/pgmam.conf, or $PGMAM_CONFIG)')
    .addOption(new Option('--log-level <level>', 'stderr log level').choices(['debug', 'info', 'warn', 'error', 'silent']))
    .option('-q, --quiet', 'only warnings and errors on stderr')
    .option('-v, --verbose', 'also every command pgmam runs, on stderr')
    .showHelpAfterError(false)
    // commander's own "Did you mean drop?" for `pgmam stop`: never a command that changes anything.
    .showSuggestionAfterError(false)
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({ writeOut: meta.write, writeErr: meta.writeErr, outputError: (s, w) => w(withSafeSuggestion(s.startsWith('error:') ? `pgmam: ${s.slice(7)}` : s, meta.commands)) })
    .exitOverride();

  // The groups first (help lists them so), each only when a command of it is loaded.
  const names = meta.commands.map(commandName);
  const groups = new Map(GROUPS.filter(([g]) => names.some((n) => n.startsWith(`${g} `))).map(([g, help]) => [g, program.command(g).description(help).showSuggestionAfterError(false)]));
  for (const c of meta.commands) {
    const d = describe(c);
    const [first, sub] = d.name.split(' ') as [string, string | undefined];
    const cmd = (sub ? groups.get(first)! : program).command(sub ?? first).description(d.summary);
    wire(cmd, d.cli, d.examples);
    cmd.action(async (...params: unknown[]) => {
      const self = params.at(-1) as Command;
      const own = self.opts() as Record<string, unknown>;
      const raw: Record<string, unknown> = { ...own, selfPath: meta.selfPath };
      (d.cli.args ?? []).forEach((a, i) => (raw[argKey(a)] = params[i]));
      const g = globals(self);
      // Malformed values are usage errors (exit 2) before the configuration is read or anything runs.
      let input = d.cli.input.parse(raw);
      const ctx = await makeContext(g, d.name);
      if (d.cli.prepare) input = await d.cli.prepare(ctx, input);
      const o = { ...input, dryRun: g.dryRun, yes: g.yes, json: g.json, keepOnError: own['keepOnError'] === true };
      if (c.kind === 'module') await dispatch.command(ctx, c.module, o);
      else await dispatch.batch(ctx, c.batch, o);
    });
  }
  return program;
}

export { CommanderError };
