// Man pages and bash completion, made from the program the command line parses (buildProgram over
// the commands' specs), so they never drift from it. Pure: text in, text out; scripts/deb.mjs writes them.
import type { Argument, Command, Option } from 'commander';
import { configTable } from '../config/help.js';
import { DEFAULT_CONFIG_FILE } from '../config/schema.js';
import { EXIT_MEANINGS } from '../errors.js';
import { LEGACY_NAMES } from '../names.js';
import { LEGACY_USAGE } from './legacy.js';
import { loadAllCommands, type CliCommand } from './commands.js';
import { buildProgram, commandExamples } from './program.js';

export interface ManPage {
  /** File name without the section: pgmam, pgmam-branch-create, initcluster. */
  name: string;
  text: string;
}

/** The program as the command line has it, every command loaded; nothing runs (no context is ever made). */
export async function docsProgram(version: string): Promise<{ program: Command; commands: CliCommand[] }> {
  const none = async () => {
    throw new Error('documentation only');
  };
  const commands = await loadAllCommands();
  return { program: buildProgram(none, { version, selfPath: '/usr/sbin/pgmam', write: () => {}, writeErr: () => {}, commands }), commands };
}

/** Every command that runs something, with its path from the program ('branch create'). */
export function leaves(program: Command): Array<{ path: string; cmd: Command }> {
  const out: Array<{ path: string; cmd: Command }> = [];
  const walk = (c: Command, prefix: string[]) => {
    for (const sub of c.commands) {
      const path = [...prefix, sub.name()];
      if (sub.commands.length) walk(sub, path);
      else out.push({ path: path.join(' '), cmd: sub });
    }
  };
  walk(program, []);
  return out;
}

/** roff text: backslashes escaped, hyphens as minus signs, no line starting as a request. */
function roff(s: string): string {
  return s
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/^([.'])/gm, '\\&$1');
}

const optionLine = (o: Option) => `.TP\n.B ${roff(o.flags)}\n${roff(optionHelp(o))}`;
function optionHelp(o: Option): string {
  const extra = [o.argChoices ? `one of: ${o.argChoices.join(', ')}` : '', o.defaultValue !== undefined && o.defaultValue !== false ? `default: ${String(o.defaultValue)}` : ''].filter(Boolean);
  return extra.length ? `${o.description} (${extra.join('; ')})` : o.description;
}
const argSyntax = (a: Argument) => {
  const n = `${a.name()}${a.variadic ? '...' : ''}`;
  return a.required ? `<${n}>` : `[${n}]`;
};

function header(name: string, version: string, date: string): string[] {
  return [`.TH ${roff(name.toUpperCase())} 8 "${date}" "pgmam ${version}" "pgmam manual"`];
}

const exitStatus = () => ['.SH EXIT STATUS', ...Object.entries(EXIT_MEANINGS).flatMap(([code, m]) => ['.TP', `.B ${code}`, roff(m)])];
const globalOptions = (program: Command) => ['.SH GLOBAL OPTIONS', ...program.options.map(optionLine)];
const manName = (path: string) => `pgmam-${path.replace(/ /g, '-')}`;

function commandPage(program: Command, path: string, cmd: Command, examples: string[], version: string, date: string): ManPage {
  const name = manName(path);
  const legacy = LEGACY_NAMES.filter((n) => LEGACY_USAGE[n].command === path);
  const lines = [
    ...header(name, version, date),
    '.SH NAME',
    `${roff(name)} \\- ${roff(cmd.description())}`,
    '.SH SYNOPSIS',
    `.B pgmam ${roff(path)}`,
    roff(['[options]', ...cmd.registeredArguments.map(argSyntax)].join(' ')),
    '.SH DESCRIPTION',
    roff(`${cmd.description()}.`),
    roff('Every command gathers facts read-only and checks every guard before it changes anything; --dry-run prints each step with its exact command line and changes nothing.'),
    ...(cmd.registeredArguments.length ? ['.SH ARGUMENTS', ...cmd.registeredArguments.flatMap((a) => ['.TP', `.I ${roff(a.name())}`, roff(a.description || a.name())])] : []),
    ...(cmd.options.length ? ['.SH OPTIONS', ...cmd.options.map(optionLine)] : []),
    ...globalOptions(program),
    ...(examples.length ? ['.SH EXAMPLES', '.nf', ...examples.map(roff), '.fi'] : []),
    ...(legacy.length ? ['.SH LEGACY NAME', ...legacy.flatMap((n) => ['.TP', `.B ${roff(LEGACY_USAGE[n].synopsis)}`, roff(`runs ${LEGACY_USAGE[n].becomes}`)])] : []),
    ...exitStatus(),
    '.SH SEE ALSO',
    '.BR pgmam (8)',
    '',
  ];
  return { name, text: lines.join('\n') };
}

function mainPage(program: Command, version: string, date: string): ManPage {
  const all = leaves(program);
  const lines = [
    ...header('pgmam', version, date),
    '.SH NAME',
    'pgmam \\- many PostgreSQL applications on one Debian host, one cluster and one pgBackRest stanza each',
    '.SH SYNOPSIS',
    '.B pgmam',
    '[global options] command [options] [arguments]',
    '.br',
    '.B initcluster \\-a',
    '.I app',
    '(and the other legacy names: pitr, pgbranch, pgbackup)',
    '.SH DESCRIPTION',
    roff(program.description()),
    roff('Every app is one PostgreSQL cluster with its own data directory, port, WAL stream, pgBackRest stanza and backup history. Every cluster is created with WAL archiving, its own stanza and a first full backup.'),
    roff("Recovery keeps the old data directory; branches are independent clusters restored from a parent's backups."),
    roff('Every command checks its guards before anything changes and refuses with one message and an exit code; every command that changes anything keeps a journal, and the re-run that'),
    '.B pgmam list',
    'prints after an interruption finishes or undoes it.',
    '.SH COMMANDS',
    ...all.flatMap(({ path, cmd }) => ['.TP', `.B pgmam ${roff(path)}`, `${roff(cmd.description())}; see`, `.BR ${roff(manName(path))} (8).`]),
    '.SH LEGACY NAMES',
    'Links to the same executable in /usr/sbin; each translates its own flags:',
    ...LEGACY_NAMES.flatMap((n) => ['.TP', `.B ${roff(LEGACY_USAGE[n].synopsis)}`, roff(`runs ${LEGACY_USAGE[n].becomes}`)]),
    ...globalOptions(program),
    '.SH CONFIGURATION',
    roff(`${DEFAULT_CONFIG_FILE} (INI; or --config FILE, or PGMAM_CONFIG). Keys, with their defaults:`),
    ...configTable().flatMap((r) => ['.TP', `.B ${roff(r.key)}`, roff(`${r.help} Default: ${r.value === '' ? '(empty)' : r.value}.`)]),
    '.SH ENVIRONMENT',
    '.TP',
    '.B PGMAM_CONFIG',
    roff('the configuration file when --config is not given'),
    '.SH FILES',
    '.TP',
    `.B ${roff(DEFAULT_CONFIG_FILE)}`,
    'configuration',
    '.TP',
    '.B /var/lib/pgmam',
    "pgmam's own state: cluster records, locks, journals, repositories",
    '.TP',
    '.B /var/log/pgmam/pgmam.log',
    roff('JSON-lines log of every command pgmam runs'),
    '.TP',
    '.B /etc/cron.d/pgmam',
    roff('the schedule pgmam schedule install writes (systemd timers pgmam-backup.timer where systemd runs)'),
    ...exitStatus(),
    '.SH SEE ALSO',
    '.BR pgbackrest (1),',
    '.BR pg_createcluster (1),',
    '.BR pg_lsclusters (1)',
    '',
  ];
  return { name: 'pgmam', text: lines.join('\n') };
}

/** pgmam(8), one page per command, and one per legacy name (a .so of its command's page). */
export async function manPages(version: string, date: string): Promise<ManPage[]> {
  const { program, commands } = await docsProgram(version);
  const examples = commandExamples(commands);
  const pages = [mainPage(program, version, date), ...leaves(program).map(({ path, cmd }) => commandPage(program, path, cmd, examples.get(path) ?? [], version, date))];
  return [...pages, ...LEGACY_NAMES.map((n) => ({ name: n, text: `.so man8/${manName(LEGACY_USAGE[n].command)}.8\n` }))];
}

/** Bash completion of pgmam: commands, subcommands, flags, flag choices, and cluster names for arguments. */
export async function bashCompletion(version: string): Promise<string> {
  const { program } = await docsProgram(version);
  const globals = program.options.flatMap((o) => [o.short, o.long].filter((x): x is string => Boolean(x)));
  const groups = program.commands.filter((c) => c.commands.length);
  const caseLines: string[] = [];
  for (const { path, cmd } of leaves(program)) {
    const flags = cmd.options.flatMap((o) => [o.short, o.long].filter((x): x is string => Boolean(x)));
    const choices = cmd.options.filter((o) => o.argChoices && o.long).map((o) => `${o.long}) COMPREPLY=($(compgen -W '${o.argChoices!.join(' ')}' -- "$cur")); return ;;`);
    caseLines.push(
      `    '${path}')`,
      ...(choices.length ? ['      case "$prev" in', ...choices.map((c) => `        ${c}`), '      esac'] : []),
      `      flags='${[...flags, ...globals].join(' ')}'`,
      `      args=${cmd.registeredArguments.length ? 1 : 0} ;;`,
    );
  }
  return [
    `# bash completion for pgmam ${version} (made from its command specs)`,
    '_pgmam() {',
    '  local cur prev words cword',
    '  cur="${COMP_WORDS[COMP_CWORD]}"',
    '  prev="${COMP_WORDS[COMP_CWORD-1]}"',
    '  local path="" w i n=0',
    // The command path: the first words that are not flags (group, then subcommand).
    '  for ((i = 1; i < COMP_CWORD; i++)); do',
    '    w="${COMP_WORDS[i]}"',
    '    case "$w" in -*) continue ;; esac',
    '    case "$path" in',
    `      '') path="$w" ;;`,
    ...groups.map((g) => `      ${g.name()}) path="${g.name()} $w" ;;`),
    '      *) n=$((n + 1)) ;;',
    '    esac',
    '  done',
    '  case "$prev" in --config|--export-to|--*-file|--*-dir|--prefix) COMPREPLY=($(compgen -f -- "$cur")); return ;; esac',
    '  local flags="" args=0',
    '  case "$path" in',
    `    '') COMPREPLY=($(compgen -W '${program.commands.map((c) => c.name()).join(' ')} ${globals.join(' ')}' -- "$cur")); return ;;`,
    ...groups.map((g) => `    ${g.name()}) COMPREPLY=($(compgen -W '${g.commands.map((c) => c.name()).join(' ')}' -- "$cur")); return ;;`),
    ...caseLines,
    '  esac',
    '  if [[ "$cur" == -* || $args -eq 0 ]]; then',
    '    COMPREPLY=($(compgen -W "$flags" -- "$cur"))',
    '  else',
    // Arguments name clusters: the host's own list, read from postgresql-common's directories (no pgmam run).
    '    COMPREPLY=($(compgen -W "$(cd /etc/postgresql 2>/dev/null && for d in */*/; do d=${d%/}; echo "${d#*/}"; done)" -- "$cur"))',
    '  fi',
    '}',
    'complete -F _pgmam pgmam',
    '',
  ].join('\n');
}
