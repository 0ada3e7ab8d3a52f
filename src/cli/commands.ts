// Every command on the command line, in the order `pgmam --help` lists them, each loaded only when the
// command line needs it: a run evaluates its own command's modules, not all of them (start-up time).
// Only cli/ imports commands/.
import type { CliBatch } from '../plan/cli-spec.js';
import type { CommandModule } from '../plan/command.js';

/** A module run by runCommand, or a batch over targets; each parses its own options. */
export type CliCommand = { kind: 'module'; module: CommandModule<any, any, any> } | { kind: 'batch'; batch: CliBatch<any> };

/** A command not loaded yet, by the name its spec gives it (a unit test holds the two equal). */
export interface CommandLoader {
  name: string;
  load(): Promise<CliCommand>;
  /** Read-only commands whose first read is `pgbackrest info` of the configured repository: main may start it while they load. */
  readsRepoFirst?: boolean;
}

const m = (name: string, load: () => Promise<CommandModule<any, any, any>>, more: Pick<CommandLoader, 'readsRepoFirst'> = {}): CommandLoader => ({ name, load: async () => ({ kind: 'module', module: await load() }), ...more });
const b = (name: string, load: () => Promise<CliBatch<any>>): CommandLoader => ({ name, load: async () => ({ kind: 'batch', batch: await load() }) });

export const COMMAND_LOADERS: CommandLoader[] = [
  m('initcluster', () => import('../commands/initcluster/initcluster.js').then((x) => x.initClusterCommand)),
  m('pitr', () => import('../commands/pitr/pitr.js').then((x) => x.pitrCommand)),
  b('backup', () => import('../commands/backup/backup.js').then((x) => x.backupBatch)),
  b('export', () => import('../commands/export/export.js').then((x) => x.exportBatch)),
  m('resetwal', () => import('../commands/resetwal/resetwal.js').then((x) => x.resetwalCommand)),
  m('drop', () => import('../commands/drop/drop.js').then((x) => x.dropCommand)),
  m('schedule', () => import('../commands/schedule/schedule.js').then((x) => x.scheduleCommand)),
  m('branch create', () => import('../commands/branch/create.js').then((x) => x.branchCreateCommand)),
  m('branch sync', () => import('../commands/branch/sync.js').then((x) => x.branchSyncCommand)),
  m('branch list', () => import('../commands/branch/list.js').then((x) => x.branchListCommand)),
  m('branch drop', () => import('../commands/drop/drop.js').then((x) => x.branchDropCommand)),
  m('list', () => import('../commands/list/list.js').then((x) => x.listCommand), { readsRepoFirst: true }),
  m('install-links', () => import('../commands/install-links/install-links.js').then((x) => x.installLinksCommand)),
  m('check', () => import('../commands/check/check.js').then((x) => x.checkCommand), { readsRepoFirst: true }),
  b('drill', () => import('../commands/drill/drill.js').then((x) => x.drillBatch)),
  m('show', () => import('../commands/show/show.js').then((x) => x.showCommand)),
  m('status', () => import('../commands/control/control.js').then((x) => x.statusCommand)),
  m('start', () => import('../commands/control/control.js').then((x) => x.startCommand)),
  m('stop', () => import('../commands/control/control.js').then((x) => x.stopCommand)),
  m('restart', () => import('../commands/control/control.js').then((x) => x.restartCommand)),
  m('conninfo', () => import('../commands/conninfo/conninfo.js').then((x) => x.conninfoCommand)),
  m('logs', () => import('../commands/logs/logs.js').then((x) => x.logsCommand)),
  m('set-port', () => import('../commands/set-port/set-port.js').then((x) => x.setPortCommand)),
  m('adopt', () => import('../commands/adopt/adopt.js').then((x) => x.adoptCommand)),
  m('prune', () => import('../commands/prune/prune.js').then((x) => x.pruneCommand)),
  m('purge', () => import('../commands/purge/purge.js').then((x) => x.purgeCommand)),
  b('repo add', () => import('../commands/repo/add-cli.js').then((x) => x.repoAddCli)),
  m('repo list', () => import('../commands/repo/list.js').then((x) => x.repoListCommand)),
  b('repo attach', () => import('../commands/repo/attach.js').then((x) => x.repoAttachBatch)),
  b('repo detach', () => import('../commands/repo/attach.js').then((x) => x.repoDetachBatch)),
  m('repo remove', () => import('../commands/repo/remove.js').then((x) => x.repoRemoveCommand)),
  m('repo serve', () => import('../commands/repo/serve.js').then((x) => x.repoServeCommand)),
  b('repo backup-clients', () => import('../commands/repo/backup-clients.js').then((x) => x.backupClientsBatch)),
  m('recover', () => import('../commands/recover/recover.js').then((x) => x.recoverCommand)),
  m('tls show', () => import('../commands/tls/show.js').then((x) => x.tlsShowCommand)),
  b('tls renew', () => import('../commands/tls/renew.js').then((x) => x.tlsRenewBatch)),
  m('tls enable', () => import('../commands/tls/renew.js').then((x) => x.tlsEnableCommand)),
  m('replica create', () => import('../commands/replica/create.js').then((x) => x.replicaCreateCommand)),
  m('replica promote', () => import('../commands/replica/promote.js').then((x) => x.replicaPromoteCommand)),
  m('replica rebuild', () => import('../commands/replica/rebuild.js').then((x) => x.replicaRebuildCommand)),
  m('replica drop', () => import('../commands/drop/drop.js').then((x) => x.replicaDropCommand)),
];

/** Every command, loaded (help, documentation, tests). */
export const loadAllCommands = () => Promise.all(COMMAND_LOADERS.map((l) => l.load()));

/** The global options that take a value: the word after them is not a command's name. */
const VALUED_GLOBALS = ['--config', '--log-level'];

/** The --config a command line names, read before commander parses it (the early reads of list and check). */
export function configFlag(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a === '--config') return args[i + 1];
    if (a.startsWith('--config=')) return a.slice('--config='.length);
  }
  return undefined;
}

/**
 * The commands a command line needs: the one its first words name ('branch create'), or a group's
 * ('branch --help'); none for `pgmam --version`; every one when the words name none (help, a
 * misspelt command: commander lists them).
 */
export function commandsFor(args: readonly string[]): CommandLoader[] {
  const words: string[] = [];
  for (let i = 0; i < args.length && words.length < 2; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (VALUED_GLOBALS.includes(a)) i++;
    else if (!a.startsWith('-')) words.push(a);
  }
  if (words.length === 0 && args.includes('--version') && !args.includes('--help') && !args.includes('-h')) return [];
  for (const n of [2, 1]) {
    const path = words.slice(0, n).join(' ');
    const found = COMMAND_LOADERS.filter((l) => l.name === path || (n === 1 && l.name.startsWith(`${path} `)));
    if (path && found.length) return found;
  }
  return COMMAND_LOADERS;
}
