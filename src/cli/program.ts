// commander wiring only: flags → validated options → a command's run function. No domain logic.
import { Command, CommanderError, Option } from 'commander';
import type { Context } from '../context.js';
import { UsageError } from '../errors.js';
import { parseClusterRef, parseName, parsePort } from '../names.js';
import { pitrCommand, pitrMode } from '../commands/pitr/pitr.js';
import { runCommand, type CommandModule, type RunFlags } from '../plan/command.js';
import { askParent, branchCreateCommand } from '../commands/branch/create.js';
import { branchListCommand } from '../commands/branch/list.js';
import { branchSyncCommand } from '../commands/branch/sync.js';
import { branchDropCommand, dropCommand } from '../commands/drop/drop.js';
import { parseTarget } from '../restore/target.js';
import { runBackup } from '../commands/backup/backup.js';
import { scheduleCommand } from '../commands/schedule/schedule.js';
import { runExport, runVerifyExport } from '../commands/export/export.js';
import { resetwalCommand } from '../commands/resetwal/resetwal.js';
import { initClusterCommand } from '../commands/initcluster/initcluster.js';
import { adoptCommand, parseAdoptRef } from '../commands/adopt/adopt.js';
import { pruneCommand } from '../commands/prune/prune.js';
import { DURATION_PATTERN, durationSeconds } from '../config/schema.js';
import { checkCommand } from '../commands/check/check.js';
import { listCommand } from '../commands/list/list.js';
import { installLinksCommand } from '../commands/install-links/install-links.js';
import type { LogLevel } from '../log.js';

export interface GlobalOptions {
  dryRun: boolean;
  yes: boolean;
  json: boolean;
  config?: string;
  logLevel: LogLevel;
}

/** What a parsed command line runs: the command runner, and the batch commands. A test swaps it to see the parsed options. */
export interface Dispatch {
  command<O extends RunFlags, F, J>(ctx: Context, m: CommandModule<O, F, J>, o: O): Promise<unknown>;
  backup: typeof runBackup;
  export: typeof runExport;
  verifyExport: typeof runVerifyExport;
}
export const realDispatch: Dispatch = { command: runCommand, backup: runBackup, export: runExport, verifyExport: runVerifyExport };

/** Builds the Context once the global options (config file, log level) are known. */
export type ContextFactory = (g: GlobalOptions, command: string) => Promise<Context>;

function globals(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as Record<string, unknown>;
  const level = (o['quiet'] ? 'warn' : o['verbose'] ? 'debug' : (o['logLevel'] as LogLevel | undefined)) ?? 'info';
  return { dryRun: Boolean(o['dryRun']), yes: Boolean(o['yes']), json: Boolean(o['json']), config: o['config'] as string | undefined, logLevel: level };
}

const fromSpec = (...specs: Array<{ name: string; examples: string[] }>) => Object.fromEntries(specs.map((sp) => [sp.name, sp.examples.join('\n  ')]));

const EXAMPLES: Record<string, string> = {
  ...fromSpec(pitrCommand.spec, branchCreateCommand.spec, branchSyncCommand.spec, branchListCommand.spec, dropCommand.spec, branchDropCommand.spec),
  initcluster: 'pgmam initcluster app1 --port 5433\n  pgmam initcluster shop --db shop --owner shop --password-file /root/shop.pw\n  legacy: initcluster -a app1 -p 5433',
  list: 'pgmam list\n  pgmam list --json',
  'install-links': 'pgmam install-links --prefix /usr/local/bin',
  backup: 'pgmam backup --all                       # from cron: auto type, quiet on success\n  pgmam backup app1 --type full\n  pgmam backup --all --export-to /mnt/offsite\n  legacy: pgbackup -path /mnt/offsite',
  export: 'pgmam export app1\n  pgmam export --all --format basebackup --to /mnt/exports\n  pgmam export --verify /var/backups/pgmam/app1/20261122T064500Z-daily',
  resetwal: 'pgmam resetwal app1 --dry-run\n  pgmam resetwal app1          # type the name to confirm, or --yes',
  schedule: 'pgmam schedule install\n  pgmam schedule show\n  pgmam schedule remove',
  check: 'pgmam check                     # exit 7 when any managed cluster is unhealthy\n  pgmam check app1 --json\n  pgmam check --prometheus /var/lib/prometheus/node-exporter/pgmam.prom',
  adopt: 'pgmam adopt 15/main --dry-run\n  pgmam adopt 15/main --yes\n  pgmam adopt 15/legacy --replace-archive-command --yes',
  prune: 'pgmam prune app1 --dry-run\n  pgmam prune app1 --older-than 7d --yes',
};

function example(cmd: Command, name: string): Command {
  return cmd.addHelpText('after', `\nExample:\n  ${EXAMPLES[name] ?? `pgmam ${name} --help`}\n`);
}

export function buildProgram(makeContext: ContextFactory, meta: { version: string; selfPath: string; write: (s: string) => void; writeErr: (s: string) => void; dispatch?: Dispatch }): Command {
  const run = meta.dispatch ?? realDispatch;
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
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({ writeOut: meta.write, writeErr: meta.writeErr, outputError: (s, w) => w(s.startsWith('error:') ? `pgmam: ${s.slice(7)}` : s) })
    .exitOverride();

  example(
    program
      .command('initcluster')
      .description('create a cluster with WAL archiving to its own stanza and a first full backup (PITR-ready)')
      .argument('[app]', 'cluster name, ^[a-z][a-z0-9_]{0,47}$')
      .option('-p, --port <port>', 'port (default: the first free one in port-min..port-max)')
      .option('--pg-version <major>', 'PostgreSQL major (default: newest installed that pgBackRest supports)')
      .option('--db <name>', "create the app's database")
      .option('--owner <role>', 'create this login role and make it the database owner')
      .option('--password-file <file>', "the owner's password (first line); never shown in argv, logs or ps")
      .option('--keep-on-error', 'if a step fails, keep what was made instead of undoing it')
      .option('--from-export <dir>', 'create from a pgmam dump export (verified first; the source app is not touched)')
      .option('--only-db <name>', 'with --from-export: restore only this database')
      .action(async (app: string | undefined, o: Record<string, string | boolean | undefined>, cmd: Command) => {
        const g = globals(cmd);
        const name = parseName(app, 'cluster name');
        const port = o['port'] === undefined ? undefined : parsePort(String(o['port']));
        const pgVersion = o['pgVersion'] === undefined ? undefined : String(o['pgVersion']);
        if (pgVersion !== undefined && !/^\d{2}$/.test(pgVersion)) throw new UsageError(`invalid --pg-version "${pgVersion}": a PostgreSQL major such as 15`);
        const db = o['db'] === undefined ? undefined : parseName(String(o['db']), 'database name');
        const owner = o['owner'] === undefined ? undefined : parseName(String(o['owner']), 'role name');
        const ctx = await makeContext(g, 'initcluster');
        await run.command(ctx, initClusterCommand, {
          name,
          port,
          pgVersion,
          db,
          owner,
          passwordFile: o['passwordFile'] === undefined ? undefined : String(o['passwordFile']),
          fromExport: o['fromExport'] === undefined ? undefined : String(o['fromExport']).replace(/\/+$/, ''),
          onlyDb: o['onlyDb'] === undefined ? undefined : parseName(String(o['onlyDb']), 'database name'),
          dryRun: g.dryRun,
          yes: g.yes,
          json: g.json,
          keepOnError: Boolean(o['keepOnError']),
        });
      }),
    'initcluster',
  );

  example(
    program
      .command('pitr')
      .description(pitrCommand.spec.summary)
      .argument('[app]', 'managed cluster: app1 or 15/app1')
      .option('--to <timestamp>', 'target time with UTC offset, e.g. "2026-01-19 10:40:00+00"')
      .option('--latest', 'restore to the end of the archive (every commit before the command started)')
      .option('--undo', 'put back the data directory the last pitr preserved')
      .action(async (app: string | undefined, o: { to?: string; latest?: boolean; undo?: boolean }, cmd: Command) => {
        const g = globals(cmd);
        const ref = parseClusterRef(app);
        const mode = pitrMode(o);
        await run.command(await makeContext(g, 'pitr'), pitrCommand, { ref, mode, dryRun: g.dryRun, yes: g.yes, json: g.json, keepOnError: false });
      }),
    'pitr',
  );

  example(
    program
      .command('backup')
      .description('back up managed clusters with pgBackRest: tiers, skip when unchanged, retention, export')
      .argument('[apps...]', 'managed clusters (or --all)')
      .option('--all', 'every cluster pgmam manages')
      .addOption(new Option('--type <type>', 'backup type; auto: full when due, else diff when due, else incr').choices(['full', 'diff', 'incr', 'auto']).default('auto'))
      .option('--export-to <dir>', 'afterwards, mirror the repository of each stanza into DIR (a pgBackRest repository itself)')
      .option('--force', 'back up even when nothing was written since the last backup')
      .action(async (apps: string[], o: { all?: boolean; type: 'full' | 'diff' | 'incr' | 'auto'; exportTo?: string; force?: boolean }, cmd: Command) => {
        const g = globals(cmd);
        const names = apps.map((a) => parseName(a, 'cluster name'));
        if (!names.length && !o.all) throw new UsageError('backup needs cluster names or --all');
        if (names.length && o.all) throw new UsageError('backup takes cluster names or --all, not both');
        if (o.exportTo !== undefined && !o.exportTo.startsWith('/')) throw new UsageError(`--export-to must be an absolute path (got "${o.exportTo}")`);
        await run.backup(await makeContext(g, 'backup'), { names, all: Boolean(o.all), type: o.type, exportTo: o.exportTo, force: Boolean(o.force), dryRun: g.dryRun, json: g.json });
      }),
    'backup',
  );

  example(
    program
      .command('export')
      .description('dumps (pg_dump) or base backups (pg_basebackup) outside the pgBackRest repository, with SHA256SUMS; --verify DIR checks one')
      .argument('[apps...]', 'managed clusters (or --all)')
      .option('--all', 'every cluster pgmam manages')
      .option('--to <dir>', 'where exports go (default: export-dir, /var/backups/pgmam)')
      .addOption(new Option('--format <format>', 'dump: pg_dump -Fc per database + globals; basebackup: pg_basebackup -Ft -z').choices(['dump', 'basebackup']).default('dump'))
      .option('--keep-on-error', "keep a failed export's partial directory")
      .option('--verify <dir>', "check an export's SHA256SUMS (and pg_verifybackup for a base backup)")
      .action(async (apps: string[], o: { all?: boolean; to?: string; format: 'dump' | 'basebackup'; keepOnError?: boolean; verify?: string }, cmd: Command) => {
        const g = globals(cmd);
        if (o.verify !== undefined) {
          if (apps.length || o.all) throw new UsageError('export --verify takes only the export directory');
          await run.verifyExport(await makeContext(g, 'export'), { dir: o.verify.replace(/\/+$/, ''), json: g.json });
          return;
        }
        const names = apps.map((a) => parseName(a, 'cluster name'));
        if (!names.length && !o.all) throw new UsageError('export needs cluster names or --all');
        if (o.to !== undefined && !o.to.startsWith('/')) throw new UsageError(`--to must be an absolute path (got "${o.to}")`);
        await run.export(await makeContext(g, 'export'), { names, all: Boolean(o.all), to: o.to, format: o.format, keepOnError: Boolean(o.keepOnError), dryRun: g.dryRun, json: g.json });
      }),
    'export',
  );

  example(
    program
      .command('resetwal')
      .description('guarded pg_resetwal of a stopped cluster whose start fails, after a full copy of its data directory')
      .argument('<app>')
      .action(async (app: string, _o: unknown, cmd: Command) => {
        const g = globals(cmd);
        const name = parseName(app, 'cluster name');
        await run.command(await makeContext(g, 'resetwal'), resetwalCommand, { name, dryRun: g.dryRun, yes: g.yes, keepOnError: false, json: g.json });
      }),
    'resetwal',
  );

  example(
    program
      .command('drop')
      .description(dropCommand.spec.summary)
      .argument('<app>')
      .option('--purge-backups', "also delete the cluster's stanza and backups")
      .option('--with-branches', "also drop the app's branches (refused otherwise while it has any)")
      .action(async (app: string, o: { purgeBackups?: boolean; withBranches?: boolean }, cmd: Command) => {
        const g = globals(cmd);
        const name = parseName(app, 'cluster name');
        await run.command(await makeContext(g, 'drop'), dropCommand, { name, purgeBackups: Boolean(o.purgeBackups), withBranches: Boolean(o.withBranches), onlyBranches: false, json: g.json, dryRun: g.dryRun, yes: g.yes, keepOnError: false });
      }),
    'drop',
  );

  example(
    program
      .command('schedule')
      .description('install, show or remove the schedule that runs pgmam backup --all (cron, or systemd timers)')
      .argument('<action>', 'install | show | remove')
      .action(async (action: string, _o: unknown, cmd: Command) => {
        const g = globals(cmd);
        const ctx = await makeContext(g, 'schedule');
        await run.command(ctx, scheduleCommand, { action, pgmam: meta.selfPath, configFile: ctx.configFile, json: g.json, dryRun: g.dryRun, yes: g.yes, keepOnError: false });
      }),
    'schedule',
  );

  const branch = program.command('branch').description("independent clusters restored from a parent's backups");
  example(
    branch
      .command('create')
      .description(branchCreateCommand.spec.summary)
      .argument('[parent]', 'managed cluster to branch (asked on a terminal when left out)')
      .option('--name <label>', 'label: the branch is <parent>_<label>', 'dev')
      .option('--at <timestamp>', "the parent's state at this time (with UTC offset)")
      .option('-p, --port <port>', 'port (default: the first free one in port-min..port-max)')
      .option('--post-sql <dir>', 'run the *.sql files of DIR, in name order, before handing the branch over')
      .option('--conf <file>', "settings for the branch's configuration (not port, archive_*, data_directory, restore_command)")
      .option('--no-autostart', 'do not start the branch at boot (start.conf manual)')
      .action(async (parentArg: string | undefined, o: Record<string, string | undefined> & { autostart?: boolean }, cmd: Command) => {
        const g = globals(cmd);
        const port = o['port'] === undefined ? undefined : parsePort(o['port']);
        const at = o['at'] === undefined ? undefined : parseTarget(o['at']);
        let parent = parentArg === undefined ? undefined : parseName(parentArg, 'parent name');
        let label = parseName(o['name'] ?? 'dev', 'branch label');
        const ctx = await makeContext(g, 'branch create');
        if (parent === undefined) ({ parent, label } = await askParent(ctx));
        parseName(`${parent}_${parseName(label, 'branch label')}`, 'branch name'); // the whole name must fit the pattern too
        await run.command(ctx, branchCreateCommand, { parent, label, at, port, postSql: o['postSql'], conf: o['conf'], autostart: o.autostart !== false, dryRun: g.dryRun, yes: g.yes, json: g.json, keepOnError: false });
      }),
    'branch create',
  );
  example(
    branch
      .command('sync')
      .description(branchSyncCommand.spec.summary)
      .argument('<branch>', 'a branch made by pgmam branch create')
      .option('--post-sql <dir>', 'run the *.sql files of DIR, in name order, before handing the branch over')
      .option('--conf <file>', "settings for the branch's configuration")
      .action(async (b: string, o: Record<string, string | undefined>, cmd: Command) => {
        const g = globals(cmd);
        const name = parseName(b, 'branch name');
        await run.command(await makeContext(g, 'branch sync'), branchSyncCommand, { name, postSql: o['postSql'], conf: o['conf'], dryRun: g.dryRun, yes: g.yes, json: g.json, keepOnError: false });
      }),
    'branch sync',
  );
  example(
    branch
      .command('list')
      .description(branchListCommand.spec.summary)
      .action(async (_o: unknown, cmd: Command) => {
        const g = globals(cmd);
        await run.command(await makeContext(g, 'branch list'), branchListCommand, { json: g.json, dryRun: g.dryRun, yes: g.yes, keepOnError: false });
      }),
    'branch list',
  );
  example(
    branch
      .command('drop')
      .description(branchDropCommand.spec.summary)
      .argument('<branch>')
      .option('--purge-backups', "also delete the branch's stanza and backups")
      .action(async (b: string, o: { purgeBackups?: boolean }, cmd: Command) => {
        const g = globals(cmd);
        const name = parseName(b, 'branch name');
        await run.command(await makeContext(g, 'branch drop'), branchDropCommand, { name, purgeBackups: Boolean(o.purgeBackups), withBranches: false, onlyBranches: true, json: g.json, dryRun: g.dryRun, yes: g.yes, keepOnError: false });
      }),
    'branch drop',
  );

  example(
    program
      .command('list')
      .description('every cluster on the host, managed or not: status, port, role, backups, recovery window, preserved directories')
      .action(async (_o: unknown, cmd: Command) => {
        const g = globals(cmd);
        await run.command(await makeContext(g, 'list'), listCommand, { json: g.json, dryRun: g.dryRun, yes: g.yes, keepOnError: false });
      }),
    'list',
  );

  example(
    program
      .command('install-links')
      .description('link pgmam and the legacy names (initcluster, pitr, pgbranch, pgbackup) into a directory')
      .option('--prefix <dir>', 'where the links go', '/usr/local/bin')
      .action(async (o: { prefix: string }, cmd: Command) => {
        const g = globals(cmd);
        if (!o.prefix.startsWith('/')) throw new UsageError(`--prefix must be an absolute path (got "${o.prefix}")`);
        await run.command(await makeContext(g, 'install-links'), installLinksCommand, { json: g.json, dryRun: g.dryRun, yes: g.yes, keepOnError: false, prefix: o.prefix.replace(/\/+$/, '') || '/', selfPath: meta.selfPath });
      }),
    'install-links',
  );

  example(
    program
      .command('check')
      .description('health of managed clusters: running, archiving, backup age, recovery window, preserved directories, free disk, interrupted operations (exit 7 when any is unhealthy)')
      .argument('[apps...]', 'clusters to check (default: all)')
      .option('--prometheus <file>', 'also write node_exporter textfile metrics to FILE (atomically)')
      .action(async (apps: string[], o: { prometheus?: string }, cmd: Command) => {
        const g = globals(cmd);
        await run.command(await makeContext(g, 'check'), checkCommand, { names: apps, json: g.json, prometheus: o.prometheus, dryRun: g.dryRun, yes: g.yes, keepOnError: false });
      }),
    'check',
  );

  example(
    program
      .command('adopt')
      .description('bring an existing cluster under pgmam: archiving to its own stanza, first full backup; restarts it only when archive_mode must change')
      .argument('<cluster>', 'VERSION/NAME, as pg_lsclusters shows it')
      .option('--replace-archive-command', 'replace an archive_command that sends WAL elsewhere')
      .action(async (ref: string, o: { replaceArchiveCommand?: boolean }, cmd: Command) => {
        const g = globals(cmd);
        const { version, name } = parseAdoptRef(ref);
        await run.command(await makeContext(g, 'adopt'), adoptCommand, { version, name, replaceArchiveCommand: Boolean(o.replaceArchiveCommand), dryRun: g.dryRun, yes: g.yes, json: g.json, keepOnError: false });
      }),
    'adopt',
  );
  example(
    program
      .command('prune')
      .description('remove preserved data directories older than --older-than (typed name or --yes; --dry-run lists them)')
      .argument('<app>', 'managed cluster')
      .option('--older-than <age>', 'age such as 7d, 12h, 30m', '7d')
      .action(async (app: string, o: { olderThan: string }, cmd: Command) => {
        const g = globals(cmd);
        const name = parseName(app);
        if (!DURATION_PATTERN.test(o.olderThan)) throw new UsageError(`--older-than must be an age such as 7d, 12h or 30m (got "${o.olderThan}")`);
        await run.command(await makeContext(g, 'prune'), pruneCommand, { name, olderThanSeconds: durationSeconds(o.olderThan), dryRun: g.dryRun, yes: g.yes, json: g.json, keepOnError: false });
      }),
    'prune',
  );

  return program;
}

export { CommanderError };
