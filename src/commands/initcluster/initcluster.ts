// `pgmam initcluster <app>`: a new cluster with WAL archiving to its own stanza and a first full
// backup — PITR-ready when it ends, or everything this run made undone.
import { parseControlData } from '../../pg/controldata.js';
import { handedOver } from '../../steps/hand-over.js';
import { z } from 'zod';
import { nameSchema, nameArg, optionalNameArg, portArg } from '../../names.js';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { pgVersionIsSupported, runsAsRoot, toolsAreInstalled } from '../../guards/host.js';
import type { HostCluster } from '../../pg/clusters.js';
import { archiveCommandFor } from '../../pg/archive-conf.js';
import * as pg from '../../pg/commands.js';
import { newPassword, scramSha256Verifier } from '../../pg/scram.js';
import { conninfoOf } from '../../pg/conninfo.js';
import { caCertPath } from '../../steps/tls.js';
import { confStep, extrasGuards, gatherExtras, type BranchExtras } from '../../steps/extras.js';
import { newestSupportedPg } from '../../pgbackrest/commands.js';
import { renderArgv } from '../../runner/types.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, required, type Guard, type Step } from '../../plan/types.js';
import type { Journal } from '../../state/journal.js';
import { findTools, installedPgVersions, managedClusters, pgbackrestVersion, postgresOwner, readClusters, readMainConfig, type Tool } from '../../host/facts.js';
import { emptyDataDirStep, enableArchivingStep, requestRecoveryStep, verifyIsolationStep, verifyRecoveredStep, waitPromotedStep } from '../../restore/steps.js';
import { checkSums, readExportMeta, type ExportMeta } from '../../export/manifest.js';
import { gatherNewCluster, newClusterGuards, newClusterJournalSchema, newClusterSteps, rollbackNewClusterSteps, type NewClusterFacts, type NewClusterJournal, finishHandOver } from '../../steps/new-cluster.js';

export const initOptionsSchema = runFlagsSchema.extend({
  name: nameSchema,
  port: z.number().int().min(1024).max(65535).optional(),
  pgVersion: z.string().regex(/^\d{2}$/).optional(),
  db: nameSchema.optional(),
  owner: nameSchema.optional(),
  passwordFile: z.string().optional(),
  /** Create from a pgmam export (all its databases, or only `onlyDb`). */
  fromExport: z.string().optional(),
  onlyDb: nameSchema.optional(),
  /** listen_addresses (default PostgreSQL's: localhost). */
  listen: z.string().optional(),
  /** More settings (a file of `key = value` lines; not the ones pgmam sets itself). */
  conf: z.string().optional(),
});
export type InitOptions = z.infer<typeof initOptionsSchema>;

/** Options that cannot go together, whatever the host: a usage error (exit 2) before anything runs. */
export function checkInitOptions(o: InitOptions): void {
  if ((o.owner || o.passwordFile) && !o.db) throw new UsageError('--owner and --password-file need --db NAME');
  if (o.passwordFile && !o.owner) throw new UsageError('--password-file needs --owner ROLE');
  if (o.fromExport && o.db) throw new UsageError('--from-export and --db do not go together: the export brings its databases');
  if (o.onlyDb && !o.fromExport) throw new UsageError('--only-db needs --from-export DIR');
}

export interface InitFacts extends NewClusterFacts {
  uid: number;
  now: Date;
  tools: Record<Tool, string | undefined>;
  installedPg: string[];
  pgbackrestVersion: string | undefined;
  pgVersion: string | undefined;
  clusters: HostCluster[];
  postgres: { uid: number; gid: number } | undefined;
  /** --from-export: what it holds and what is wrong with it. */
  source: { meta: ExportMeta | undefined; problems: string[]; globals: string | undefined } | undefined;
  /** First line of --password-file; undefined when none given. */
  password: string | undefined;
  passwordProblem: string | undefined;
  /** --owner without --password-file: where pgmam keeps the password it generates, and whether that file exists already. */
  generated: { file: string; exists: boolean } | undefined;
  extras: BranchExtras;
}

/** Read-only: everything the guards and the plan need. */
export async function gatherInitFacts(ctx: Context, o: InitOptions): Promise<InitFacts> {
  const runner = ctx.runner;
  const { config } = ctx;
  const [tools, installedPg, main, managed, postgres] = await Promise.all([
    findTools(ctx),
    installedPgVersions(ctx.fs),
    readMainConfig(ctx.fs),
    managedClusters(ctx),
    postgresOwner(ctx.fs),
  ]);
  const canRunPgbr = Boolean(tools.pgbackrest) && ctx.host.uid === 0;
  const [clusters, pgbrVersion] = await Promise.all([
    tools.pg_lsclusters ? readClusters(runner) : Promise.resolve([]),
    canRunPgbr ? pgbackrestVersion(runner) : Promise.resolve(undefined),
  ]);

  const pgVersion = o.pgVersion || config['pg-version'] || chooseVersion(installedPg, pgbrVersion);
  const fresh = await gatherNewCluster(ctx, runner, {
    name: o.name,
    version: pgVersion ?? '?',
    port: o.port,
    installedPg,
    clusters,
    managed: [...managed.records, ...managed.dropped],
    main,
    canProbeRepo: canRunPgbr,
  });

  let password: string | undefined;
  let passwordProblem: string | undefined;
  if (o.passwordFile) {
    const text = await ctx.fs.readText(o.passwordFile).catch(() => undefined);
    password = text?.split('\n')[0];
    if (text === undefined) passwordProblem = `cannot read password file ${o.passwordFile}`;
    else if (!password) passwordProblem = `password file ${o.passwordFile} is empty`;
  }

  const secret = o.owner && !o.passwordFile ? `${config['secrets-dir']}/${o.name}-${o.owner}.pw` : undefined;
  const generated = secret ? { file: secret, exists: await ctx.fs.exists(secret) } : undefined;
  const extras = await gatherExtras(ctx, { conf: o.conf });

  let source: InitFacts['source'];
  if (o.fromExport) {
    const meta = await readExportMeta(ctx, o.fromExport);
    source = { meta, problems: meta ? await checkSums(ctx, o.fromExport) : [`${o.fromExport} holds no meta.json: not a pgmam export`], globals: await ctx.fs.readText(`${o.fromExport}/globals.sql`).catch(() => undefined) };
  }
  return { ...fresh, uid: ctx.host.uid, now: ctx.clock.now(), tools, installedPg, pgbackrestVersion: pgbrVersion, pgVersion, clusters, postgres, password, passwordProblem, source, generated, extras };
}

/** Newest installed major that the installed pgBackRest can back up. */
export function chooseVersion(installed: string[], pgbrVersion: string | undefined): string | undefined {
  if (!pgbrVersion) return installed[0];
  const max = newestSupportedPg(pgbrVersion);
  return installed.find((v) => Number(v) <= max);
}

export function initGuards(f: InitFacts, o: InitOptions, { config }: Pick<PlanEnv, 'config'>): Guard[] {
  const guards: Guard[] = [
    runsAsRoot(f.uid),
    toolsAreInstalled(f.tools),
    pgVersionIsSupported({ pgVersion: f.pgVersion, configured: Boolean(o.pgVersion || config['pg-version']), installed: f.installedPg, pgbackrestVersion: f.pgbackrestVersion }),
    ...newClusterGuards(f, o.name, o.port !== undefined, config),
  ];
  if (o.fromExport) {
    const s = f.source;
    guards.push({
      id: 'export-is-intact',
      check() {
        if (!s?.meta) return { ok: false, reason: s?.problems[0] ?? `${o.fromExport} is not a pgmam export` };
        if (s.problems.length) return { ok: false, reason: `export ${o.fromExport} is damaged: ${s.problems.join('; ')}`, hint: `pgmam export --verify ${o.fromExport}` };
        if (s.meta.format !== 'dump' && s.meta.format !== 'basebackup') return { ok: false, reason: `${o.fromExport} has an unknown format ${s.meta.format}` };
        if (s.meta.format === 'basebackup' && o.onlyDb) return { ok: false, reason: '--only-db needs a dump export; a base backup holds the whole cluster' };
        if (s.meta.format === 'basebackup' && s.meta.pgVersion !== f.pgVersion) return { ok: false, reason: `a base backup of PostgreSQL ${s.meta.pgVersion} cannot become a PostgreSQL ${f.pgVersion} cluster` };
        if (s.meta.pgVersion && f.pgVersion && Number(s.meta.pgVersion) > Number(f.pgVersion)) return { ok: false, reason: `the export is from PostgreSQL ${s.meta.pgVersion}, newer than ${f.pgVersion}` };
        if (o.onlyDb && !s.meta.databases?.some((d) => d.name === o.onlyDb)) return { ok: false, reason: `the export has no database ${o.onlyDb} (it has ${s.meta.databases?.map((d) => d.name).join(', ')})` };
        return { ok: true };
      },
    });
  }
  if (o.passwordFile)
    guards.push({ id: 'password-file-is-readable', check: () => (f.passwordProblem ? { ok: false, reason: f.passwordProblem } : { ok: true }) });
  if (f.generated)
    guards.push({
      id: 'generated-password-file-is-free',
      check: () => (f.generated!.exists ? fail(`${f.generated!.file} exists already: pgmam does not overwrite a password`, `pass it as --password-file ${f.generated!.file}, or remove it`) : pass),
    });
  guards.push(...extrasGuards(f.extras, "pgmam's archiving, port and data directory settings"));
  return guards;
}

export function planInitCluster(f: InitFacts, o: InitOptions, env: PlanEnv): PlanBody {
  const { config, paths } = env;
  const systemd = env.host.systemd;
  const now = f.now;
  const id = { version: required(f.pgVersion, 'a PostgreSQL major'), name: o.name };
  const port = f.port ?? 0;
  const n = newClusterSteps({ id, port, dataDir: f.dataDir, repo: f.repo, attach: f.attach, owner: f.postgres ?? { uid: 0, gid: 0 }, config, paths, systemd, hostName: env.host.name, fqdn: f.fqdn, role: 'app' });
  const owner = f.postgres ?? { uid: 0, gid: 0 };
  const live = { id, port, dataDir: n.dataDir, logFile: `/var/log/postgresql/postgresql-${id.version}-${o.name}.log` };
  const recovered = { timeline: 0, lastReplayUs: undefined };
  // --conf's settings and --listen, in a conf.d file of their own, before the first start.
  const extraConf = confStep(n.confDir, f.extras, owner, { id: 'apply-conf', file: INIT_CONF_NAME, more: o.listen ? [`listen_addresses = ${pg.literal(o.listen)}`] : [] });
  const steps: Step[] =
    o.fromExport && f.source?.meta?.format === 'basebackup'
      ? [
          ...n.createRepo,
          n.createCluster,
          n.closeToUsers,
          n.configureArchiving,
          ...n.enableTls,
          ...extraConf,
          n.writeStanzaFile,
          emptyDataDirStep(n.dataDir, owner),
          {
            id: 'lay-down-basebackup',
            title: `lay down the base backup of ${o.fromExport} in ${n.dataDir}`,
            effect: 'write',
            run: async (c) => {
              await c.runner.run({ argv: ['tar', '-xzf', `${o.fromExport}/base.tar.gz`, '-C', n.dataDir], asUser: 'postgres', effect: 'write' });
              await c.runner.run({ argv: ['tar', '-xzf', `${o.fromExport}/pg_wal.tar.gz`, '-C', `${n.dataDir}/pg_wal`], asUser: 'postgres', effect: 'write' });
              // The data directory now holds the exported cluster's identity: the journal follows it.
              const r = await c.runner.run(pg.pgControlData(id.version, n.dataDir), { check: false });
              return { journal: { systemId: parseControlData(r.stdout).systemId } };
            },
            show: [`$ runuser -u postgres -- tar -xzf ${o.fromExport}/base.tar.gz -C ${n.dataDir}`, `$ runuser -u postgres -- tar -xzf ${o.fromExport}/pg_wal.tar.gz -C ${n.dataDir}/pg_wal`],
          },
          // Its WAL is in the backup (streamed): recover to consistency, promote, archiving off until its own stanza exists.
          requestRecoveryStep(n.dataDir, ["archive_mode = 'off'", "restore_command = 'false'", "recovery_target = 'immediate'", "recovery_target_action = 'promote'"], 'recover the base backup to consistency, then promote', owner, now.toISOString()),
          verifyIsolationStep(live, { archiveCommand: archiveCommandFor(o.name, n.scope.configIncludePath) }),
          n.startCluster,
          waitPromotedStep(live, config['recovery-timeout']),
          verifyRecoveredStep(live, { previousTimeline: 0 }, recovered),
          n.createStanza,
          enableArchivingStep(live, systemd, owner),
          ...n.firstBackupAndRecord({ role: 'app', parent: null, createdAt: now.toISOString() }),
          n.handOver,
        ]
      : [
          ...n.createRepo,
          n.createCluster,
          n.closeToUsers,
          n.configureArchiving,
          ...n.enableTls,
          ...extraConf,
          n.writeStanzaFile,
          n.startCluster,
          ...(f.generated ? [generatePasswordStep(f.generated.file, o.owner!)] : []),
          ...(o.db ? [createDbStep({ version: id.version, port }, o, f.generated ? { file: f.generated.file } : f.password === undefined ? undefined : { value: f.password })] : []),
          ...(o.fromExport ? restoreExportSteps({ version: id.version, port }, o.fromExport, f.source, o.onlyDb) : []),
          n.createStanza,
          ...n.firstBackupAndRecord({ role: 'app', parent: null, createdAt: now.toISOString() }),
          n.handOver,
        ];
  return { target: pg.clusterLabel(id), steps, journal: { rerun: rerunOf(o), data: { ...n.journal, ...(f.generated ? { secretFile: f.generated.file } : {}) } } };
}

function restoreExportSteps(t: { version: string; port: number }, dir: string, source: InitFacts['source'], onlyDb: string | undefined): Step[] {
  const globals = (source?.globals ?? '')
    .split('\n')
    .filter((l) => !/^CREATE ROLE postgres;$/.test(l.trim()))
    .join('\n');
  const dbs = (source?.meta?.databases ?? []).filter((d) => !onlyDb || d.name === onlyDb);
  return [
    { id: 'restore-globals', title: `restore roles from ${dir}/globals.sql`, effect: 'write', run: pg.psqlScript(t, globals) },
    ...dbs.map(
      (d): Step => ({
        id: 'restore-database',
        title: `restore database ${d.name} from ${dir}/${d.file ?? `${d.name}.dump`}`,
        effect: 'write',
        // postgres exists in every cluster: restore into it; any other database is created by the dump (-C).
        run: pg.restoreDump(t, `${dir}/${d.file ?? `${d.name}.dump`}`, d.name !== 'postgres'),
      }),
    ),
  ];
}

export const INIT_CONF_NAME = '91-pgmam-conf.conf';

/** A password for the owner, made by pgmam into secrets-dir (root's alone); the role gets only its SCRAM verifier. */
function generatePasswordStep(file: string, role: string): Step {
  const dir = file.replace(/\/[^/]+$/, '');
  return {
    id: 'generate-password',
    title: `generate a password for ${role} into ${file} (0600 root)`,
    effect: 'write',
    run: async (ctx) => {
      await ctx.fs.mkdirp(dir, { mode: 0o700, owner: { uid: 0, gid: 0 } });
      // Created exclusively: a password once made is never replaced.
      if (!(await ctx.fs.createExclusive(file, `${newPassword()}\n`, 0o600)) && !(await ctx.fs.readText(file))?.trim()) throw new Error(`${file} exists but is empty`);
    },
    show: [`install -d -m 0700 ${dir}`, `create ${file} (0600 root): 24 random characters`],
    undo: { title: `remove ${file}`, run: (ctx) => ctx.fs.rm(file) },
  };
}

function createDbStep(t: { version: string; port: number }, o: InitOptions, password: { value: string } | { file: string } | undefined): Step {
  const dbSql = `CREATE DATABASE ${pg.ident(o.db!)}${o.owner ? ` OWNER ${pg.ident(o.owner)}` : ''};`;
  const roleSql = (pw: string | undefined) => (o.owner ? [`CREATE ROLE ${pg.ident(o.owner)} LOGIN${pw === undefined ? '' : ` PASSWORD ${pg.literal(scramSha256Verifier(pw))}`};`] : []);
  const from = password === undefined ? undefined : 'file' in password ? password.file : '--password-file';
  const shown = [...(o.owner ? [`CREATE ROLE ${pg.ident(o.owner)} LOGIN${from ? ` PASSWORD '<SCRAM-SHA-256 verifier of ${from}>'` : ''};`] : []), dbSql];
  return {
    id: 'create-database',
    title: `create database ${o.db}${o.owner ? ` owned by role ${o.owner}` : ''}`,
    effect: 'write',
    // The generated password is read when the step runs: it is never in the plan, the journal or a log.
    run: async (ctx) => {
      const pw = password === undefined ? undefined : 'value' in password ? password.value : (await ctx.fs.readText(password.file))?.split('\n')[0];
      if (password && !pw) throw new Error(`no password in ${'file' in password ? password.file : '--password-file'}`);
      await ctx.runner.run(pg.psqlScript(t, `${[...roleSql(pw), dbSql].join('\n')}\n`));
    },
    show: shown.map((s) => `  | ${s}`),
  };
}


/** The command line that, run again, rolls back an interrupted initcluster and creates the cluster. */
const rerunOf = (o: InitOptions) =>
  renderArgv([
    'pgmam',
    'initcluster',
    o.name,
    ...(o.port !== undefined ? ['--port', String(o.port)] : []),
    ...(o.pgVersion ? ['--pg-version', o.pgVersion] : []),
    ...(o.db ? ['--db', o.db] : []),
    ...(o.owner ? ['--owner', o.owner] : []),
    ...(o.passwordFile ? ['--password-file', o.passwordFile] : []),
    ...(o.fromExport ? ['--from-export', o.fromExport] : []),
    ...(o.onlyDb ? ['--only-db', o.onlyDb] : []),
    ...(o.listen ? ['--listen', o.listen] : []),
    ...(o.conf ? ['--conf', o.conf] : []),
    '--yes',
  ]);

/**
 * Before hand-over, an interrupted initcluster made only a cluster no user could reach: it is removed
 * (cluster, stanza if made, stanza file, record), then created again. From hand-over on, it is finished.
 */
export async function recoverInitCluster(ctx: Context, j: Journal, d: NewClusterJournal): Promise<Recovery> {
  if (handedOver(j)) return finishHandOver(ctx, j, d);
  const exists = (await readClusters(ctx.runner)).some((c) => c.name === j.name && c.version === d.version);
  // The password it generated goes with the cluster no user ever reached; the re-run makes a new one.
  const secret = d.secretFile;
  const secretStep: Step[] = secret ? [{ id: 'remove-generated-password', title: `remove ${secret} (the password the interrupted run generated)`, effect: 'destroy', run: (c) => c.fs.rm(secret), show: [`rm -f ${secret}`] }] : [];
  return { way: 'rolled-back', steps: [...rollbackNewClusterSteps(ctx, j, d, exists), ...secretStep] };
}

async function reportInitCluster(ctx: Context, o: InitOptions, f: InitFacts, plan: { target: string }): Promise<void> {
  const passwordFile = f.generated?.file ?? o.passwordFile;
  // Every new cluster has pgmam's TLS: its URI verifies the server against pgmam's CA.
  const c = conninfoOf({ port: f.port ?? 0, listen: o.listen, host: f.fqdn ?? ctx.host.name, tls: true, caFile: caCertPath(ctx.config['tls-dir']), passwordFile }, { db: o.db, role: o.owner });
  const result = { cluster: plan.target, name: o.name, port: f.port, stanza: o.name, repoPath: f.repo.path, pitrReady: true, connect: c.uri, passwordFile: f.generated?.file ?? null };
  if (o.json) return ctx.io.out(`${JSON.stringify(result)}\n`);
  ctx.io.out(`${plan.target} is ready on port ${f.port}: stanza ${o.name}, first full backup taken, WAL archived to ${f.repo.path}\n`);
  ctx.io.out(`connect: ${c.uri}${o.owner ? '' : '  (as the postgres OS user)'}\n`);
  if (f.generated) ctx.io.out(`the password of ${o.owner} is in ${f.generated.file} (0600 root), generated by pgmam: give it to the application, never on a command line\n`);
}

export const initClusterCommand: CommandModule<InitOptions, InitFacts, NewClusterJournal> = {
  spec: {
    name: 'initcluster',
    summary: 'create a cluster with WAL archiving to its own stanza and a first full backup (PITR-ready)',
    cli: {
      args: [{ syntax: '[app]', key: 'name', help: 'cluster name, ^[a-z][a-z0-9_]{0,47}$' }],
      flags: [
        { flags: '-p, --port <port>', help: 'port (default: the first free one in port-min..port-max)' },
        { flags: '--pg-version <major>', help: 'PostgreSQL major (default: newest installed that pgBackRest supports)' },
        { flags: '--db <name>', help: "create the app's database" },
        { flags: '--owner <role>', help: 'create this login role and make it the database owner' },
        { flags: '--password-file <file>', help: "the owner's password (first line); never shown in argv, logs or ps" },
        { flags: '--from-export <dir>', help: 'create from a pgmam dump export (verified first; the source app is not touched)' },
        { flags: '--only-db <name>', help: 'with --from-export: restore only this database' },
        { flags: '--listen <addresses>', help: "listen_addresses (e.g. '*' or 10.0.0.5; default localhost); TCP without TLS stays refused" },
        { flags: '--conf <file>', help: 'more settings (key = value lines; not port, archive_*, data_directory, restore_command)' },
      ],
      input: z.object({
        name: nameArg('cluster name'),
        port: portArg,
        pgVersion: z
          .string()
          .optional()
          .transform((v) => {
            if (v !== undefined && !/^\d{2}$/.test(v)) throw new UsageError(`invalid --pg-version "${v}": a PostgreSQL major such as 15`);
            return v;
          }),
        db: optionalNameArg('database name'),
        owner: optionalNameArg('role name'),
        passwordFile: z.string().optional(),
        fromExport: z.string().optional().transform((v) => v?.replace(/\/+$/, '')),
        onlyDb: optionalNameArg('database name'),
        listen: z.string().regex(/^(\*|[A-Za-z0-9.:_-]+(\s*,\s*[A-Za-z0-9.:_-]+)*)$/, "--listen takes '*' or host names and addresses, comma-separated").optional(),
        conf: z.string().optional(),
      }),
      keepOnError: true,
    },
    options: initOptionsSchema,
    check: checkInitOptions,
    examples: ['pgmam initcluster app1 --port 5433', 'pgmam initcluster shop --db shop --owner shop        # a password generated into /etc/pgmam/secrets/shop-shop.pw', 'pgmam initcluster shop --db shop --owner shop --password-file /root/shop.pw --listen "*"', 'legacy: initcluster -a app1 -p 5433'],
    target: (o) => o.name,
    destructive: false,
    journal: newClusterJournalSchema,
  },
  gather: gatherInitFacts,
  guards: initGuards,
  plan: planInitCluster,
  recover: recoverInitCluster,
  report: reportInitCluster,
};
