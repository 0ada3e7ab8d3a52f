// `pgmam initcluster <app>`: a new cluster with WAL archiving to its own stanza and a first full
// backup — PITR-ready when it ends, or everything this run made undone.
import type { Context, Paths } from '../context.js';
import type { Config } from '../config/schema.js';
import { clusterIsNotLocked, nameIsFree, portIsFree, repoIsWritable } from '../guards/cluster.js';
import { enoughDisk, pgVersionIsSupported, runsAsRoot, toolsAreInstalled } from '../guards/host.js';
import { ARCHIVE_CONF_NAME, renderArchiveConf } from '../pg/archive-conf.js';
import type { HostCluster } from '../pg/clusters.js';
import * as pg from '../pg/commands.js';
import { scramSha256Verifier } from '../pg/scram.js';
import * as pgbr from '../pgbackrest/commands.js';
import { DEFAULT_INCLUDE_PATH, renderStanzaFile } from '../pgbackrest/config.js';
import { archiveMax, lastBackup, parseInfo } from '../pgbackrest/info.js';
import { executePlan, type ExecuteFlags } from '../plan/executor.js';
import type { Guard, Plan, Step } from '../plan/types.js';
import { readLock, type LockHolder } from '../state/lock.js';
import { recordPath, writeManaged, type ManagedCluster } from '../state/store.js';
import { ReadOnlyRunner } from '../runner/wrappers.js';
import {
  findTools,
  installedPgVersions,
  listeningPorts,
  managedClusters,
  pgbackrestVersion,
  postgresOwner,
  readClusters,
  readMainConfig,
  repoPathFrom,
  type Tool,
} from './host-facts.js';
import { newestSupportedPg } from '../pgbackrest/commands.js';
import { UsageError } from '../errors.js';

export interface InitOptions extends ExecuteFlags {
  name: string;
  port?: number;
  pgVersion?: string;
  db?: string;
  owner?: string;
  passwordFile?: string;
  json: boolean;
}

export interface InitFacts {
  uid: number;
  tools: Record<Tool, string | undefined>;
  installedPg: string[];
  pgbackrestVersion: string | undefined;
  pgVersion: string | undefined;
  clusters: HostCluster[];
  /** Places where the name is already taken (cluster, config leftovers, stanza, records). */
  nameTakenBy: string[];
  port: number | undefined;
  portConfiguredBy: string[];
  portListening: boolean;
  repo: { path: string; exists: boolean; writableByPostgres: boolean | undefined };
  disk: Array<{ path: string; freeBytes: number | undefined }>;
  lock: { holder: LockHolder | undefined; alive: boolean };
  postgres: { uid: number; gid: number } | undefined;
  /** First line of --password-file; undefined when none given. */
  password: string | undefined;
  passwordProblem: string | undefined;
}

/** Read-only: everything the guards and the plan need. */
export async function gatherInitFacts(ctx: Context, o: InitOptions): Promise<InitFacts> {
  const runner = new ReadOnlyRunner(ctx.runner);
  const { config, paths } = ctx;
  const [tools, installedPg, main, listening, managed, postgres, lockHolder] = await Promise.all([
    findTools(ctx),
    installedPgVersions(ctx.fs),
    readMainConfig(ctx.fs),
    listeningPorts(ctx.fs),
    managedClusters(ctx),
    postgresOwner(ctx.fs),
    readLock(ctx.fs, paths.locksDir, o.name),
  ]);
  const canRunPgbr = Boolean(tools.pgbackrest) && ctx.host.uid === 0;
  const [clusters, pgbrVersion] = await Promise.all([
    tools.pg_lsclusters ? readClusters(runner) : Promise.resolve([]),
    canRunPgbr ? pgbackrestVersion(runner) : Promise.resolve(undefined),
  ]);

  const pgVersion = o.pgVersion || config['pg-version'] || chooseVersion(installedPg, pgbrVersion);
  const id = { version: pgVersion ?? '?', name: o.name };
  const repoPath = repoPathFrom(config['repo-path'], main);
  const stanzaFile = `${paths.stanzaDir}/${o.name}.conf`;

  const nameTakenBy: string[] = [];
  for (const c of clusters) if (c.name === o.name) nameTakenBy.push(`cluster ${c.version}/${c.name} exists`);
  // Leftovers of a dropped cluster: pg_dropcluster leaves a config dir holding files it did not create,
  // and a later pg_createcluster would silently reuse a stale archive_command from it.
  for (const v of installedPg) {
    if (clusters.some((c) => c.version === v && c.name === o.name)) continue;
    for (const p of [pg.confDirOf({ version: v, name: o.name }), pg.dataDirOf({ version: v, name: o.name })])
      if (await ctx.fs.exists(p)) nameTakenBy.push(`${p} exists`);
  }
  if (await ctx.fs.exists(stanzaFile)) nameTakenBy.push(`stanza file ${stanzaFile} exists`);
  if (main.sections.includes(o.name)) nameTakenBy.push(`stanza [${o.name}] is configured in ${main.file}`);
  // The repository is readable by root and postgres only; a non-root run is refused by runs-as-root anyway.
  if (ctx.host.uid === 0)
    for (const sub of ['backup', 'archive']) if (await ctx.fs.exists(`${repoPath}/${sub}/${o.name}`)) nameTakenBy.push(`stanza ${o.name} exists in repository ${repoPath}`);
  if (managed.records.some((r) => r.name === o.name)) nameTakenBy.push(`pgmam record ${recordPath(paths.clustersDir, o.name)} exists`);
  const uniqueTaken = [...new Set(nameTakenBy)];

  const configuredPorts = (p: number) => clusters.filter((c) => c.port === p).map((c) => `${c.version}/${c.name}`);
  const isListening = async (p: number) => listening.has(p) || (await ctx.fs.exists(`${pg.SOCKET_DIR}/.s.PGSQL.${p}`));
  let port = o.port;
  if (port === undefined) {
    for (let p = config['port-min']; p <= config['port-max']; p++) {
      if (!configuredPorts(p).length && !(await isListening(p))) {
        port = p;
        break;
      }
    }
  }

  const repoExists = await ctx.fs.exists(repoPath).catch(() => true);
  let writableByPostgres: boolean | undefined;
  if (repoExists && canRunPgbr) {
    writableByPostgres = (await runner.run({ argv: ['test', '-w', repoPath], asUser: 'postgres', effect: 'read' }, { check: false })).exitCode === 0;
  }

  const diskPaths = [...new Set([pg.dataDirOf(id).replace(/\/[^/]+$/, ''), repoPath])];
  const disk = await Promise.all(diskPaths.map(async (p) => ({ path: p, freeBytes: await ctx.fs.freeBytes(p).catch(() => undefined) })));

  let password: string | undefined;
  let passwordProblem: string | undefined;
  if (o.passwordFile) {
    const text = await ctx.fs.readText(o.passwordFile).catch(() => undefined);
    password = text?.split('\n')[0];
    if (text === undefined) passwordProblem = `cannot read password file ${o.passwordFile}`;
    else if (!password) passwordProblem = `password file ${o.passwordFile} is empty`;
  }

  return {
    uid: ctx.host.uid,
    tools,
    installedPg,
    pgbackrestVersion: pgbrVersion,
    pgVersion,
    clusters,
    nameTakenBy: uniqueTaken,
    port,
    portConfiguredBy: port === undefined ? [] : configuredPorts(port),
    portListening: port === undefined ? false : await isListening(port),
    repo: { path: repoPath, exists: repoExists, writableByPostgres },
    disk,
    lock: { holder: lockHolder, alive: lockHolder ? ctx.host.isProcessAlive(lockHolder.pid) : false },
    postgres,
    password,
    passwordProblem,
  };
}

/** Newest installed major that the installed pgBackRest can back up. */
export function chooseVersion(installed: string[], pgbrVersion: string | undefined): string | undefined {
  if (!pgbrVersion) return installed[0];
  const max = newestSupportedPg(pgbrVersion);
  return installed.find((v) => Number(v) <= max);
}

export function initGuards(f: InitFacts, o: InitOptions, config: Config): Guard[] {
  const guards: Guard[] = [
    runsAsRoot(f.uid),
    toolsAreInstalled(f.tools),
    pgVersionIsSupported({ pgVersion: f.pgVersion, configured: Boolean(o.pgVersion || config['pg-version']), installed: f.installedPg, pgbackrestVersion: f.pgbackrestVersion }),
    nameIsFree(o.name, f.nameTakenBy),
    portIsFree({ port: f.port, configuredBy: f.portConfiguredBy, listening: f.portListening, range: [config['port-min'], config['port-max']], explicit: o.port !== undefined }),
    repoIsWritable(f.repo),
    enoughDisk(f.disk, config['min-free-mb']),
    clusterIsNotLocked(o.name, f.lock.holder, f.lock.alive),
  ];
  if (o.passwordFile)
    guards.push({ id: 'password-file-is-readable', check: () => (f.passwordProblem ? { ok: false, reason: f.passwordProblem } : { ok: true }) });
  return guards;
}

export function planInitCluster(f: InitFacts, o: InitOptions, config: Config, paths: Paths, systemd: boolean, now: Date): Plan {
  const version = f.pgVersion ?? '?';
  const id = { version, name: o.name };
  const port = f.port ?? 0;
  const dataDir = pg.dataDirOf(id);
  const confDir = pg.confDirOf(id);
  const stanzaFile = `${paths.stanzaDir}/${o.name}.conf`;
  const includePath = paths.stanzaDir === DEFAULT_INCLUDE_PATH ? undefined : paths.stanzaDir;
  const scope: pgbr.PgbrScope = { stanza: o.name, configIncludePath: includePath };
  const owner = f.postgres ?? { uid: 0, gid: 0 };
  const archiveConf = renderArchiveConf({ stanza: o.name, archiveTimeout: config['archive-timeout'], configIncludePath: includePath });
  const stanzaText = renderStanzaFile({
    stanza: o.name,
    dataDir,
    port,
    socketDir: pg.SOCKET_DIR,
    repoPath: f.repo.path,
    retentionFull: config['retention-full'],
    compressType: config['compress-type'],
    processMax: config['process-max'],
  });
  const record: ManagedCluster = {
    format: 1,
    cluster: pg.clusterLabel(id),
    name: o.name,
    version,
    role: 'app',
    parent: null,
    stanza: o.name,
    stanzaFile,
    repoPath: f.repo.path,
    createdAt: now.toISOString(),
    syncedAt: null,
    preserved: [],
    timelines: [],
  };

  const steps: Step[] = [];
  if (!f.repo.exists)
    steps.push({
      id: 'create-repo',
      title: `create the pgBackRest repository ${f.repo.path}`,
      effect: 'write',
      run: (ctx) => ctx.fs.mkdirp(f.repo.path, { mode: 0o750, owner }),
      show: [`mkdir -p -m 0750 ${f.repo.path} (owner postgres)`],
    });
  steps.push(
    {
      id: 'create-cluster',
      title: `create cluster ${pg.clusterLabel(id)} on port ${port}`,
      effect: 'write',
      run: pg.createCluster(id, port),
      undo: {
        title: `drop cluster ${pg.clusterLabel(id)} and remove ${confDir}`,
        run: async (ctx) => {
          await ctx.runner.run(pg.dropCluster(id), { check: false });
          // pg_dropcluster leaves the config directory when it holds files it did not create (our conf.d).
          await ctx.fs.rm(confDir, { recursive: true });
          await ctx.fs.rm(dataDir, { recursive: true });
        },
        show: [`$ pg_dropcluster --stop ${version} ${o.name}`, `rm -rf ${confDir} ${dataDir}`],
      },
    },
    {
      id: 'configure-archiving',
      title: `archive WAL to stanza ${o.name} (${confDir}/conf.d/${ARCHIVE_CONF_NAME})`,
      effect: 'write',
      run: async (ctx) => {
        await ctx.fs.mkdirp(`${confDir}/conf.d`, { mode: 0o755, owner });
        await ctx.fs.writeFileAtomic(`${confDir}/conf.d/${ARCHIVE_CONF_NAME}`, archiveConf, { mode: 0o644, owner });
      },
      show: [`write ${confDir}/conf.d/${ARCHIVE_CONF_NAME} (0644 postgres):`, ...indent(archiveConf)],
    },
    {
      id: 'write-stanza-file',
      title: `write the stanza file ${stanzaFile}`,
      effect: 'write',
      run: async (ctx) => {
        await ctx.fs.mkdirp(paths.stanzaDir, { mode: 0o755 });
        await ctx.fs.writeFileAtomic(stanzaFile, stanzaText, { mode: 0o640, owner });
      },
      show: [`write ${stanzaFile} (0640 postgres):`, ...indent(stanzaText)],
      undo: { title: `remove ${stanzaFile}`, run: (ctx) => ctx.fs.rm(stanzaFile), show: [`rm -f ${stanzaFile}`] },
    },
    { id: 'start-cluster', title: `start ${pg.clusterLabel(id)}`, effect: 'write', run: pg.controlCluster(id, 'start', systemd) },
  );
  if (o.db) steps.push(createDbStep({ version, port }, o, f.password));
  steps.push(
    {
      id: 'create-stanza',
      title: `create stanza ${o.name} in ${f.repo.path}`,
      effect: 'write',
      run: pgbr.stanzaCreate(scope),
      undo: {
        title: `delete stanza ${o.name} from ${f.repo.path}`,
        run: async (ctx) => {
          await ctx.runner.run(pgbr.stop(scope), { check: false });
          const del = await ctx.runner.run(pgbr.stanzaDelete(scope, true), { check: false });
          // stanza-delete removes the stop file; if it failed, start again so the stanza is not left stopped.
          if (del.exitCode !== 0) await ctx.runner.run(pgbr.start(scope), { check: false });
          for (const sub of ['backup', 'archive'])
            if (await ctx.fs.exists(`${f.repo.path}/${sub}/${o.name}`)) throw new Error(`${f.repo.path}/${sub}/${o.name} is still there: ${del.stderr.trim()}`);
        },
        show: [`$ runuser -u postgres -- pgbackrest --stanza=${o.name} stop`, `$ runuser -u postgres -- pgbackrest --stanza=${o.name} stanza-delete --force`],
      },
    },
    { id: 'check-archiving', title: `check that WAL archiving to stanza ${o.name} works`, effect: 'write', run: pgbr.check(scope) },
    { id: 'backup-full', title: `take the first full backup of ${o.name}`, effect: 'write', run: pgbr.backup(scope, 'full') },
    {
      id: 'verify-pitr-ready',
      title: 'verify the backup is listed and its WAL archived',
      effect: 'read',
      run: async (ctx) => {
        const stanza = parseInfo((await ctx.runner.run(pgbr.info(scope))).stdout)[0];
        const b = stanza && lastBackup(stanza);
        if (!stanza || !b || b.type !== 'full') throw new Error(`pgbackrest info lists no full backup for stanza ${o.name}`);
        const max = archiveMax(stanza);
        if (!max || !b.archive?.stop || max.wal < b.archive.stop) throw new Error(`WAL ${b.archive?.stop ?? '?'} of backup ${b.label} is not archived yet`);
      },
      show: [`$ runuser -u postgres -- pgbackrest --stanza=${o.name} --output=json info  (a full backup, its stop WAL archived)`],
    },
    {
      id: 'record-managed',
      title: `record ${pg.clusterLabel(id)} as managed by pgmam`,
      effect: 'write',
      run: (ctx) => writeManaged(ctx.fs, paths.clustersDir, record),
      show: [`write ${recordPath(paths.clustersDir, o.name)}`],
      undo: { title: `remove ${recordPath(paths.clustersDir, o.name)}`, run: (ctx) => ctx.fs.rm(recordPath(paths.clustersDir, o.name)) },
    },
  );

  return {
    command: 'initcluster',
    target: pg.clusterLabel(id),
    locks: [o.name],
    destructive: false,
    guards: [],
    steps,
  };
}

function createDbStep(t: { version: string; port: number }, o: InitOptions, password: string | undefined): Step {
  const sql: string[] = [];
  const shown: string[] = [];
  if (o.owner) {
    const pw = password === undefined ? '' : ` PASSWORD ${pg.literal(scramSha256Verifier(password))}`;
    sql.push(`CREATE ROLE ${pg.ident(o.owner)} LOGIN${pw};`);
    shown.push(`CREATE ROLE ${pg.ident(o.owner)} LOGIN${password === undefined ? '' : " PASSWORD '<SCRAM-SHA-256 verifier of --password-file>'"};`);
  }
  const dbSql = `CREATE DATABASE ${pg.ident(o.db!)}${o.owner ? ` OWNER ${pg.ident(o.owner)}` : ''};`;
  sql.push(dbSql);
  shown.push(dbSql);
  return {
    id: 'create-database',
    title: `create database ${o.db}${o.owner ? ` owned by role ${o.owner}` : ''}`,
    effect: 'write',
    run: pg.psqlScript(t, `${sql.join('\n')}\n`),
    show: shown.map((s) => `  | ${s}`),
  };
}

const indent = (text: string) => text.trimEnd().split('\n').map((l) => `  | ${l}`);

export async function runInitCluster(ctx: Context, o: InitOptions): Promise<void> {
  if ((o.owner || o.passwordFile) && !o.db) throw new UsageError('--owner and --password-file need --db NAME');
  if (o.passwordFile && !o.owner) throw new UsageError('--password-file needs --owner ROLE');
  const facts = await gatherInitFacts(ctx, o);
  const plan = planInitCluster(facts, o, ctx.config, ctx.paths, ctx.host.systemd, ctx.clock.now());
  plan.guards = initGuards(facts, o, ctx.config);
  const outcome = await executePlan(ctx, plan, o);
  if (outcome === 'dry-run') return;
  const result = { cluster: plan.target, name: o.name, port: facts.port, stanza: o.name, repoPath: facts.repo.path, pitrReady: true };
  ctx.io.out(o.json ? `${JSON.stringify(result)}\n` : `${plan.target} is ready on port ${facts.port}: stanza ${o.name}, first full backup taken, WAL archived to ${facts.repo.path}\n`);
}
