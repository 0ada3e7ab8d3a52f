// One-way translation of the legacy tools' argv into pgmam argv, before the program parses it; the
// program never knows legacy flags exist.
import { UsageError } from '../errors.js';
import { LEGACY_NAMES, type LegacyName } from '../legacy-names.js';

export { LEGACY_NAMES, type LegacyName };

/** Each legacy name's own flags, as its man page shows them, the pgmam line it becomes, and the command whose page documents it. */
export const LEGACY_USAGE: { readonly [N in LegacyName]: { synopsis: string; becomes: string; command: string } } = {
  initcluster: { synopsis: 'initcluster -a APP [-p PORT]', becomes: 'pgmam initcluster APP [--port PORT]', command: 'initcluster' },
  pitr: { synopsis: 'pitr -a APP -t TIME', becomes: 'pgmam pitr APP --to TIME', command: 'pitr' },
  pgbranch: { synopsis: 'pgbranch -c -a APP [-n NAME] | pgbranch -b BRANCH sync', becomes: 'pgmam branch create APP [--name NAME] | pgmam branch sync BRANCH', command: 'branch create' },
  pgbackup: { synopsis: 'pgbackup [-path DIR]', becomes: 'pgmam backup --all [--export-to DIR]', command: 'backup' },
};

export const isLegacyName = (n: string): n is LegacyName => (LEGACY_NAMES as readonly string[]).includes(n);

/** `pgbranch --help` (any legacy name): its own flags, what they become, and where the full help is. */
export function legacyHelp(name: LegacyName): string {
  const u = LEGACY_USAGE[name];
  return [
    `usage: ${u.synopsis}`,
    `  the same as: ${u.becomes}`,
    ...(name === 'pgbranch' ? ['  pgbranch -c alone asks on a terminal: the parent, the label, the port'] : []),
    '  also: -y/--yes, --dry-run, --json, -q, -v, --config FILE',
    `  the full help: pgmam ${u.command} --help (man pgmam-${u.command.replace(' ', '-')})`,
    '',
  ].join('\n');
}

/** Takes `-x VALUE` out of args; returns the value (or undefined). */
function take(args: string[], flags: string[]): string | undefined {
  const i = args.findIndex((a) => flags.includes(a));
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined) throw new UsageError(`${args[i]} needs a value`);
  args.splice(i, 2);
  return v;
}

function takeFlag(args: string[], flags: string[]): boolean {
  const i = args.findIndex((a) => flags.includes(a));
  if (i < 0) return false;
  args.splice(i, 1);
  return true;
}

export function translateLegacy(name: LegacyName, argv: readonly string[]): string[] {
  const args = [...argv];
  if (args.includes('--help') || args.includes('-h')) return [legacyCommand(name), '--help'];
  switch (name) {
    case 'initcluster': {
      const app = take(args, ['-a', '--app']);
      const port = take(args, ['-p', '--port']);
      return ['initcluster', ...(app !== undefined ? [app] : []), ...(port !== undefined ? ['--port', port] : []), ...args];
    }
    case 'pitr': {
      const app = take(args, ['-a', '--app']);
      const to = take(args, ['-t', '--time']);
      return ['pitr', ...(app !== undefined ? [app] : []), ...(to !== undefined ? ['--to', to] : []), ...args];
    }
    case 'pgbranch': {
      const create = takeFlag(args, ['-c', '--create']);
      const branch = take(args, ['-b', '--branch']);
      if (create) {
        const parent = take(args, ['-a', '--app']);
        const label = take(args, ['-n', '--name']);
        return ['branch', 'create', ...(parent !== undefined ? [parent] : []), ...(label !== undefined ? ['--name', label] : []), ...args];
      }
      if (branch !== undefined) {
        const i = args.indexOf('sync');
        if (i < 0) throw new UsageError('pgbranch -b <branch> needs an action: sync');
        args.splice(i, 1);
        return ['branch', 'sync', branch, ...args];
      }
      throw new UsageError('pgbranch needs -c (create) or -b <branch> sync');
    }
    case 'pgbackup': {
      // The original spells it with one dash: -path DIR.
      const dir = take(args, ['-path', '--path']);
      return ['backup', '--all', ...(dir !== undefined ? ['--export-to', dir] : []), ...args];
    }
  }
}

const legacyCommand = (n: LegacyName) => ({ initcluster: 'initcluster', pitr: 'pitr', pgbranch: 'branch', pgbackup: 'backup' })[n];
